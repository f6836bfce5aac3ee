"""Feed-forward: GELU applied to the input before the first linear layer.

Mistake: ``self.ffn[2](self.ffn[0](torch.nn.functional.gelu(x)))`` style ordering, written as
``nn.Sequential(nn.GELU(), nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model))``.
Component: feed-forward.
Expected effect: the state_dict keys are ffn.1/ffn.2 instead of ffn.0/ffn.2, so strict loading fails; the two linear
layers collapse into one linear map. The message should say Linear -> GELU -> Linear.
"""

from torch import nn

COMPONENT = "feed_forward"
EXPECT = "caught"
HINTS = ("ffn.0", "ffn.1", "Linear -> GELU -> Linear")

# --- answer cell ---


class FeedForward(nn.Module):
    def __init__(self, d_model, d_ff=256):
        super().__init__()
        self.ffn = nn.Sequential(nn.GELU(), nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model))

    def forward(self, x):
        return self.ffn(x)
