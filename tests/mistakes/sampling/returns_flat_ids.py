"""sample_next_token: returns shape (batch,) instead of (batch, 1).

Mistake: ``torch.multinomial(probs, 1).squeeze(-1)`` — the caller's ``torch.cat([idx, next_token], dim=1)`` then
fails.
Component: sample_next_token (notebook 09).
Expected effect: shape check fails and should state (batch, 1).
"""

import torch

COMPONENT = "sample_next_token"
EXPECT = "caught"
HINTS = ('shape', '(batch, 1)')


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
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1)
