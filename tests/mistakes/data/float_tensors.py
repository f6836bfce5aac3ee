"""TextDataset: items are float tensors.

Mistake: ``torch.tensor(seq, dtype=torch.float)`` (or ``torch.FloatTensor(seq)``) — nn.Embedding and cross_entropy
need integer ids.
Component: text_dataset (notebook 01).
Expected effect: dtype check fails and should say torch.long.
"""

import torch
from torch.utils.data import Dataset

COMPONENT = "text_dataset"
EXPECT = "caught"
HINTS = ('long', 'dtype')

# --- answer cell ---


class TextDataset(Dataset):
    def __init__(self, src_seqs, tgt_seqs):
        self.src_seqs = src_seqs
        self.tgt_seqs = tgt_seqs

    def __len__(self):
        return len(self.src_seqs)

    def __getitem__(self, idx):
        return torch.tensor(self.src_seqs[idx], dtype=torch.float), torch.tensor(self.tgt_seqs[idx], dtype=torch.float)
