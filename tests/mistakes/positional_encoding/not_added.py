"""Positional encoding: the code is computed but never added to the input.

Mistake: ``forward`` returns the positional table (broadcast to the batch) instead of ``x + pe``.
Component: positional encoding.
Expected effect: the output ignores the token embeddings entirely; output check fails, the likely cause should say
the encoding must be *added* to x.
"""

import math

import torch
from torch import nn

COMPONENT = "positional_encoding"
EXPECT = "caught"
HINTS = ("add", "x +", "ignor")

# --- answer cell ---


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, num_range=5000):
        super().__init__()
        position = torch.arange(num_range, dtype=torch.float32).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(num_range, d_model)
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term[: d_model // 2])
        self.register_buffer("pe", pe.unsqueeze(0))

    def forward(self, x):
        return self.pe[:, : x.size(1)].expand(x.size(0), -1, -1)
