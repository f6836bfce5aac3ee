"""TransformerBlock: norm1 used before the feed-forward too.

Mistake: ``self.ff(self.norm1(x))``.
Component: gpt2_block (notebook 10).
Expected effect: wrong values (the norms hold different weights); the check names norm2.
"""

# ruff: noqa: F821, F841, B905, E501  (the names come from the notebook's earlier cells)


import torch
from torch import nn

COMPONENT = "gpt2_block"
EXPECT = "caught"
HINTS = ('norm2',)

# --- answer cell ---

class TransformerBlock(nn.Module):
    """Pre-LN block: (batch, seq, emb_dim) -> (batch, seq, emb_dim)."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.att = MultiHeadAttention(
            d_in=cfg["emb_dim"],
            d_out=cfg["emb_dim"],
            context_len=cfg["context_len"],
            drop_rate=cfg["drop_rate"],
            n_heads=cfg["n_heads"],
            qkv_bias=cfg["qkv_bias"],
        )
        self.ff = FeedForward(cfg)
        self.norm1 = LayerNorm(cfg["emb_dim"])
        self.norm2 = LayerNorm(cfg["emb_dim"])
        self.drop_shortcut = nn.Dropout(cfg["drop_rate"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_shortcut(self.att(self.norm1(x)))
        x = x + self.drop_shortcut(self.ff(self.norm1(x)))
        return x
