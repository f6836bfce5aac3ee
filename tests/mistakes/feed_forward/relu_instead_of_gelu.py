"""Feed-forward: ReLU where the exercise asks for GELU.

Mistake: ``nn.Sequential(nn.Linear(d_model, d_ff), nn.ReLU(), nn.Linear(d_ff, d_model))``.
Component: feed-forward.
Expected effect: weights load, outputs differ wherever a hidden unit is negative; the check should name the
activation (GELU vs ReLU).
"""

from torch import nn

COMPONENT = "feed_forward"
EXPECT = "caught"
HINTS = ("GELU", "ReLU", "activation")

# --- answer cell ---


class FeedForward(nn.Module):
    def __init__(self, d_model, d_ff=256):
        super().__init__()
        self.ffn = nn.Sequential(nn.Linear(d_model, d_ff), nn.ReLU(), nn.Linear(d_ff, d_model))

    def forward(self, x):
        return self.ffn(x)
