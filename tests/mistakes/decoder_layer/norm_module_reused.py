"""Decoder layer: one LayerNorm object registered twice (``self.norm2 = self.norm1``).

Mistake: the student "reuses" the first norm instead of creating a second one, so both sub-layers share one set of
LayerNorm weights.
Component: decoder layer.
Expected effect: ``named_parameters()`` lists norm1 only, so the reference weights cannot be loaded; the message
should say that norm1 and norm2 are the same module object.
"""

from torch import nn

from gptedu import FeedForward, MultiHeadAttention

COMPONENT = "decoder_layer"
EXPECT = "caught"
HINTS = ("same module object", "share")

# --- answer cell ---


class TransformerDecoderLayer(nn.Module):
    def __init__(self, d_model, num_heads=8, d_ff=2048, context_len=100):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, num_heads, context_len)
        self.norm2 = self.norm1
        self.ffn = FeedForward(d_model, d_ff)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))
