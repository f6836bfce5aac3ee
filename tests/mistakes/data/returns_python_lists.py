"""TextDataset: __getitem__ returns Python lists instead of tensors.

Mistake: ``return self.src_seqs[idx], self.tgt_seqs[idx]``. A DataLoader's default collate then turns a batch of
lists into a list of seq_len tensors of shape (batch,) — the batch comes out transposed.
Component: text_dataset (notebook 01).
Expected effect: the values are right, the type is not. The grading runner turns a returned list of ints into a
tensor before the comparison, so the "items are torch.long tensors" check could not see it; the runner now records
that the item was a Python list (``.pytype``, added with this mistake) and the check fails with "is a Python list".
"""

from torch.utils.data import Dataset

COMPONENT = "text_dataset"
EXPECT = "caught"
HINTS = ('tensor', 'list', 'dtype')

# --- answer cell ---


class TextDataset(Dataset):
    def __init__(self, src_seqs, tgt_seqs):
        self.src_seqs = src_seqs
        self.tgt_seqs = tgt_seqs

    def __len__(self):
        return len(self.src_seqs)

    def __getitem__(self, idx):
        return self.src_seqs[idx], self.tgt_seqs[idx]
