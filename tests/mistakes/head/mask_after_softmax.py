"""Single head: mask applied after the softmax.

Mistake: ``weights = softmax(scores); weights = weights.masked_fill(mask == 0, 0)``.
Component: single head.
Expected effect: no future weight, but rows no longer sum to 1 (except the last); the rows-sum-to-1 / output check
fails and should ask whether the mask is applied before the softmax.
"""

import math

import torch
from torch import nn

COMPONENT = "head"
EXPECT = "caught"
HINTS = ("before softmax", "sum to 1", "mask")

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
        weights = torch.softmax(scores, dim=-1)
        return weights.masked_fill(self.mask[:seq, :seq] == 0, 0.0)

    def forward(self, x):
        return self.attention_weights(x) @ self.value(x)
