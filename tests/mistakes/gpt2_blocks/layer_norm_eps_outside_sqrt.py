"""GPT-2 LayerNorm: eps added outside the square root.

Mistake: ``(torch.sqrt(var) + self.eps)``.
Component: gpt2_layer_norm (notebook 10).
Expected effect: differs where the variance is close to eps; the check names the square root.
"""


import torch
from torch import nn

COMPONENT = "gpt2_layer_norm"
EXPECT = "caught"
HINTS = ('outside the square root',)

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
        return self.scale * (x - mean) / (torch.sqrt(var) + self.eps) + self.shift
