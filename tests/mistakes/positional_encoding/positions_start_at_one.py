"""Positional encoding: positions counted from 1 instead of 0.

Mistake: ``position = torch.arange(1, num_range + 1)``, so row 0 holds the code of position 1.
Component: positional encoding.
Expected effect: every row is shifted by one position (row 0 is not sin(0)=0, cos(0)=1); closed-form check fails
at position 0.
"""

import math

import torch
from torch import nn

COMPONENT = "positional_encoding"
EXPECT = "caught"
HINTS = ("position 0", "start", "arange")

# --- answer cell ---


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, num_range=5000):
        super().__init__()
        position = torch.arange(1, num_range + 1, dtype=torch.float32).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(num_range, d_model)
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term[: d_model // 2])
        self.register_buffer("pe", pe.unsqueeze(0))

    def forward(self, x):
        return x + self.pe[:, : x.size(1)]
