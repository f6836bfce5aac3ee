"""Correct but unusual stacked decoder: functools.reduce over the layers, built with a loop and append.

Component: stacked decoder. Must get full points.
"""

from torch import nn

from gptedu import TransformerDecoderLayer

COMPONENT = "decoder"
EXPECT = "full"
HINTS = ()

# --- answer cell ---
import functools  # noqa: E402 - the student's own import, in the answer cell


class TransformerDecoder(nn.Module):
    def __init__(self, d_model, num_heads=8, d_ff=2048, context_len=100, num_layers=6):
        super().__init__()
        self.layers = nn.ModuleList()
        for _ in range(num_layers):
            self.layers.append(TransformerDecoderLayer(d_model, num_heads, d_ff, context_len))
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x):
        return self.norm(functools.reduce(lambda h, layer: layer(h), self.layers, x))
