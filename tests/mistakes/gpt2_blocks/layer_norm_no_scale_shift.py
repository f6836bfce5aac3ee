"""GPT-2 LayerNorm: scale and shift never applied.

Mistake: returns the normalised x only.
Component: gpt2_layer_norm (notebook 10).
Expected effect: wrong as soon as scale/shift differ from 1/0 (the checks load random values).
"""


import torch
from torch import nn

COMPONENT = "gpt2_layer_norm"
EXPECT = "caught"
HINTS = ('scale and shift',)

# --- answer cell ---

class LayerNorm(nn.Module):
    """scale * (x - mean) / sqrt(var + eps) + shift over the last axis; (..., emb_dim) -> same shape."""

    def __init__(self, emb_dim: int):
        super().__init__()
        self.eps = 1e-5
        self.scale = nn.Parameter(torch.ones(emb_dim))
        self.shift = nn.Parameter(torch.zeros(emb_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        return (x - mean) / torch.sqrt(var + self.eps)
