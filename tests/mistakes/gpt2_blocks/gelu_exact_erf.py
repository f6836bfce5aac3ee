"""GELU: the exact erf version instead of GPT-2's tanh approximation.

Mistake: ``F.gelu(x)``.
Component: gpt2_gelu (notebook 10).
Expected effect: small differences everywhere; the check names the tanh approximation.
"""


import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

COMPONENT = "gpt2_gelu"
EXPECT = "caught"
HINTS = ('exact (erf) GELU',)

# --- answer cell ---

class GELU(nn.Module):
    """GELU, tanh approximation; any shape -> same shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x)
