"""sample_next_token: the generator argument is accepted but not passed to torch.multinomial.

Mistake: ``torch.multinomial(probs, num_samples=1)`` — samples come from the global RNG, so seeding a generator
does not make them reproducible.
Component: sample_next_token (notebook 09).
Expected effect: two calls with identically seeded generators give different samples; the check should say "pass
generator=generator".
"""

import torch

COMPONENT = "sample_next_token"
EXPECT = "caught"
HINTS = ('generator',)


def top_k_filter(logits, k):
    """Stands for the notebook's own top_k_filter (the cell above); the notebook's definition wins."""
    kth = torch.topk(logits, min(k, logits.size(-1)), dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


# --- answer cell ---


def sample_next_token(logits, temperature=1.0, top_k=None, generator=None):
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1)
