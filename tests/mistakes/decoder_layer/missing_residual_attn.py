"""Decoder layer: no residual connection around attention.

Mistake: ``x = self.attn(self.norm1(x))`` instead of ``x = x + self.attn(self.norm1(x))``.
Component: decoder layer.
Expected effect: output differs from the reference; the message should name the missing residual.
"""

from torch import nn

from gptedu import FeedForward, MultiHeadAttention

COMPONENT = "decoder_layer"
EXPECT = "caught"
HINTS = ("residual", "x +")

# --- answer cell ---


class TransformerDecoderLayer(nn.Module):
    def __init__(self, d_model, num_heads=8, d_ff=2048, context_len=100):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, num_heads, context_len)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, d_ff)

    def forward(self, x):
        x = self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))
