"""Stacked decoder: off-by-one in the number of layers.

Mistake: ``range(num_layers - 1)`` (the student counted the final norm as a layer).
Component: stacked decoder.
Expected effect: strict loading fails (missing keys for the last layer); the message should name num_layers.
"""

from torch import nn

from gptedu import TransformerDecoderLayer

COMPONENT = "decoder"
EXPECT = "caught"
HINTS = ("num_layers", "missing", "layers")

# --- answer cell ---


class TransformerDecoder(nn.Module):
    def __init__(self, d_model, num_heads=8, d_ff=2048, context_len=100, num_layers=6):
        super().__init__()
        self.layers = nn.ModuleList(
            [TransformerDecoderLayer(d_model, num_heads, d_ff, context_len) for _ in range(num_layers - 1)]
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)
