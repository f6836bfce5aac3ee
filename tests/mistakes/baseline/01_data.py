"""Correct answers of notebook 01 (data): CharTokenizer, TextDataset, get_batch."""

import torch
from torch.utils.data import Dataset


class CharTokenizer:
    def __init__(self, chars):
        self.chars = list(chars)
        self.s2i = {ch: i for i, ch in enumerate(self.chars)}
        self.i2s = {i: ch for i, ch in enumerate(self.chars)}

    @property
    def vocab_size(self):
        return len(self.chars)

    def encode(self, text):
        unknown = [ch for ch in text if ch not in self.s2i]
        if unknown:
            raise ValueError(f"characters outside the vocabulary: {unknown}")
        return [self.s2i[ch] for ch in text]

    def decode(self, ids):
        return "".join(self.i2s[int(i)] for i in ids)


class TextDataset(Dataset):
    def __init__(self, src_seqs, tgt_seqs):
        self.src_seqs = src_seqs
        self.tgt_seqs = tgt_seqs

    def __len__(self):
        return len(self.src_seqs)

    def __getitem__(self, idx):
        return torch.tensor(self.src_seqs[idx], dtype=torch.long), torch.tensor(self.tgt_seqs[idx], dtype=torch.long)


def get_batch(data, batch_size, seq_len, generator=None):
    starts = torch.randint(len(data) - seq_len, (batch_size,), generator=generator)
    x = torch.stack([data[s : s + seq_len] for s in starts])
    y = torch.stack([data[s + 1 : s + seq_len + 1] for s in starts])
    return x.long(), y.long()
