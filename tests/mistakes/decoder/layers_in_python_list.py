"""Stacked decoder: layers kept in a plain Python list.

Mistake: ``self.layers = [TransformerDecoderLayer(...) for _ in range(num_layers)]``.
Component: stacked decoder.
Expected effect: the layers are not registered: missing from state_dict()/parameters(), never trained, never moved
by ``.to(device)``; strict loading fails with missing keys. The message should say nn.ModuleList.
"""

from torch import nn

from gptedu import TransformerDecoderLayer

COMPONENT = "decoder"
EXPECT = "caught"
HINTS = ("ModuleList", "missing", "register")

# --- answer cell ---


class TransformerDecoder(nn.Module):
    def __init__(self, d_model, num_heads=8, d_ff=2048, context_len=100, num_layers=6):
        super().__init__()
        self.layers = [TransformerDecoderLayer(d_model, num_heads, d_ff, context_len) for _ in range(num_layers)]
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)
