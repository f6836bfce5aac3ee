"""get_batch: the targets are the inputs, not shifted by one.

Mistake: ``y = data[s : s + seq_len]`` — the model learns to copy its input.
Component: get_batch (notebook 01).
Expected effect: y == x; the check should say the targets are not shifted.
"""

import torch

COMPONENT = "get_batch"
EXPECT = "caught"
HINTS = ('shift', 'next token', 'copy')

# --- answer cell ---


def get_batch(data, batch_size, seq_len, generator=None):
    starts = torch.randint(len(data) - seq_len, (batch_size,), generator=generator)
    x = torch.stack([data[s : s + seq_len] for s in starts])
    y = torch.stack([data[s : s + seq_len] for s in starts])
    return x.long(), y.long()
