"""GPTModel: final_norm not applied.

Mistake: ``self.out_head(self.trf_blocks(self.emb(idx)))``.
Component: gpt2_model (notebook 10).
Expected effect: wrong values; the check names final_norm.
"""

# ruff: noqa: F821, F841, B905, E501  (the names come from the notebook's earlier cells)


import torch
from torch import nn

COMPONENT = "gpt2_model"
EXPECT = "caught"
HINTS = ('final_norm',)

# --- answer cell ---

class GPTModel(nn.Module):
    """GPT-2: (batch, seq) token ids -> (batch, seq, vocab_size) logits."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.emb = GPTEmbedding(cfg["context_len"], cfg["vocab_size"], cfg["emb_dim"], cfg["drop_rate"])
        self.trf_blocks = nn.Sequential(*[TransformerBlock(cfg) for _ in range(cfg["n_layers"])])
        self.final_norm = LayerNorm(cfg["emb_dim"])
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)
        if cfg.get("tie_weights", False):
            self.out_head.weight = self.emb.tok_emb.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.out_head(self.trf_blocks(self.emb(idx)))
