"""Multi-head attention: one Head object repeated num_heads times.

Mistake: ``nn.ModuleList([Head(...)] * num_heads)`` — list multiplication repeats the *same* module, so all heads
share one set of weights.
Component: multi-head attention.
Expected effect: the state_dict still has keys heads.0 ... heads.{h-1}, but loading them writes the same tensors
h times (the last wins), so every head computes the same thing and the output differs from the reference. The
message should say the heads share weights.
"""

import torch
from torch import nn

from gptedu import Head

COMPONENT = "multi_head"
EXPECT = "caught"
HINTS = ("shared", "same", "independent", "repeated", "identical")

# --- answer cell ---


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads=8, context_len=100):
        super().__init__()
        head_size = d_model // num_heads
        self.heads = nn.ModuleList([Head(d_model, head_size, head_size, context_len)] * num_heads)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x):
        return self.proj(torch.cat([h(x) for h in self.heads], dim=-1))
