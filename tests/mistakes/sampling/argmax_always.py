"""sample_next_token: always greedy, never samples.

Mistake: ``return probs.argmax(dim=-1, keepdim=True)`` where the exercise asks for torch.multinomial.
Component: sample_next_token (notebook 09).
Expected effect: every row picks the most likely token; the distribution check fails and should name
torch.multinomial.
"""

import torch

COMPONENT = "sample_next_token"
EXPECT = "caught"
HINTS = ('multinomial', 'argmax', 'same token')


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
    return probs.argmax(dim=-1, keepdim=True)
