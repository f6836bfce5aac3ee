"""Multi-head attention: heads kept in a plain Python list.

Mistake: ``self.heads = [Head(...) for _ in range(num_heads)]`` — the heads are not registered as submodules.
Component: multi-head attention.
Expected effect: their weights are missing from ``state_dict()``/``parameters()`` (the optimizer would never train
them); strict loading fails with missing keys; the message should say nn.ModuleList.
"""

import torch
from torch import nn

from gptedu import Head

COMPONENT = "multi_head"
EXPECT = "caught"
HINTS = ("ModuleList", "missing", "register")

# --- answer cell ---


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads=8, context_len=100):
        super().__init__()
        head_size = d_model // num_heads
        self.heads = [Head(d_model, head_size, head_size, context_len) for _ in range(num_heads)]
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x):
        return self.proj(torch.cat([h(x) for h in self.heads], dim=-1))
