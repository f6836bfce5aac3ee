"""TransformerBlock: post-LN instead of GPT-2's pre-LN.

Mistake: ``x = self.norm1(x + self.att(x))``.
Component: gpt2_block (notebook 10).
Expected effect: wrong values; the check names post-LN.
"""

# ruff: noqa: F821, F841, B905, E501  (the names come from the notebook's earlier cells)


import torch
from torch import nn

COMPONENT = "gpt2_block"
EXPECT = "caught"
HINTS = ('post-LN',)

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
        x = self.norm1(x + self.att(x))
        x = self.norm2(x + self.ff(x))
        return x
