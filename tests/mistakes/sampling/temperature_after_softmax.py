"""sample_next_token: temperature applied to the probabilities after the softmax.

Mistake: ``probs = torch.softmax(logits, -1) / temperature`` — torch.multinomial renormalises, so the temperature
has no effect.
Component: sample_next_token (notebook 09).
Expected effect: samples follow the temperature-1 distribution; the check should say "divide the logits BEFORE the
softmax".
"""

import torch

COMPONENT = "sample_next_token"
EXPECT = "caught"
HINTS = ('temperature', 'before the softmax', 'no effect')


def top_k_filter(logits, k):
    """Stands for the notebook's own top_k_filter (the cell above); the notebook's definition wins."""
    kth = torch.topk(logits, min(k, logits.size(-1)), dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


# --- answer cell ---


def sample_next_token(logits, temperature=1.0, top_k=None, generator=None):
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    probs = torch.softmax(logits, dim=-1) / temperature
    return torch.multinomial(probs, num_samples=1, generator=generator)
