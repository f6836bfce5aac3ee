"""Stacked decoder: the final LayerNorm is created but not applied.

Mistake: ``self.norm`` exists (so the weights load) but forward returns the last layer's output un-normalised.
Component: stacked decoder.
Expected effect: output differs from the reference; the message should name the final LayerNorm.
"""

from torch import nn

from gptedu import TransformerDecoderLayer

COMPONENT = "decoder"
EXPECT = "caught"
HINTS = ("norm", "final", "LayerNorm")

# --- answer cell ---


class TransformerDecoder(nn.Module):
    def __init__(self, d_model, num_heads=8, d_ff=2048, context_len=100, num_layers=6):
        super().__init__()
        self.layers = nn.ModuleList(
            [TransformerDecoderLayer(d_model, num_heads, d_ff, context_len) for _ in range(num_layers)]
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x
