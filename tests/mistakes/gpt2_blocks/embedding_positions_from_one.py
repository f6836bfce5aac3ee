"""GPTEmbedding: positions start at 1.

Mistake: ``torch.arange(1, idx.size(1) + 1)``.
Component: gpt2_embedding (notebook 10).
Expected effect: wrong values (or an index error at seq == context_len); the check names the start.
"""


import torch
from torch import nn

COMPONENT = "gpt2_embedding"
EXPECT = "caught"
HINTS = ('start at 1',)

# --- answer cell ---

class GPTEmbedding(nn.Module):
    """Token + learned position embeddings, then dropout: (batch, seq) ids -> (batch, seq, emb_dim)."""

    def __init__(self, context_len, vocab_size, emb_dim, drop_rate):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, emb_dim)
        self.pos_emb = nn.Embedding(context_len, emb_dim)
        self.drop = nn.Dropout(drop_rate)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(1, idx.size(1) + 1)
        return self.drop(self.tok_emb(idx) + self.pos_emb(positions))
