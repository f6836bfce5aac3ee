"""GPTModel: weight tying ignored.

Mistake: ``pass`` where ``out_head.weight`` should be the embedding matrix.
Component: gpt2_model (notebook 10).
Expected effect: with tie_weights the parameters differ from the exercise's; the message names tie_weights.
"""

# ruff: noqa: F821, F841, B905, E501  (the names come from the notebook's earlier cells)


import torch
from torch import nn

COMPONENT = "gpt2_model"
EXPECT = "caught"
HINTS = ('tie_weights',)

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
            pass

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.out_head(self.final_norm(self.trf_blocks(self.emb(idx))))
