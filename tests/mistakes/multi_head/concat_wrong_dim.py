"""Multi-head attention: head outputs concatenated along the sequence axis.

Mistake: ``torch.cat(outs, dim=1)`` gives ``(batch, num_heads * seq, head_size)``; the projection then fails.
Component: multi-head attention.
Expected effect: RuntimeError (matmul shape mismatch) in forward; the check reports the exception and should hint
at the concatenation dimension.
"""

import torch
from torch import nn

from gptedu import Head

COMPONENT = "multi_head"
EXPECT = "caught"
HINTS = ("dim", "cat", "shape")

# --- answer cell ---


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads=8, context_len=100):
        super().__init__()
        head_size = d_model // num_heads
        self.heads = nn.ModuleList([Head(d_model, head_size, head_size, context_len) for _ in range(num_heads)])
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x):
        return self.proj(torch.cat([h(x) for h in self.heads], dim=1))
