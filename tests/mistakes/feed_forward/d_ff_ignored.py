"""Feed-forward: hidden width hard-coded to 4 * d_model, ignoring the d_ff argument.

Mistake: ``nn.Linear(d_model, 4 * d_model)`` (the "usual" GPT ratio) instead of ``nn.Linear(d_model, d_ff)``.
Component: feed-forward.
Expected effect: correct only when d_ff happens to equal 4 * d_model; otherwise the reference weights do not load
(shape mismatch). The message should name d_ff.
"""

from torch import nn

COMPONENT = "feed_forward"
EXPECT = "caught"
HINTS = ("d_ff", "shape", "hidden")

# --- answer cell ---


class FeedForward(nn.Module):
    def __init__(self, d_model, d_ff=256):
        super().__init__()
        hidden = 4 * d_model
        self.ffn = nn.Sequential(nn.Linear(d_model, hidden), nn.GELU(), nn.Linear(hidden, d_model))

    def forward(self, x):
        return self.ffn(x)
