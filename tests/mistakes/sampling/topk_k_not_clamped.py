"""top_k_filter: k larger than the vocabulary is not clamped.

Mistake: ``torch.topk(logits, k)`` without ``min(k, logits.size(-1))`` raises when k exceeds the vocabulary.
Component: top_k_filter (notebook 09).
Expected effect: RuntimeError "selected index k out of range" for k > vocab; caught by a case with a large k.
"""

import torch

COMPONENT = "top_k_filter"
EXPECT = "caught"
HINTS = ("min(k", "out of range", "k >=")

# --- answer cell ---


def top_k_filter(logits, k):
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))
