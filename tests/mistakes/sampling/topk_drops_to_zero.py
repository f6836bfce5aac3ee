"""top_k_filter: the dropped logits are set to 0 instead of -inf.

Mistake: ``logits.masked_fill(logits < kth, 0.0)`` — exp(0) = 1, so the "removed" tokens keep a sizeable probability.
Component: top_k_filter (notebook 09).
Expected effect: more than k finite logits per row; the check should say to use -inf.
"""

import torch

COMPONENT = "top_k_filter"
EXPECT = "caught"
HINTS = ('-inf', '0')

# --- answer cell ---


def top_k_filter(logits, k):
    k = min(k, logits.size(-1))
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, 0.0)
