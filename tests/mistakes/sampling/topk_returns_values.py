"""top_k_filter: returns the k largest values instead of a filtered copy of the logits.

Mistake: ``return torch.topk(logits, k).values`` — shape (batch, k), and the token ids are lost.
Component: top_k_filter (notebook 09).
Expected effect: wrong shape; the check should say to return a tensor of the same shape as the logits.
"""

import torch

COMPONENT = "top_k_filter"
EXPECT = "caught"
HINTS = ('shape', 'same shape')

# --- answer cell ---


def top_k_filter(logits, k):
    k = min(k, logits.size(-1))
    return torch.topk(logits, k, dim=-1).values
