"""Single head: the mask's size written into the code.

Mistake: ``torch.tril(torch.ones(64, 64))``, the size of the notebook's own demo, instead of ``context_len``.
Component: single head.
Expected effect: right for every sequence of up to 64 positions, a RuntimeError beyond (``Head(..., context_len=100)``
on 80 positions, the default window). Caught by the hidden case whose window is longer than the notebook's (101-160
positions, drawn from the course secret); the hidden feedback names a size written into the code.
"""

import math

import torch
from torch import nn

COMPONENT = "head"
EXPECT = "caught"
HINTS = ('size written',)

# --- answer cell ---


class Head(nn.Module):
    def __init__(self, d_model, d_k, d_v, context_len=100):
        super().__init__()
        self.query = nn.Linear(d_model, d_k, bias=False)
        self.key = nn.Linear(d_model, d_k, bias=False)
        self.value = nn.Linear(d_model, d_v, bias=False)
        self.register_buffer("mask", torch.tril(torch.ones(64, 64)))

    def attention_weights(self, x):
        seq = x.size(1)
        q, k = self.query(x), self.key(x)
        scores = q @ k.transpose(-2, -1) / math.sqrt(k.size(-1))
        scores = scores.masked_fill(self.mask[:seq, :seq] == 0, float("-inf"))
        return torch.softmax(scores, dim=-1)

    def forward(self, x):
        return self.attention_weights(x) @ self.value(x)
