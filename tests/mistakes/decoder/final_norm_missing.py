"""Stacked decoder: the final LayerNorm is missing.

Mistake: no ``self.norm``; forward returns the output of the last layer.
Component: stacked decoder.
Expected effect: strict loading fails (unexpected keys ``norm.weight``/``norm.bias``), and the output differs; the
message should name the final LayerNorm a pre-norm stack needs.
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

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x
