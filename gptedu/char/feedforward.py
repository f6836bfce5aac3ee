"""The position-wise feed-forward network."""

from __future__ import annotations

import torch
from torch import nn


class FeedForward(nn.Module):
    """Linear → GELU → Linear, applied to every position independently.

    Parameters: ``ffn`` = ``nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))``,
    so ``ffn[0]`` and ``ffn[2]`` hold the weights. ``forward(x)``: ``(batch, seq, d_model)`` → same shape.
    """

    def __init__(self, d_model: int, d_ff: int = 256):
        super().__init__()
        self.ffn = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn(x)
