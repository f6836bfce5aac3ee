"""Correct but unusual feed-forward: indexes into ``ffn`` and applies GELU functionally, with a helper method.

Component: feed-forward. Must get full points (``ffn[1]`` is an ``nn.GELU`` as asked; forward just does not call the
Sequential as a whole).
"""

from torch import nn

COMPONENT = "feed_forward"
EXPECT = "full"
HINTS = ()

# --- answer cell ---
import torch.nn.functional as F  # noqa: E402 - the student's own import, in the answer cell


class FeedForward(nn.Module):
    def __init__(self, d_model, d_ff=256):
        super().__init__()
        self.ffn = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))

    def expand(self, x):
        return F.gelu(self.ffn[0](x))

    def forward(self, x):
        hidden = self.expand(x)
        return self.ffn[2](hidden)
