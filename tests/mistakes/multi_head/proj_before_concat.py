"""Multi-head attention: projection applied to the input instead of the concatenated heads.

Mistake: ``forward`` computes ``torch.cat([h(self.proj(x)) ...])``, i.e. projects first and never projects the
concatenated output.
Component: multi-head attention.
Expected effect: output differs from the reference; the message should name the projection / its order.
"""

import torch
from torch import nn

from gptedu import Head

COMPONENT = "multi_head"
EXPECT = "caught"
HINTS = ("proj", "projection", "order")

# --- answer cell ---


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads=8, context_len=100):
        super().__init__()
        head_size = d_model // num_heads
        self.heads = nn.ModuleList([Head(d_model, head_size, head_size, context_len) for _ in range(num_heads)])
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x):
        projected = self.proj(x)
        return torch.cat([h(projected) for h in self.heads], dim=-1)
