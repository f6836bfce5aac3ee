"""Stacked decoder: every layer is applied to the original input; only the last one counts.

Mistake: ``for layer in self.layers: out = layer(x)`` then ``return self.norm(out)`` — the layers are not chained.
Component: stacked decoder.
Expected effect: equals norm(last_layer(x)); output differs from the reference for num_layers > 1. The message should
say each layer must take the previous layer's output.
"""

from torch import nn

from gptedu import TransformerDecoderLayer

COMPONENT = "decoder"
EXPECT = "caught"
HINTS = ("chain", "previous", "each layer", "layer")

# --- answer cell ---


class TransformerDecoder(nn.Module):
    def __init__(self, d_model, num_heads=8, d_ff=2048, context_len=100, num_layers=6):
        super().__init__()
        self.layers = nn.ModuleList(
            [TransformerDecoderLayer(d_model, num_heads, d_ff, context_len) for _ in range(num_layers)]
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x):
        out = x
        for layer in self.layers:
            out = layer(x)
        return self.norm(out)
