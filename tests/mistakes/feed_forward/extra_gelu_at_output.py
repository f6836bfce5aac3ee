"""Feed-forward: an extra GELU after the second linear layer.

Mistake: ``nn.Sequential(Linear, GELU, Linear, GELU)`` — the output is squashed too, so it can never be very
negative.
Component: feed-forward.
Expected effect: the state_dict keys match (ffn.0, ffn.2) so weights load, but outputs differ; the check fails on
the output.
"""

from torch import nn

COMPONENT = "feed_forward"
EXPECT = "caught"
HINTS = ("GELU", "activation", "output")

# --- answer cell ---


class FeedForward(nn.Module):
    def __init__(self, d_model, d_ff=256):
        super().__init__()
        self.ffn = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model), nn.GELU())

    def forward(self, x):
        return self.ffn(x)
