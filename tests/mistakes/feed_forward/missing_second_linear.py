"""Feed-forward: only one linear layer (d_model -> d_model) and GELU.

Mistake: ``nn.Sequential(nn.Linear(d_model, d_model), nn.GELU())`` — no expansion to d_ff, no second linear.
Component: feed-forward.
Expected effect: the reference weights do not load (missing ``ffn.2.*``, wrong shape of ``ffn.0.weight``); the
message should say Linear -> GELU -> Linear.
"""

from torch import nn

COMPONENT = "feed_forward"
EXPECT = "caught"
HINTS = ("Linear", "second", "missing", "ffn[2]", "state_dict")

# --- answer cell ---


class FeedForward(nn.Module):
    def __init__(self, d_model, d_ff=256):
        super().__init__()
        self.ffn = nn.Sequential(nn.Linear(d_model, d_model), nn.GELU())

    def forward(self, x):
        return self.ffn(x)
