"""Single head: full (context_len, context_len) mask used on a shorter sequence.

Mistake: ``scores.masked_fill(self.mask == 0, -inf)`` without cropping the mask to ``[:seq, :seq]``.
Component: single head.
Expected effect: works only when seq == context_len; raises a broadcasting RuntimeError otherwise. Caught by any
case with seq < context_len; the message should say to crop the mask.
"""

import math

import torch
from torch import nn

COMPONENT = "head"
EXPECT = "caught"
HINTS = ("mask", "seq", "crop", "context_len", "[:seq")

# --- answer cell ---


class Head(nn.Module):
    def __init__(self, d_model, d_k, d_v, context_len=100):
        super().__init__()
        self.query = nn.Linear(d_model, d_k, bias=False)
        self.key = nn.Linear(d_model, d_k, bias=False)
        self.value = nn.Linear(d_model, d_v, bias=False)
        self.register_buffer("mask", torch.tril(torch.ones(context_len, context_len)))

    def attention_weights(self, x):
        q, k = self.query(x), self.key(x)
        scores = q @ k.transpose(-2, -1) / math.sqrt(k.size(-1))
        scores = scores.masked_fill(self.mask == 0, float("-inf"))
        return torch.softmax(scores, dim=-1)

    def forward(self, x):
        return self.attention_weights(x) @ self.value(x)
