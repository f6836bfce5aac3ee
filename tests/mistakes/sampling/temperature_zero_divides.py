"""sample_next_token: temperature 0 is not treated as greedy; the logits are divided by zero.

Mistake: no ``if temperature == 0`` branch: ``logits / 0`` is inf/NaN and torch.multinomial raises.
Component: sample_next_token (notebook 09).
Expected effect: an exception (or nonsense) for temperature 0; the greedy check fails and should say temperature 0
means argmax.
"""

import torch

COMPONENT = "sample_next_token"
EXPECT = "caught"
HINTS = ("temperature=0", "temperature == 0", "greedy")


def top_k_filter(logits, k):
    """Stands for the notebook's own top_k_filter (the cell above); the notebook's definition wins."""
    kth = torch.topk(logits, min(k, logits.size(-1)), dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


# --- answer cell ---


def sample_next_token(logits, temperature=1.0, top_k=None, generator=None):
    logits = logits / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)
