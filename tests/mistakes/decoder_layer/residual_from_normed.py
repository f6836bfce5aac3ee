"""Decoder layer: the residual adds the *normalised* input instead of the raw input.

Mistake: ``x = self.norm1(x); x = x + self.attn(x)`` (and the same for the feed-forward), so the raw stream is lost.
Component: decoder layer.
Expected effect: output differs from the reference; the message should say the residual must add the un-normalised
x.
"""

from torch import nn

from gptedu import FeedForward, MultiHeadAttention

COMPONENT = "decoder_layer"
EXPECT = "caught"
HINTS = ("residual", "norm", "x +")

# --- answer cell ---


class TransformerDecoderLayer(nn.Module):
    def __init__(self, d_model, num_heads=8, d_ff=2048, context_len=100):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, num_heads, context_len)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, d_ff)

    def forward(self, x):
        x = self.norm1(x)
        x = x + self.attn(x)
        x = self.norm2(x)
        return x + self.ffn(x)
