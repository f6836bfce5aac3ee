"""sample_next_token: returns int32 ids.

Mistake: ``.to(torch.int32)`` on the sampled ids.
Component: sample_next_token (notebook 09).
Expected effect: the check says the ids must be torch.long (int64).
"""

# ruff: noqa: F821, F841, B905, E501  (the names come from the notebook's earlier cells)


import torch

COMPONENT = "sample_next_token"
EXPECT = "caught"
HINTS = ('long',)

# --- answer cell ---

def sample_next_token(logits: torch.Tensor, temperature: float = 1.0, top_k=None, generator=None) -> torch.Tensor:
    """One token id per row of logits (batch, vocab) -> (batch, 1)."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True).int()
    logits = logits / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator).to(torch.int32)
