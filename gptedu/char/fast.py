"""A fast path for the character GPT that keeps the teaching model's parameters, names and checkpoints.

The teaching ``MultiHeadAttention`` runs each head on its own: three small matmuls per head, a hand-written mask
and softmax, then a concatenation. On a CPU those many small Python-level ops cost more than the arithmetic.
``FusedMultiHeadAttention`` computes exactly the same function with

1. one matmul for every head's query, key and value at once (their weights stacked into a ``(3*d_model, d_model)``
   matrix on each forward, so the gradient still flows into each ``heads[i].query/key/value.weight``), and
2. PyTorch's fused ``F.scaled_dot_product_attention(is_causal=True)`` instead of mask + softmax + matmul.

It keeps ``heads`` (the same ``Head`` modules, masks included) and ``proj``, so its ``state_dict`` has the same keys
and shapes: a checkpoint written by a fused model loads into the teaching ``GPTModel`` and vice versa.

>>> model = fuse(GPTModel.from_config(cfg))   # same object, attention layers swapped in place
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gptedu.char.attention import MultiHeadAttention
from gptedu.char.model import CharGPTConfig, GPTModel


class FusedMultiHeadAttention(nn.Module):
    """Multi-head causal self-attention with one packed QKV matmul and fused SDPA.

    Parameters (identical to ``MultiHeadAttention``): ``heads`` (``nn.ModuleList`` of ``Head``, each with
    ``query``/``key``/``value`` ``nn.Linear(d_model, d_model // num_heads, bias=False)`` and buffer ``mask``) and
    ``proj`` (``nn.Linear(d_model, d_model)``). ``forward(x)``: ``(batch, seq, d_model)`` → same shape.

    Build it from an existing ``MultiHeadAttention`` with ``from_teaching``: the modules are shared, not copied,
    so an optimizer built on the teaching model keeps working.
    """

    def __init__(self, heads: nn.ModuleList, proj: nn.Linear):
        super().__init__()
        self.heads = heads
        self.proj = proj
        self.num_heads = len(heads)
        self.head_size = heads[0].query.out_features
        self.context_len = heads[0].mask.size(0)

    @classmethod
    def from_teaching(cls, mha: MultiHeadAttention) -> FusedMultiHeadAttention:
        return cls(mha.heads, mha.proj)

    def packed_qkv_weight(self) -> torch.Tensor:
        """Every head's weights stacked: ``(3*d_model, d_model)``, rows ``[q_0 .. q_{h-1}, k_0 .., v_0 ..]``."""
        return torch.cat(
            [h.query.weight for h in self.heads]
            + [h.key.weight for h in self.heads]
            + [h.value.weight for h in self.heads]
        )

    def qkv(
        self, x: torch.Tensor, packed_weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values for every head: three tensors ``(batch, num_heads, seq, head_size)``.

        ``packed_weight``: a ``packed_qkv_weight()`` computed earlier (generation reuses one for every step).
        """
        batch, seq, _ = x.shape
        weight = self.packed_qkv_weight() if packed_weight is None else packed_weight
        packed = F.linear(x, weight)  # (batch, seq, 3*d_model)
        q, k, v = packed.view(batch, seq, 3, self.num_heads, self.head_size).permute(2, 0, 3, 1, 4)
        return q, k, v

    def merge_heads(self, y: torch.Tensor) -> torch.Tensor:
        """``(batch, num_heads, seq, head_size)`` → projected ``(batch, seq, d_model)`` (concat order = head order)."""
        batch, _, seq, _ = y.shape
        return self.proj(y.transpose(1, 2).reshape(batch, seq, self.num_heads * self.head_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.size(1) > self.context_len:
            raise ValueError(f"Sequence length {x.size(1)} exceeds this layer's context_len {self.context_len}.")
        q, k, v = self.qkv(x)
        return self.merge_heads(F.scaled_dot_product_attention(q, k, v, is_causal=True))


def fuse(model: nn.Module) -> nn.Module:
    """Swap every teaching ``MultiHeadAttention`` inside ``model`` for a ``FusedMultiHeadAttention``, in place.

    Parameters are shared (same tensors, same names), so do it before or after building the optimizer, and save or
    load checkpoints with either model. Returns ``model`` for chaining. Calling it twice is harmless.
    """
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, MultiHeadAttention):
                setattr(parent, name, FusedMultiHeadAttention.from_teaching(child))
    return model


def unfuse(model: nn.Module) -> nn.Module:
    """Undo ``fuse``: put teaching ``MultiHeadAttention`` modules back (sharing the same parameters), in place."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, FusedMultiHeadAttention):
                mha = MultiHeadAttention.__new__(MultiHeadAttention)
                nn.Module.__init__(mha)
                mha.heads, mha.proj = child.heads, child.proj
                setattr(parent, name, mha)
    return model


def fast_gpt(cfg: CharGPTConfig) -> GPTModel:
    """A ``GPTModel`` built from ``cfg`` with fused attention (``fuse(GPTModel.from_config(cfg))``)."""
    return fuse(GPTModel.from_config(cfg))
