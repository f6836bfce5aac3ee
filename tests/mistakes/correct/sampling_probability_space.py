"""Correct but unusual sampling: top-k applied to the probabilities, a renormalised distribution, its own top-k.

top_k_filter: ``torch.sort`` and a gathered threshold instead of ``torch.topk``, ``torch.where`` instead of
``masked_fill``. sample_next_token: softmax first, then the probabilities outside the top k are zeroed and the rest
renormalised (the same distribution as filtering the logits), sampled with ``torch.multinomial`` and the generator.
Component: top_k_filter and sample_next_token (notebook 09). Must get full points.
"""

import torch

COMPONENT = "sample_next_token"
ALSO = ("top_k_filter",)
EXPECT = "full"
HINTS = ()

# --- answer cell ---


def top_k_filter(logits, k):
    sorted_logits, _ = torch.sort(logits, dim=-1, descending=True)
    threshold = sorted_logits[..., min(k, logits.shape[-1]) - 1].unsqueeze(-1)
    return torch.where(logits >= threshold, logits, torch.full_like(logits, float("-inf")))


def sample_next_token(logits, temperature=1.0, top_k=None, generator=None):
    if temperature == 0:
        return torch.max(logits, dim=-1, keepdim=True).indices
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_k is not None:
        kth = torch.topk(probs, min(top_k, probs.shape[-1]), dim=-1).values[..., -1:]
        probs = torch.where(probs >= kth, probs, torch.zeros_like(probs))
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return torch.multinomial(probs, 1, generator=generator)
