"""Multi-head attention: every head has size d_model, projection widened to match.

Mistake: ``Head(d_model, d_model, d_model)`` per head and ``proj = nn.Linear(num_heads * d_model, d_model)``.
Component: multi-head attention.
Expected effect: the module runs but has num_heads times too many parameters; the reference weights do not load
(shape mismatch); the message should name the head size ``d_model // num_heads``.
"""

import torch
from torch import nn

from gptedu import Head

COMPONENT = "multi_head"
EXPECT = "caught"
HINTS = ("head_size", "d_model // num_heads", "shape", "size")

# --- answer cell ---


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads=8, context_len=100):
        super().__init__()
        self.heads = nn.ModuleList([Head(d_model, d_model, d_model, context_len) for _ in range(num_heads)])
        self.proj = nn.Linear(num_heads * d_model, d_model)

    def forward(self, x):
        return self.proj(torch.cat([h(x) for h in self.heads], dim=-1))
