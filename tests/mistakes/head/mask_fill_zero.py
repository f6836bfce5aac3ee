"""Single head: masked scores set to 0 instead of -inf.

Mistake: ``scores.masked_fill(mask == 0, 0.0)`` before the softmax — exp(0) = 1, so the future still gets weight.
Component: single head.
Expected effect: causality check fails; the message should say masked scores must be -inf (or a large negative).
"""

import math

import torch
from torch import nn

COMPONENT = "head"
EXPECT = "caught"
HINTS = ("mask", "-inf", "future", "after t")

# --- answer cell ---


class Head(nn.Module):
    def __init__(self, d_model, d_k, d_v, context_len=100):
        super().__init__()
        self.query = nn.Linear(d_model, d_k, bias=False)
        self.key = nn.Linear(d_model, d_k, bias=False)
        self.value = nn.Linear(d_model, d_v, bias=False)
        self.register_buffer("mask", torch.tril(torch.ones(context_len, context_len)))

    def attention_weights(self, x):
        seq = x.size(1)
        q, k = self.query(x), self.key(x)
        scores = q @ k.transpose(-2, -1) / math.sqrt(k.size(-1))
        scores = scores.masked_fill(self.mask[:seq, :seq] == 0, 0.0)
        return torch.softmax(scores, dim=-1)

    def forward(self, x):
        return self.attention_weights(x) @ self.value(x)
