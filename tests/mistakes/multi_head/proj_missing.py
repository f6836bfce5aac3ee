"""Multi-head attention: output projection defined but never applied.

Mistake: ``forward`` returns ``torch.cat([h(x) for h in self.heads], dim=-1)`` and skips ``self.proj``.
Component: multi-head attention.
Expected effect: weights load fine, output differs from the reference; the check should name the missing
projection.
"""

import torch
from torch import nn

from gptedu import Head

COMPONENT = "multi_head"
EXPECT = "caught"
HINTS = ("proj", "projection")

# --- answer cell ---


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads=8, context_len=100):
        super().__init__()
        head_size = d_model // num_heads
        self.heads = nn.ModuleList([Head(d_model, head_size, head_size, context_len) for _ in range(num_heads)])
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x):
        return torch.cat([h(x) for h in self.heads], dim=-1)
