"""Positional encoding: the fixed table is stored as an ``nn.Parameter`` instead of a buffer.

Mistake: ``self.pe = nn.Parameter(pe)`` — the "fixed" code becomes learnable and the optimizer will change it.
Component: positional encoding.
Expected effect: the forward output is right, but the module has trainable parameters (the exercise asks for none)
and no ``pe`` buffer; a check on ``parameters()`` / buffers should fail and say "register_buffer".
"""

import math

import torch
from torch import nn

COMPONENT = "positional_encoding"
EXPECT = "caught"
HINTS = ("buffer", "parameter")

# --- answer cell ---


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, num_range=5000):
        super().__init__()
        position = torch.arange(num_range, dtype=torch.float32).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(num_range, d_model)
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term[: d_model // 2])
        self.pe = nn.Parameter(pe.unsqueeze(0))

    def forward(self, x):
        return x + self.pe[:, : x.size(1)]
