"""GPTEmbedding: the position embedding is not added.

Mistake: ``self.drop(self.tok_emb(idx))``.
Component: gpt2_embedding (notebook 10).
Expected effect: wrong values; the check names the position embedding.
"""

# ruff: noqa: F821, F841, B905, E501  (the names come from the notebook's earlier cells)


import torch
from torch import nn

COMPONENT = "gpt2_embedding"
EXPECT = "caught"
HINTS = ('position embedding is not added',)

# --- answer cell ---

class GPTEmbedding(nn.Module):
    """Token + learned position embeddings, then dropout: (batch, seq) ids -> (batch, seq, emb_dim)."""

    def __init__(self, context_len, vocab_size, emb_dim, drop_rate):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, emb_dim)
        self.pos_emb = nn.Embedding(context_len, emb_dim)
        self.drop = nn.Dropout(drop_rate)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(idx.size(1), device=idx.device)
        return self.drop(self.tok_emb(idx))
