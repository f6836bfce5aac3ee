"""Correct but unusual single head: einsum, a -1e9 mask value, a boolean mask, a helper method, other local names.

Component: single head. Must get full points: the exercise fixes the parameter names (query/key/value) and the
``mask`` buffer, not how forward is written, and -1e9 is as good as -inf after the softmax.
"""

import math

import torch
from torch import nn

COMPONENT = "head"
EXPECT = "full"
HINTS = ()

# --- answer cell ---


class Head(nn.Module):
    def __init__(self, d_model, d_k, d_v, context_len=100):
        super().__init__()
        self.query = nn.Linear(d_model, d_k, bias=False)
        self.key = nn.Linear(d_model, d_k, bias=False)
        self.value = nn.Linear(d_model, d_v, bias=False)
        self.register_buffer("mask", torch.ones(context_len, context_len, dtype=torch.bool).tril())
        self.inv_temperature = 1.0 / math.sqrt(d_k)

    def _affinities(self, inp):
        queries = self.query(inp)
        keys = self.key(inp)
        return torch.einsum("bqd,bkd->bqk", queries, keys) * self.inv_temperature

    def attention_weights(self, x):
        n = x.shape[-2]
        aff = self._affinities(x)
        aff = torch.where(self.mask[:n, :n], aff, torch.full_like(aff, -1e9))
        return aff.softmax(-1)

    def forward(self, x):
        return torch.einsum("bqk,bkd->bqd", self.attention_weights(x), self.value(x))
