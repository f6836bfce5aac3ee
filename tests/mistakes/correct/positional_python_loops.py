"""Correct but unusual positional encoding: plain Python loops and math.sin/cos in double precision.

Component: positional encoding. Must get full points. The table is the closed form computed in float64 (more
accurate than the reference's float32 ``exp(log)`` route; differences of ~1e-4 appear at large positions), built
with ``10000 ** (2i / d_model)``, then stored as a float32 buffer.
"""

import math

import torch
from torch import nn

COMPONENT = "positional_encoding"
EXPECT = "full"
HINTS = ()

# --- answer cell ---


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, num_range=5000):
        super().__init__()
        table = [[0.0] * d_model for _ in range(num_range)]
        for pos in range(num_range):
            for i in range(0, d_model, 2):
                angle = pos / (10000 ** (i / d_model))
                table[pos][i] = math.sin(angle)
                if i + 1 < d_model:
                    table[pos][i + 1] = math.cos(angle)
        self.register_buffer("pe", torch.tensor(table, dtype=torch.float32).unsqueeze(0))

    def forward(self, x):
        seq_len = x.shape[1]
        return x + self.pe[:, :seq_len, :]
