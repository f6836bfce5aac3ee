"""Batched causal multi-head self-attention, with an optional KV cache for fast generation."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from gptedu.gpt2.kvcache import LayerKVCache


class MultiHeadAttention(nn.Module):
    """All heads at once: one projection each for queries, keys and values, split into ``n_heads`` heads.

    Parameters: ``W_query``, ``W_key``, ``W_value`` (``nn.Linear(d_in, d_out, bias=qkv_bias)``), ``out_proj``
    (``nn.Linear(d_out, d_out)``, with bias). Buffer ``mask``: ``(context_len, context_len)`` bool, ``True``
    above the diagonal (the future a position must not see); not saved in the ``state_dict``.
    ``dropout`` (``nn.Dropout(drop_rate)``) acts on the attention weights.

    ``forward(x)``: ``(batch, seq, d_in)`` with ``seq <= context_len`` → ``(batch, seq, d_out)``.
    With ``kv_cache`` (a ``LayerKVCache``), ``x`` holds only the *new* positions: their keys/values are appended to
    the cache and their queries attend to every cached position plus themselves (causally).
    """

    def __init__(self, d_in: int, d_out: int, context_len: int, drop_rate: float, n_heads: int, qkv_bias: bool = False):
        super().__init__()
        if d_out % n_heads != 0:
            raise ValueError(f"d_out ({d_out}) must be divisible by n_heads ({n_heads}).")
        self.d_out = d_out
        self.n_heads = n_heads
        self.head_dim = d_out // n_heads
        self.context_len = context_len
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(drop_rate)
        future = torch.triu(torch.ones(context_len, context_len, dtype=torch.bool), diagonal=1)
        self.register_buffer("mask", future, persistent=False)

    def _split_heads(self, t: torch.Tensor) -> torch.Tensor:
        """``(batch, seq, d_out)`` → ``(batch, n_heads, seq, head_dim)``."""
        b, seq, _ = t.shape
        return t.view(b, seq, self.n_heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, kv_cache: LayerKVCache | None = None) -> torch.Tensor:
        b, seq, _ = x.shape
        queries = self._split_heads(self.W_query(x))
        keys = self._split_heads(self.W_key(x))
        values = self._split_heads(self.W_value(x))

        start = 0  # absolute position of x[:, 0]
        if kv_cache is not None:
            start = kv_cache.length
            keys, values = kv_cache.append(keys, values)  # now (batch, n_heads, start + seq, head_dim)
        end = start + seq
        if end > self.context_len:
            raise ValueError(
                f"Attention got positions up to {end} but context_len is {self.context_len}: crop the input "
                f"(or reset the KV cache) so that at most {self.context_len} positions are attended."
            )

        scores = queries @ keys.transpose(2, 3) / math.sqrt(self.head_dim)  # (batch, n_heads, seq, end)
        scores = scores.masked_fill(self.mask[start:end, :end], float("-inf"))
        weights = self.dropout(torch.softmax(scores, dim=-1))
        context = (weights @ values).transpose(1, 2).reshape(b, seq, self.d_out)
        return self.out_proj(context)
