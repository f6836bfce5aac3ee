"""Single head: scores divided by d_k instead of sqrt(d_k).

Mistake: ``scores = q @ k.T / d_k``.
Component: single head.
Expected effect: softmax too flat; weights differ from the reference everywhere except where d_k == 1. The check
should name the scaling.
"""


import torch
from torch import nn

COMPONENT = "head"
EXPECT = "caught"
HINTS = ("sqrt", "scal")

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
        d_k = k.size(-1)
        scores = q @ k.transpose(-2, -1) / d_k
        scores = scores.masked_fill(self.mask[:seq, :seq] == 0, float("-inf"))
        return torch.softmax(scores, dim=-1)

    def forward(self, x):
        return self.attention_weights(x) @ self.value(x)
