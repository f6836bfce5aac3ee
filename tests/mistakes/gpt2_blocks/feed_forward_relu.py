"""GPT-2 FeedForward: ReLU instead of GELU.

Mistake: ``nn.ReLU()`` in the Sequential.
Component: gpt2_feed_forward (notebook 10).
Expected effect: wrong values; the check names ReLU.
"""


import torch
from torch import nn

COMPONENT = "gpt2_feed_forward"
EXPECT = "caught"
HINTS = ('ReLU',)

# --- answer cell ---

class FeedForward(nn.Module):
    """(batch, seq, emb_dim) -> (batch, seq, emb_dim) through a 4x wider hidden layer."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(cfg["emb_dim"], 4 * cfg["emb_dim"]),
            nn.ReLU(),
            nn.Linear(4 * cfg["emb_dim"], cfg["emb_dim"]),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
