"""Single head: values computed with the key projection (copy-paste slip).

Mistake: ``forward`` returns ``weights @ self.key(x)`` instead of ``weights @ self.value(x)``.
Component: single head.
Expected effect: the attention weights are right but the output is wrong (and has d_k columns instead of d_v); the
output check fails.
"""

import math

import torch
from torch import nn

COMPONENT = "head"
EXPECT = "caught"
HINTS = ("value", "v")

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
        scores = scores.masked_fill(self.mask[:seq, :seq] == 0, float("-inf"))
        return torch.softmax(scores, dim=-1)

    def forward(self, x):
        return self.attention_weights(x) @ self.key(x)
