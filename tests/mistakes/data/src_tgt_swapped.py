"""TextDataset: returns (tgt, src) instead of (src, tgt).

Mistake: the pair comes out in the wrong order, so a model would learn to predict the previous character.
Component: text_dataset (notebook 01).
Expected effect: item check fails; the message should say "(src, tgt), in that order".
"""

import torch
from torch.utils.data import Dataset

COMPONENT = "text_dataset"
EXPECT = "caught"
HINTS = ('order', '(src, tgt)')

# --- answer cell ---


class TextDataset(Dataset):
    def __init__(self, src_seqs, tgt_seqs):
        self.src_seqs = src_seqs
        self.tgt_seqs = tgt_seqs

    def __len__(self):
        return len(self.src_seqs)

    def __getitem__(self, idx):
        return torch.tensor(self.tgt_seqs[idx], dtype=torch.long), torch.tensor(self.src_seqs[idx], dtype=torch.long)
