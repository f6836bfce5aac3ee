"""Positional encoding: breaks when d_model is odd.

Mistake: ``pe[:, 1::2] = torch.cos(position * div_term)`` — for an odd ``d_model`` there is one more sine column
than cosine columns, so the assignment raises a shape error.
Component: positional encoding.
Expected effect: correct for even d_model, RuntimeError for odd d_model. Known undetectable by design: every graded
case uses an even d_model (the formula pairs columns 2i, 2i+1, and models always use an even width), so this answer
gets full points; the reference itself supports odd widths.
"""

import math

import torch
from torch import nn

COMPONENT = "positional_encoding"
EXPECT = "undetectable"
HINTS = ("odd", "d_model", "error", "raised")

# --- answer cell ---


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, num_range=5000):
        super().__init__()
        position = torch.arange(num_range, dtype=torch.float32).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(num_range, d_model)
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe.unsqueeze(0))

    def forward(self, x):
        return x + self.pe[:, : x.size(1)]
