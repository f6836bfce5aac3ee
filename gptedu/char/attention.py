"""Masked scaled dot-product self-attention: one head, then several heads side by side."""

from __future__ import annotations

import math

import torch
from torch import nn


class Head(nn.Module):
    """One head of causal self-attention.

    Parameters: ``query``, ``key`` (``nn.Linear(d_model, d_k, bias=False)``), ``value``
    (``nn.Linear(d_model, d_v, bias=False)``). Buffer ``mask``: ``(context_len, context_len)`` lower-triangular ones.

    ``forward(x)``: ``x`` ``(batch, seq, d_model)`` with ``seq <= context_len`` → ``(batch, seq, d_v)``.
    ``attention_weights(x)`` returns the softmax weights ``(batch, seq, seq)``; each row sums to 1 and position t
    gives zero weight to every position after t.
    """

    def __init__(self, d_model: int, d_k: int, d_v: int, context_len: int = 100):
        super().__init__()
        self.query = nn.Linear(d_model, d_k, bias=False)
        self.key = nn.Linear(d_model, d_k, bias=False)
        self.value = nn.Linear(d_model, d_v, bias=False)
        self.register_buffer("mask", torch.tril(torch.ones(context_len, context_len)))

    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        seq = x.size(1)
        if seq > self.mask.size(0):
            raise ValueError(f"Sequence length {seq} exceeds this head's context_len {self.mask.size(0)}.")
        q, k = self.query(x), self.key(x)  # (batch, seq, d_k)
        scores = q @ k.transpose(-2, -1) / math.sqrt(k.size(-1))  # (batch, seq, seq)
        scores = scores.masked_fill(self.mask[:seq, :seq] == 0, float("-inf"))
        return torch.softmax(scores, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention_weights(x) @ self.value(x)


class MultiHeadAttention(nn.Module):
    """``num_heads`` ``Head``s of size ``d_model // num_heads``, concatenated, then a linear projection.

    Parameters: ``heads`` (``nn.ModuleList`` of ``Head``; each ``heads[i].query/key/value``), ``proj``
    (``nn.Linear(d_model, d_model)``, with bias). ``forward(x)``: ``(batch, seq, d_model)`` → same shape.
    """

    def __init__(self, d_model: int, num_heads: int = 8, context_len: int = 100):
        super().__init__()
        if d_model % num_heads != 0:
            raise ValueError(f"d_model={d_model} must be divisible by num_heads={num_heads}.")
        head_size = d_model // num_heads
        self.heads = nn.ModuleList(Head(d_model, head_size, head_size, context_len) for _ in range(num_heads))
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(torch.cat([head(x) for head in self.heads], dim=-1))
