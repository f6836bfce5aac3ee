"""Positional encoding: sines in the first half of the columns, cosines in the second half.

Mistake: ``pe = cat([sin(pos * w), cos(pos * w)], dim=-1)`` (the tensor2tensor layout) instead of interleaving
sin in even and cos in odd columns as the exercise's formula says.
Component: positional encoding.
Expected effect: same numbers in a different column order; the closed-form check fails from column 1 on and should
point at even/odd columns.
"""

import math

import torch
from torch import nn

COMPONENT = "positional_encoding"
EXPECT = "caught"
HINTS = ("even", "odd", "interleav", "2i+1", "column")

# --- answer cell ---


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, num_range=5000):
        super().__init__()
        position = torch.arange(num_range, dtype=torch.float32).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        angles = position * div_term
        pe = torch.cat([torch.sin(angles), torch.cos(angles[:, : d_model // 2])], dim=-1)
        self.register_buffer("pe", pe.unsqueeze(0))

    def forward(self, x):
        return x + self.pe[:, : x.size(1)]
