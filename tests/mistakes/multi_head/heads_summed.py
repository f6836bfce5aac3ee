"""Multi-head attention: head outputs summed instead of concatenated.

Mistake: each head is given the full width ``d_model`` and the outputs are added (``torch.stack(...).sum(0)``), so
shapes still work out.
Component: multi-head attention.
Expected effect: the heads have the wrong size, so the reference weights do not load (shape mismatch on
``heads.i.query.weight``); the check should mention head size / concatenation.
"""

import torch
from torch import nn

from gptedu import Head

COMPONENT = "multi_head"
EXPECT = "caught"
HINTS = ("concat", "cat", "sum", "head_size", "shape")

# --- answer cell ---


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads=8, context_len=100):
        super().__init__()
        self.heads = nn.ModuleList([Head(d_model, d_model, d_model, context_len) for _ in range(num_heads)])
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x):
        return self.proj(torch.stack([h(x) for h in self.heads]).sum(dim=0))
