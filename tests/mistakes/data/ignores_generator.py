"""get_batch: the generator argument is not passed to torch.randint.

Mistake: batches come from the global RNG, so a seeded generator does not make them reproducible.
Component: get_batch (notebook 01).
Expected effect: two calls with identically seeded generators give different batches.
"""

import torch

COMPONENT = "get_batch"
EXPECT = "caught"
HINTS = ('generator',)

# --- answer cell ---


def get_batch(data, batch_size, seq_len, generator=None):
    starts = torch.randint(len(data) - seq_len, (batch_size,))
    x = torch.stack([data[s : s + seq_len] for s in starts])
    y = torch.stack([data[s + 1 : s + seq_len + 1] for s in starts])
    return x.long(), y.long()
