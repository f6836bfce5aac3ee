"""Correct but unusual data answers: zip-built mappings, a ValueError naming the character, as_tensor, index arithmetic.

CharTokenizer stores the characters as a string and builds s2i/i2s with zip; encode raises ValueError (with the
character) for an unknown one. TextDataset converts with ``torch.as_tensor(...).long()``. get_batch builds every
window at once by broadcasting ``starts[:, None] + arange(seq_len + 1)`` and slicing x and y out of it.
Component: tokenizer, text_dataset, get_batch (notebook 01). Must get full points.
"""

import torch
from torch.utils.data import Dataset

COMPONENT = "tokenizer"
ALSO = ("text_dataset", "get_batch")
EXPECT = "full"
HINTS = ()

# --- answer cell ---


class CharTokenizer:
    def __init__(self, chars):
        self.chars = "".join(chars)
        self.s2i = dict(zip(self.chars, range(len(self.chars)), strict=True))
        self.i2s = dict(zip(range(len(self.chars)), self.chars, strict=True))
        self.vocab_size = len(self.chars)

    def encode(self, text):
        ids = []
        for ch in text:
            if ch not in self.s2i:
                raise ValueError(f"{ch!r} is not in the vocabulary")
            ids.append(self.s2i[ch])
        return ids

    def decode(self, ids):
        return "".join(map(self.i2s.__getitem__, map(int, ids)))


class TextDataset(Dataset):
    def __init__(self, src_seqs, tgt_seqs):
        self.pairs = list(zip(src_seqs, tgt_seqs, strict=True))

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, idx):
        src, tgt = self.pairs[idx]
        return torch.as_tensor(src).long(), torch.as_tensor(tgt).long()


def get_batch(data, batch_size, seq_len, generator=None):
    starts = torch.randint(0, data.numel() - seq_len, (batch_size,), generator=generator)
    windows = data[starts.unsqueeze(1) + torch.arange(seq_len + 1)]  # (batch, seq_len + 1)
    return windows[:, :-1].long(), windows[:, 1:].long()
