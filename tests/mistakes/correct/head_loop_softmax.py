"""Correct but unusual single head: a hand-written causal softmax, one query row at a time.

Component: single head. Must get full points. No masked_fill at all: row t only ever looks at keys 0..t, and the
softmax is computed by hand (max-subtracted exp / sum), so the weights after t are exactly zero.
"""

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
        self.register_buffer("mask", torch.tril(torch.ones(context_len, context_len)))
        self.d_k = d_k

    def attention_weights(self, x):
        batch, seq, _ = x.shape
        q = self.query(x)
        k = self.key(x)
        weights = torch.zeros(batch, seq, seq, dtype=x.dtype)
        for t in range(seq):
            scores = (q[:, t : t + 1, :] * k[:, : t + 1, :]).sum(-1) / self.d_k**0.5  # (batch, t+1)
            scores = scores - scores.max(dim=-1, keepdim=True).values
            e = scores.exp()
            weights[:, t, : t + 1] = e / e.sum(dim=-1, keepdim=True)
        return weights

    def forward(self, x):
        return torch.bmm(self.attention_weights(x), self.value(x))
