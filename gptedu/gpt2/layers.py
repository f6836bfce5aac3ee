"""The small pieces of a GPT-2 block, written out by hand: ``LayerNorm``, ``GELU`` and ``FeedForward``."""

from __future__ import annotations

import math

import torch
from torch import nn

from gptedu.gpt2.config import GPTConfig


class LayerNorm(nn.Module):
    """Normalise each position's vector to mean 0 / variance 1, then scale and shift.

    ``y = scale * (x - mean) / sqrt(var + eps) + shift`` over the last dimension, with the *biased* variance
    (divide by ``emb_dim``, not ``emb_dim - 1``), exactly like ``torch.nn.LayerNorm``.

    Parameters: ``scale`` ``(emb_dim,)`` initialised to ones, ``shift`` ``(emb_dim,)`` initialised to zeros.
    ``forward(x)``: ``(..., emb_dim)`` → same shape.
    """

    def __init__(self, emb_dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.ones(emb_dim))
        self.shift = nn.Parameter(torch.zeros(emb_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        return self.scale * (x - mean) / torch.sqrt(var + self.eps) + self.shift


class GELU(nn.Module):
    """GELU with GPT-2's tanh approximation: ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.

    No parameters. Equals ``torch.nn.functional.gelu(x, approximate="tanh")``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


class FeedForward(nn.Module):
    """Position-wise MLP: ``Linear(emb_dim, 4 emb_dim) → GELU → Linear(4 emb_dim, emb_dim)``.

    Parameters: ``layers`` = ``nn.Sequential`` whose ``layers[0]`` and ``layers[2]`` are the two ``nn.Linear``
    (both with bias); ``layers[1]`` is ``GELU``. ``forward(x)``: ``(batch, seq, emb_dim)`` → same shape.
    """

    def __init__(self, cfg: GPTConfig | dict):
        super().__init__()
        cfg = GPTConfig.coerce(cfg)
        self.layers = nn.Sequential(
            nn.Linear(cfg.emb_dim, 4 * cfg.emb_dim),
            GELU(),
            nn.Linear(4 * cfg.emb_dim, cfg.emb_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
