"""GPT-2 LayerNorm: unbiased variance (divides by n-1).

Mistake: ``x.var(dim=-1, keepdim=True, unbiased=True)``.
Component: gpt2_layer_norm (notebook 10).
Expected effect: LayerNorm loses its 10 points with a message naming the biased variance; TransformerBlock and GPTModel, which use this LayerNorm, keep theirs (they are graded with a correct stand-in).
"""

# ruff: noqa: F821, F841, B905, E501  (the names come from the notebook's earlier cells)


import torch
from torch import nn

COMPONENT = "gpt2_layer_norm"
EXPECT = "caught"
HINTS = ('unbiased',)

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
        var = x.var(dim=-1, keepdim=True, unbiased=True)
        return self.scale * (x - mean) / torch.sqrt(var + self.eps) + self.shift
