"""top_k_filter: top-k taken over the batch axis.

Mistake: ``torch.topk(logits, k, dim=0)`` — the k-th largest of each *column*, compared across rows.
Component: top_k_filter (notebook 09).
Expected effect: rows keep the wrong tokens (and a shape error when k > batch); the check should say "each row".
"""

import torch

COMPONENT = "top_k_filter"
EXPECT = "caught"
HINTS = ('each row', 'dim=-1', 'row')

# --- answer cell ---


def top_k_filter(logits, k):
    k = min(k, logits.size(0))
    kth = torch.topk(logits, k, dim=0).values[-1:, ...]
    return logits.masked_fill(logits < kth, float("-inf"))
