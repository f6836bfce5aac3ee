"""Feed-forward: adds the residual connection inside the feed-forward block.

Mistake: ``return x + self.ffn(x)`` — the residual belongs to the decoder layer, not to FeedForward.
Component: feed-forward.
Expected effect: output is off by exactly x; the check should say FeedForward must not add its input (the decoder
layer does).
"""

from torch import nn

COMPONENT = "feed_forward"
EXPECT = "caught"
HINTS = ("residual", "x +")

# --- answer cell ---


class FeedForward(nn.Module):
    def __init__(self, d_model, d_ff=256):
        super().__init__()
        self.ffn = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))

    def forward(self, x):
        return x + self.ffn(x)
