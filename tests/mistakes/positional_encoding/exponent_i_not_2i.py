"""Positional encoding: frequency exponent uses the column index where the formula has 2i.

Mistake: the student loops over the even columns ``j = 0, 2, 4, ...`` (which already equal 2i) and writes
``10000 ** (2 * j / d_model)``, so every frequency is squared-too-fast (exponent 4i/d instead of 2i/d).
Component: positional encoding.
Expected effect: column 0 and 1 are right, every later column pair has the wrong frequency; the closed-form check
fails from column 2 on and should mention the exponent / frequencies.
"""

import torch
from torch import nn

COMPONENT = "positional_encoding"
EXPECT = "caught"
HINTS = ("exponent", "frequenc", "10000", "2i")

# --- answer cell ---


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, num_range=5000):
        super().__init__()
        pe = torch.zeros(num_range, d_model)
        position = torch.arange(num_range, dtype=torch.float32).unsqueeze(1)
        for j in range(0, d_model, 2):
            angle = position[:, 0] / (10000 ** (2 * j / d_model))
            pe[:, j] = torch.sin(angle)
            if j + 1 < d_model:
                pe[:, j + 1] = torch.cos(angle)
        self.register_buffer("pe", pe.unsqueeze(0))

    def forward(self, x):
        return x + self.pe[:, : x.size(1)]
