"""Decoder layer: norm2 before attention and norm1 before the feed-forward.

Mistake: ``x = x + attn(norm2(x)); x = x + ffn(norm1(x))``.
Component: decoder layer.
Expected effect: like same_norm_twice, invisible with default LayerNorm parameters; caught only with distinct
injected norm weights.
"""

from torch import nn

from gptedu import FeedForward, MultiHeadAttention

COMPONENT = "decoder_layer"
EXPECT = "caught"
HINTS = ("norm1", "norm2", "norm")

# --- answer cell ---


class TransformerDecoderLayer(nn.Module):
    def __init__(self, d_model, num_heads=8, d_ff=2048, context_len=100):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, num_heads, context_len)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, d_ff)

    def forward(self, x):
        x = x + self.attn(self.norm2(x))
        return x + self.ffn(self.norm1(x))
