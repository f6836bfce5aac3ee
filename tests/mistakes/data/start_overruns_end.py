"""get_batch: the last possible start is one too far.

Mistake: ``torch.randint(len(data) - seq_len + 1, ...)`` — a window starting at len(data) - seq_len has no target
for its last position, so the target slice is one token short and torch.stack fails (sometimes).
Component: get_batch (notebook 01).
Expected effect: an error or a short target for some draws; caught by a case where that start is likely.
"""

import torch

COMPONENT = "get_batch"
EXPECT = "caught"
HINTS = ('past the end', 'len(data) - seq_len', 'randint')

# --- answer cell ---


def get_batch(data, batch_size, seq_len, generator=None):
    starts = torch.randint(len(data) - seq_len + 1, (batch_size,), generator=generator)
    x = torch.stack([data[s : s + seq_len] for s in starts])
    y = torch.stack([data[s + 1 : s + seq_len + 1] for s in starts])
    return x.long(), y.long()
