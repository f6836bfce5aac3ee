"""Single head: query/key/value projections created with a bias.

Mistake: ``nn.Linear(d_model, d_k)`` (bias defaults to True) where the exercise asks for ``bias=False``.
Component: single head.
Expected effect: the reference weights cannot be loaded strictly (unexpected keys ``query.bias`` ...); the check
should say "bias=False".
"""

import math

import torch
from torch import nn

COMPONENT = "head"
EXPECT = "caught"
HINTS = ("bias", "state_dict", "unexpected")

# --- answer cell ---


class Head(nn.Module):
    def __init__(self, d_model, d_k, d_v, context_len=100):
        super().__init__()
        self.query = nn.Linear(d_model, d_k)
        self.key = nn.Linear(d_model, d_k)
        self.value = nn.Linear(d_model, d_v)
        self.register_buffer("mask", torch.tril(torch.ones(context_len, context_len)))

    def attention_weights(self, x):
        seq = x.size(1)
        q, k = self.query(x), self.key(x)
        scores = q @ k.transpose(-2, -1) / math.sqrt(k.size(-1))
        scores = scores.masked_fill(self.mask[:seq, :seq] == 0, float("-inf"))
        return torch.softmax(scores, dim=-1)

    def forward(self, x):
        return self.attention_weights(x) @ self.value(x)
