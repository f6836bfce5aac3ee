"""Stacked decoder: the final LayerNorm applied after every layer instead of once at the end.

Mistake: ``for layer in self.layers: x = self.norm(layer(x))``.
Component: stacked decoder.
Expected effect: weights load, output differs for num_layers > 1; the message should say the final norm is applied
once.
"""

from torch import nn

from gptedu import TransformerDecoderLayer

COMPONENT = "decoder"
EXPECT = "caught"
HINTS = ("norm", "final", "LayerNorm", "once")

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
            x = self.norm(layer(x))
        return x
