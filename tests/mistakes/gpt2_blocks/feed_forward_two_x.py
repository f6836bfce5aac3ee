"""GPT-2 FeedForward: hidden layer 2x wide instead of 4x.

Mistake: ``2 * cfg['emb_dim']``.
Component: gpt2_feed_forward (notebook 10).
Expected effect: parameter shapes differ from the exercise's; a load error names the parameter.
"""

# ruff: noqa: F821, F841, B905, E501  (the names come from the notebook's earlier cells)


import torch
from torch import nn

COMPONENT = "gpt2_feed_forward"
EXPECT = "caught"
HINTS = ('parameter',)

# --- answer cell ---

class FeedForward(nn.Module):
    """(batch, seq, emb_dim) -> (batch, seq, emb_dim) through a 4x wider hidden layer."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(cfg["emb_dim"], 2 * cfg["emb_dim"]),
            GELU(),
            nn.Linear(2 * cfg["emb_dim"], cfg["emb_dim"]),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
