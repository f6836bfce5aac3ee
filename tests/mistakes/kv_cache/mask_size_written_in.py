"""Cached attention: the mask's size written into the code.

Mistake: ``torch.triu(torch.ones(16, 16), diagonal=1)``, the size the notebook demonstrates with, instead of
``context_len``.
Component: kv_cached_attention (notebook 13).
Expected effect: right for up to 16 positions, a RuntimeError beyond. Caught by the hidden case whose window is
longer (33-96 positions); the hidden feedback names a size written into the code.
"""

import math

import torch
from torch import nn

COMPONENT = "kv_cached_attention"
EXPECT = "caught"
HINTS = ('size written',)

# --- answer cell ---

class CachedMultiHeadAttention(nn.Module):
    """Causal multi-head attention with a KV cache: (batch, new, d_in) -> (batch, new, d_out)."""

    def __init__(self, d_in, d_out, context_len, drop_rate, n_heads, qkv_bias=False):
        super().__init__()
        assert d_out % n_heads == 0, "d_out must be divisible by n_heads"
        self.d_out, self.n_heads, self.head_dim = d_out, n_heads, d_out // n_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(drop_rate)
        self.register_buffer("mask", torch.triu(torch.ones(16, 16), diagonal=1))
        self.reset_cache()

    def reset_cache(self):
        self.cache_k = None  # (batch, n_heads, cached, head_dim) once filled
        self.cache_v = None

    def forward(self, x: torch.Tensor, use_cache: bool = False) -> torch.Tensor:
        b, new, _ = x.shape

        def split(t):
            return t.view(b, new, self.n_heads, self.head_dim).transpose(1, 2)

        q, k, v = split(self.W_query(x)), split(self.W_key(x)), split(self.W_value(x))
        start = 0
        if use_cache:
            if self.cache_k is not None:
                start = self.cache_k.size(2)
                k = torch.cat([self.cache_k, k], dim=2)
                v = torch.cat([self.cache_v, v], dim=2)
            self.cache_k, self.cache_v = k, v
        end = start + new
        scores = q @ k.transpose(2, 3) / math.sqrt(self.head_dim)
        scores = scores.masked_fill(self.mask.bool()[start:end, :end], float("-inf"))
        weights = self.dropout(torch.softmax(scores, dim=-1))
        return self.out_proj((weights @ v).transpose(1, 2).reshape(b, new, self.d_out))

    def step_by_step(self, x: torch.Tensor) -> torch.Tensor:
        self.reset_cache()
        return torch.cat([self(x[:, t : t + 1], use_cache=True) for t in range(x.size(1))], dim=1)

    def prefill_then_steps(self, x: torch.Tensor) -> torch.Tensor:
        self.reset_cache()
        half = max(1, x.size(1) // 2)
        outs = [self(x[:, :half], use_cache=True)]
        outs += [self(x[:, t : t + 1], use_cache=True) for t in range(half, x.size(1))]
        return torch.cat(outs, dim=1)
