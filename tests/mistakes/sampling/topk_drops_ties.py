"""top_k_filter: keeps exactly k positions, dropping logits tied with the k-th largest.

Mistake: scatter the values of torch.topk into a tensor of -inf.
Component: top_k_filter (notebook 09).
Expected effect: the exercise says ties stay; the check names the tie and the number of logits kept.
"""


import torch

COMPONENT = "top_k_filter"
EXPECT = "caught"
HINTS = ('ties',)

# --- answer cell ---

def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits of each row, -inf elsewhere: (batch, vocab) -> (batch, vocab)."""
    k = min(k, logits.size(-1))
    values, indices = torch.topk(logits, k, dim=-1)
    return torch.full_like(logits, float("-inf")).scatter(-1, indices, values)
