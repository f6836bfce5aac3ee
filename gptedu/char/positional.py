"""Sinusoidal positional encoding (Vaswani et al., 2017, section 3.5)."""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_table(num_range: int, d_model: int) -> torch.Tensor:
    """``PE[pos, 2i] = sin(pos / 10000^(2i/d_model))``, ``PE[pos, 2i+1] = cos(...)``; shape ``(num_range, d_model)``."""
    position = torch.arange(num_range, dtype=torch.float32)[:, None]
    div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    pe = torch.zeros(num_range, d_model)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term[: d_model // 2])
    return pe


class PositionalEncoding(nn.Module):
    """Adds a fixed sinusoidal code of each position to the embeddings.

    Buffer ``pe``: ``(1, num_range, d_model)``. ``forward(x)``: ``x`` of shape ``(batch, seq, d_model)`` with
    ``seq <= num_range``; returns ``x + pe[:, :seq]``, same shape. No learnable parameters.
    """

    def __init__(self, d_model: int, num_range: int = 5000):
        super().__init__()
        self.register_buffer("pe", sinusoidal_table(num_range, d_model)[None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = x.size(1)
        if seq > self.pe.size(1):
            raise ValueError(f"Sequence length {seq} exceeds the positional encoding's num_range {self.pe.size(1)}.")
        return x + self.pe[:, :seq]
