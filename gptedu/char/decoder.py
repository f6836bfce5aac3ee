"""A pre-norm decoder layer, and a stack of them."""

from __future__ import annotations

import torch
from torch import nn

from gptedu.char.attention import MultiHeadAttention
from gptedu.char.feedforward import FeedForward


class TransformerDecoderLayer(nn.Module):
    """Pre-norm decoder layer: ``x = x + attn(norm1(x)); x = x + ffn(norm2(x))``.

    Parameters: ``norm1``, ``norm2`` (``nn.LayerNorm(d_model)``), ``attn`` (``MultiHeadAttention``),
    ``ffn`` (``FeedForward``). ``forward(x)``: ``(batch, seq, d_model)`` → same shape.
    """

    def __init__(self, d_model: int, num_heads: int = 8, d_ff: int = 2048, context_len: int = 100):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, num_heads, context_len)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, d_ff)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class TransformerDecoder(nn.Module):
    """``num_layers`` decoder layers, then a final ``LayerNorm`` (pre-norm stacks need one at the end).

    Parameters: ``layers`` (``nn.ModuleList`` of ``TransformerDecoderLayer``), ``norm`` (``nn.LayerNorm(d_model)``).
    ``forward(x)``: ``(batch, seq, d_model)`` → same shape.
    """

    def __init__(
        self, d_model: int, num_heads: int = 8, d_ff: int = 2048, context_len: int = 100, num_layers: int = 6
    ):
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerDecoderLayer(d_model, num_heads, d_ff, context_len) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)
