"""top_k_filter: the dropped logits are set to +inf.

Mistake: ``float('inf')`` instead of ``float('-inf')``.
Component: top_k_filter (notebook 09).
Expected effect: the dropped tokens would become the most likely ones; the check says they must be exactly -inf.
"""


import torch

COMPONENT = "top_k_filter"
EXPECT = "caught"
HINTS = ('-inf',)

# --- answer cell ---

def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits of each row, -inf elsewhere: (batch, vocab) -> (batch, vocab)."""
    k = min(k, logits.size(-1))
    kth_largest = torch.topk(logits, k, dim=-1).values[:, -1:]  # (batch, 1)
    return logits.masked_fill(logits < kth_largest, float("inf"))
