"""Decoder layer: norm1 used before both sub-layers; norm2 is created but never used.

Mistake: ``x = x + attn(norm1(x)); x = x + ffn(norm1(x))``.
Component: decoder layer.
Expected effect: invisible while both LayerNorms hold their default weights (1, 0); caught only if the injected
reference weights give norm1 and norm2 different (random) affine parameters. The message should name the norms.
"""

from torch import nn

from gptedu import FeedForward, MultiHeadAttention

COMPONENT = "decoder_layer"
EXPECT = "caught"
HINTS = ("norm2", "norm1", "LayerNorm", "norm")

# --- answer cell ---


class TransformerDecoderLayer(nn.Module):
    def __init__(self, d_model, num_heads=8, d_ff=2048, context_len=100):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, num_heads, context_len)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, d_ff)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm1(x))
