"""Decoder layer: post-norm (original Transformer) instead of the pre-norm the exercise asks for.

Mistake: ``x = norm1(x + attn(x)); x = norm2(x + ffn(x))``.
Component: decoder layer.
Expected effect: output differs from the reference; the message should say pre-norm (normalise the input of each
sub-layer, add the residual after).
"""

from torch import nn

from gptedu import FeedForward, MultiHeadAttention

COMPONENT = "decoder_layer"
EXPECT = "caught"
HINTS = ("pre-norm", "post-norm", "norm")

# --- answer cell ---


class TransformerDecoderLayer(nn.Module):
    def __init__(self, d_model, num_heads=8, d_ff=2048, context_len=100):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, num_heads, context_len)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, d_ff)

    def forward(self, x):
        x = self.norm1(x + self.attn(x))
        return self.norm2(x + self.ffn(x))
