"""sample_next_token: the top_k argument is accepted but ignored.

Mistake: the call to ``top_k_filter`` is missing.
Component: sample_next_token (notebook 09).
Expected effect: tokens outside the k most likely are sampled; the top-k support check fails and names top-k.
"""

import torch

COMPONENT = "sample_next_token"
EXPECT = "caught"
HINTS = ('top-k', 'top k', 'top_k')


def top_k_filter(logits, k):
    """Stands for the notebook's own top_k_filter (the cell above); the notebook's definition wins."""
    kth = torch.topk(logits, min(k, logits.size(-1)), dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


# --- answer cell ---


def sample_next_token(logits, temperature=1.0, top_k=None, generator=None):
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)
