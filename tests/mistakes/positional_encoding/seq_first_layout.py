"""Positional encoding: the sequence-first layout of the old PyTorch tutorial, used on batch-first input.

Mistake: ``pe`` is stored as ``(num_range, 1, d_model)`` and forward does ``x + self.pe[:x.size(0)]``, i.e. it slices
by the *batch* size and broadcasts one position's code over every token of a sequence.
Component: positional encoding.
Expected effect: every token of batch row b gets the code of position b; the output/shape check fails and should
mention the (1, num_range, d_model) layout or slicing by seq.
"""

import math

import torch
from torch import nn

COMPONENT = "positional_encoding"
EXPECT = "caught"
HINTS = ("shape", "seq", "batch", "(1, num_range, d_model)")

# --- answer cell ---


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, num_range=5000):
        super().__init__()
        position = torch.arange(num_range, dtype=torch.float32).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(num_range, 1, d_model)
        pe[:, 0, 0::2] = torch.sin(position * div_term)
        pe[:, 0, 1::2] = torch.cos(position * div_term[: d_model // 2])
        self.register_buffer("pe", pe)

    def forward(self, x):
        return x + self.pe[: x.size(0)]
