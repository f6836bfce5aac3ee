"""Correct but unusual multi-head attention: uses the heads' weights, but computes all heads in one batched pass.

Component: multi-head attention. Must get full points. ``heads`` (ModuleList of ``Head``) and ``proj`` exist with the
exercise's names, so the weights load; forward stacks every head's query/key/value weights and runs one batched,
masked attention with ``torch.matmul`` and a helper method, instead of calling each head.
"""

import torch
from torch import nn

from gptedu import Head

COMPONENT = "multi_head"
EXPECT = "full"
HINTS = ()

# --- answer cell ---
import math  # noqa: E402 - the student's own import, in the answer cell


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads=8, context_len=100):
        super().__init__()
        self.n_head = num_heads
        self.hs = d_model // num_heads
        self.heads = nn.ModuleList([Head(d_model, self.hs, self.hs, context_len) for _ in range(num_heads)])
        self.proj = nn.Linear(d_model, d_model)

    def _stacked(self, attr):
        return torch.stack([getattr(h, attr).weight for h in self.heads])  # (heads, hs, d_model)

    def forward(self, x):
        t = x.size(1)
        q = torch.matmul(x.unsqueeze(1), self._stacked("query").transpose(1, 2).unsqueeze(0))  # (b, h, t, hs)
        k = torch.matmul(x.unsqueeze(1), self._stacked("key").transpose(1, 2).unsqueeze(0))
        v = torch.matmul(x.unsqueeze(1), self._stacked("value").transpose(1, 2).unsqueeze(0))
        att = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.hs)
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        att = att.masked_fill(~causal, float("-inf")).softmax(dim=-1)
        y = torch.matmul(att, v)  # (b, h, t, hs)
        y = y.permute(0, 2, 1, 3).reshape(x.size(0), t, self.n_head * self.hs)
        return self.proj(y)
