"""Positional encoding: the table kept as a plain tensor attribute, not a registered buffer.

Mistake: ``self.pe = pe.unsqueeze(0)`` instead of ``self.register_buffer("pe", pe.unsqueeze(0))``.
Component: positional encoding.
Expected effect: correct numbers on the CPU, but ``model.to("cuda")`` leaves the table on the CPU (a device error
on the first forward) and ``state_dict()`` does not hold it; the "`pe` is a registered buffer" check should fail and
say register_buffer.
"""

import math

import torch
from torch import nn

COMPONENT = "positional_encoding"
EXPECT = "caught"
HINTS = ("register_buffer",)

# --- answer cell ---


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, num_range=5000):
        super().__init__()
        position = torch.arange(num_range, dtype=torch.float32).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(num_range, d_model)
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term[: d_model // 2])
        self.pe = pe.unsqueeze(0)

    def forward(self, x):
        return x + self.pe[:, : x.size(1)]
