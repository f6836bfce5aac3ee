"""sample_next_token: deterministic quantiles instead of random samples.

Mistake: token ids at evenly spaced quantiles of the distribution (a stratified, not random, draw).
Component: sample_next_token (notebook 09).
Expected effect: the frequencies match the distribution exactly, but generators with different seeds give the same tokens: the check says the samples must be random.
"""

# ruff: noqa: F821, F841, B905, E501  (the names come from the notebook's earlier cells)


import torch

COMPONENT = "sample_next_token"
EXPECT = "caught"
HINTS = ('random',)

# --- answer cell ---

def sample_next_token(logits: torch.Tensor, temperature: float = 1.0, top_k=None, generator=None) -> torch.Tensor:
    """One token id per row of logits (batch, vocab) -> (batch, 1)."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    probs = torch.softmax(logits, dim=-1)
    # evenly spaced quantiles: exactly the expected frequencies, no randomness
    u = (torch.arange(probs.size(0), dtype=probs.dtype) + 0.5) / probs.size(0)
    return torch.searchsorted(probs.cumsum(-1), u[:, None]).clamp(max=probs.size(-1) - 1)
