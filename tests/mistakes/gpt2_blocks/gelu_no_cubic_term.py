"""GELU: the cubic term dropped.

Mistake: ``tanh(sqrt(2/pi) * x)``.
Component: gpt2_gelu (notebook 10).
Expected effect: wrong values; the check names the cubic term.
"""

import math

import torch
from torch import nn

COMPONENT = "gpt2_gelu"
EXPECT = "caught"
HINTS = ('cubic term',)

# --- answer cell ---

class GELU(nn.Module):
    """GELU, tanh approximation; any shape -> same shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * x))
