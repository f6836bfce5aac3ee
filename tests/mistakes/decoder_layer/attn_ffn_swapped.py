"""Decoder layer: feed-forward block before attention.

Mistake: ``x = x + ffn(norm1(x)); x = x + attn(norm2(x))``.
Component: decoder layer.
Expected effect: output differs from the reference; the message should name the order of the sub-layers.
"""

from torch import nn

from gptedu import FeedForward, MultiHeadAttention

COMPONENT = "decoder_layer"
EXPECT = "caught"
HINTS = ("order", "attention", "feed-forward", "ffn")

# --- answer cell ---


class TransformerDecoderLayer(nn.Module):
    def __init__(self, d_model, num_heads=8, d_ff=2048, context_len=100):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, num_heads, context_len)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, d_ff)

    def forward(self, x):
        x = x + self.ffn(self.norm1(x))
        return x + self.attn(self.norm2(x))
