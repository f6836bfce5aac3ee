"""Stacked decoder: one layer object repeated num_layers times.

Mistake: ``layer = TransformerDecoderLayer(...); self.layers = nn.ModuleList([layer] * num_layers)``.
Component: stacked decoder.
Expected effect: every "layer" shares one set of weights; loading the reference state_dict leaves all of them equal
to the last layer, so the output differs. The message should say the layers share weights.
"""

from torch import nn

from gptedu import TransformerDecoderLayer

COMPONENT = "decoder"
EXPECT = "caught"
HINTS = ("shared", "same", "independent", "repeated")

# --- answer cell ---


class TransformerDecoder(nn.Module):
    def __init__(self, d_model, num_heads=8, d_ff=2048, context_len=100, num_layers=6):
        super().__init__()
        layer = TransformerDecoderLayer(d_model, num_heads, d_ff, context_len)
        self.layers = nn.ModuleList([layer] * num_layers)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)
