"""Correct but unusual decoder layer: helper methods for the two sub-blocks and other local names.

Component: decoder layer. Must get full points.
"""

from torch import nn

from gptedu import FeedForward, MultiHeadAttention

COMPONENT = "decoder_layer"
EXPECT = "full"
HINTS = ()

# --- answer cell ---


class TransformerDecoderLayer(nn.Module):
    def __init__(self, d_model, num_heads=8, d_ff=2048, context_len=100):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, num_heads, context_len)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, d_ff)

    def _attention_block(self, h):
        return self.attn(self.norm1(h))

    def _mlp_block(self, h):
        return self.ffn(self.norm2(h))

    def forward(self, x):
        residual_stream = x
        residual_stream = residual_stream + self._attention_block(residual_stream)
        residual_stream = residual_stream + self._mlp_block(residual_stream)
        return residual_stream
