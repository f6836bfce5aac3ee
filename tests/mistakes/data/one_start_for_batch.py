"""get_batch: one random start repeated for the whole batch.

Mistake: ``s = torch.randint(len(data) - seq_len, (1,))`` then ``batch_size`` copies of the same window.
Component: get_batch (notebook 01).
Expected effect: every row of a batch is identical; the "windows start at random positions" check fails.
"""

import torch

COMPONENT = "get_batch"
EXPECT = "caught"
HINTS = ('random', 'start')

# --- answer cell ---


def get_batch(data, batch_size, seq_len, generator=None):
    starts = torch.randint(len(data) - seq_len, (1,), generator=generator).repeat(batch_size)
    x = torch.stack([data[s : s + seq_len] for s in starts])
    y = torch.stack([data[s + 1 : s + seq_len + 1] for s in starts])
    return x.long(), y.long()
