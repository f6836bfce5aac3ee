"""TextDataset: __len__ is one short.

Mistake: ``len(self.src_seqs) - 1`` (the student subtracted one for the shift, which the sequences already include).
Component: text_dataset (notebook 01).
Expected effect: the last pair is never seen; len check fails.
"""

import torch
from torch.utils.data import Dataset

COMPONENT = "text_dataset"
EXPECT = "caught"
HINTS = ('__len__', 'number of')

# --- answer cell ---


class TextDataset(Dataset):
    def __init__(self, src_seqs, tgt_seqs):
        self.src_seqs = src_seqs
        self.tgt_seqs = tgt_seqs

    def __len__(self):
        return len(self.src_seqs) - 1

    def __getitem__(self, idx):
        return torch.tensor(self.src_seqs[idx], dtype=torch.long), torch.tensor(self.tgt_seqs[idx], dtype=torch.long)
