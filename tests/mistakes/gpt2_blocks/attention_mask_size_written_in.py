"""GPT-2 attention: the mask's size written into the code.

Mistake: ``torch.triu(torch.ones(16, 16), diagonal=1)``, the notebook's tiny configuration, instead of
``context_len``.
Component: gpt2_attention (notebook 10).
Expected effect: right for up to 16 positions, a RuntimeError beyond. Caught by the hidden case whose window is
longer (33-96 positions); the hidden feedback names a size written into the code.
"""

import math

import torch
from torch import nn

COMPONENT = "gpt2_attention"
EXPECT = "caught"
HINTS = ('size written',)

# --- answer cell ---

class MultiHeadAttention(nn.Module):
    """Causal self-attention with n_heads heads computed in one batch: (batch, seq, d_in) -> (batch, seq, d_out)."""

    def __init__(self, d_in, d_out, context_len, drop_rate, n_heads, qkv_bias=False):
        super().__init__()
        assert d_out % n_heads == 0, "d_out must be divisible by n_heads"
        self.d_out = d_out
        self.n_heads = n_heads
        self.head_dim = d_out // n_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(drop_rate)
        self.register_buffer("mask", torch.triu(torch.ones(16, 16), diagonal=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, seq, _ = x.shape

        def split(t):  # (b, seq, d_out) -> (b, n_heads, seq, head_dim)
            return t.view(b, seq, self.n_heads, self.head_dim).transpose(1, 2)

        q, k, v = split(self.W_query(x)), split(self.W_key(x)), split(self.W_value(x))
        scores = q @ k.transpose(2, 3) / math.sqrt(self.head_dim)
        scores = scores.masked_fill(self.mask.bool()[:seq, :seq], float("-inf"))
        weights = self.dropout(torch.softmax(scores, dim=-1))
        context = (weights @ v).transpose(1, 2).reshape(b, seq, self.d_out)
        return self.out_proj(context)
