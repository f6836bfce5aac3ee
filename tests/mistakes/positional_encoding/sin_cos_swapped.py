"""Positional encoding: sin and cos swapped.

Mistake: even columns get cos and odd columns get sin (``PE[pos, 2i] = cos(...)``, ``PE[pos, 2i+1] = sin(...)``).
Component: positional encoding.
Expected effect: the table differs from the closed form in every column (position 0 reads 1,0,1,0... instead of
0,1,0,1...); the closed-form / output check fails and should point at the sin/cos order.
"""

import math

import torch
from torch import nn

COMPONENT = "positional_encoding"
EXPECT = "caught"
HINTS = ("sin", "cos")

# --- answer cell ---


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, num_range=5000):
        super().__init__()
        position = torch.arange(num_range, dtype=torch.float32).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(num_range, d_model)
        pe[:, 0::2] = torch.cos(position * div_term)
        pe[:, 1::2] = torch.sin(position * div_term[: d_model // 2])
        self.register_buffer("pe", pe.unsqueeze(0))

    def forward(self, x):
        return x + self.pe[:, : x.size(1)]
