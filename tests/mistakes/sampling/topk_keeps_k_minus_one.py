"""top_k_filter: keeps one logit too few (<= instead of <).

Mistake: ``logits.masked_fill(logits <= kth, -inf)`` also drops the k-th largest logit itself.
Component: top_k_filter (notebook 09).
Expected effect: k-1 finite logits per row (none at all for k = 1, which makes the softmax NaN).
"""

import torch

COMPONENT = "top_k_filter"
EXPECT = "caught"
HINTS = ('k-th', '<=', 'one logit too few', 'too few')

# --- answer cell ---


def top_k_filter(logits, k):
    k = min(k, logits.size(-1))
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits <= kth, float("-inf"))
