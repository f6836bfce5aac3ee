"""A fast path for the character GPT that keeps the teaching model's maths, parameter names and checkpoints.

The teaching ``MultiHeadAttention`` runs each head on its own: three small matmuls per head, a hand-written mask
and softmax, then a concatenation. On a CPU those many small Python-level ops cost more than the arithmetic.
``FusedMultiHeadAttention`` computes exactly the same function with

1. one matmul for every head's query, key and value at once: the weights live in one packed
   ``(3*d_model, d_model)`` parameter, ``qkv_weight``, whose rows are ``[q_0 .. q_{h-1}, k_0 .., v_0 ..]`` (head
   ``i``'s query weight is the block of ``head_size`` rows starting at row ``i * head_size``), and
2. PyTorch's fused ``F.scaled_dot_product_attention(is_causal=True)`` instead of mask + softmax + matmul.

Packing the weights once, instead of concatenating twelve small matrices on every forward, also halves the number
of parameter tensors the optimizer and gradient clipping visit (49 instead of 93 for 4 layers of 4 heads).

Its ``state_dict`` still uses the teaching names and shapes (``heads.{i}.query.weight``, ``heads.{i}.mask``, ...,
``proj.weight``, ``proj.bias``): the packed rows are written out, and read back, under those names. So a checkpoint
written by a fused model loads into the teaching ``GPTModel`` and vice versa, and ``attn.heads`` still gives
teaching ``Head`` modules to look at (read-only views of the packed rows, e.g. for attention plots).

>>> model = fuse(GPTModel.from_config(cfg))   # attention layers swapped in place; build the optimizer after this
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from gptedu.char.attention import Head, MultiHeadAttention
from gptedu.char.model import CharGPTConfig, GPTModel

_PARTS = ("query", "key", "value")  # the order of the three blocks of rows in ``qkv_weight``


class FusedMultiHeadAttention(nn.Module):
    """Multi-head causal self-attention with one packed QKV matmul and fused SDPA.

    Parameters: ``qkv_weight`` ``(3*d_model, d_model)`` (every head's query, key and value weights, packed) and
    ``proj`` (``nn.Linear(d_model, d_model)``, as in ``MultiHeadAttention``). ``forward(x)``:
    ``(batch, seq, d_model)`` → same shape, the same function as ``MultiHeadAttention`` with the same weights.

    ``state_dict()`` / ``load_state_dict()`` speak the teaching layout (see the module docstring). Build one from a
    teaching ``MultiHeadAttention`` with ``from_teaching`` (copies the head weights, shares ``proj``) and turn it
    back with ``to_teaching``.
    """

    def __init__(self, d_model: int, num_heads: int = 8, context_len: int = 100):
        super().__init__()
        if d_model % num_heads != 0:
            raise ValueError(f"d_model={d_model} must be divisible by num_heads={num_heads}.")
        self.num_heads = num_heads
        self.head_size = d_model // num_heads
        self.context_len = context_len
        self.qkv_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        bound = 1 / math.sqrt(d_model)  # nn.Linear(d_model, head_size)'s default initialisation, row for row
        nn.init.uniform_(self.qkv_weight, -bound, bound)
        self.proj = nn.Linear(d_model, d_model)
        # Not used by forward (SDPA applies the causal mask itself); kept so that state_dict() can give every head
        # the teaching model's ``mask`` entry, on the model's device and dtype.
        self.register_buffer("causal_mask", torch.tril(torch.ones(context_len, context_len)), persistent=False)

    @classmethod
    def from_teaching(cls, mha: MultiHeadAttention) -> FusedMultiHeadAttention:
        """A fused copy of ``mha``: its head weights packed into ``qkv_weight``, its ``proj`` module shared."""
        heads = mha.heads
        query = heads[0].query.weight
        fused = cls.__new__(cls)
        nn.Module.__init__(fused)
        fused.num_heads = len(heads)
        fused.head_size = query.size(0)
        fused.context_len = heads[0].mask.size(0)
        with torch.no_grad():
            packed = torch.cat([getattr(h, part).weight for part in _PARTS for h in heads])
        fused.qkv_weight = nn.Parameter(packed, requires_grad=query.requires_grad)
        fused.proj = mha.proj
        fused.register_buffer("causal_mask", heads[0].mask.detach().clone(), persistent=False)
        return fused

    def to_teaching(self) -> MultiHeadAttention:
        """A teaching ``MultiHeadAttention`` computing the same function: head weights copied, ``proj`` shared."""
        mha = MultiHeadAttention.__new__(MultiHeadAttention)
        nn.Module.__init__(mha)
        mha.heads = self._teaching_heads(copy=True)
        mha.proj = self.proj
        return mha

    # -- the teaching view of the packed weight --

    def _rows(self, part: int, head: int) -> slice:
        start = (part * self.num_heads + head) * self.head_size
        return slice(start, start + self.head_size)

    def head_weights(self, packed: torch.Tensor | None = None) -> Iterator[tuple[str, torch.Tensor]]:
        """``("heads.{i}.{query|key|value}.weight", rows)`` in the teaching model's order; rows are views.

        ``packed``: a tensor laid out like ``qkv_weight`` to slice instead (its gradient, say).
        """
        packed = self.qkv_weight if packed is None else packed
        for i in range(self.num_heads):
            for p, part in enumerate(_PARTS):
                yield f"heads.{i}.{part}.weight", packed[self._rows(p, i)]

    def _teaching_heads(self, copy: bool) -> nn.ModuleList:
        d_model = self.qkv_weight.size(1)
        heads = nn.ModuleList()
        weight = self.qkv_weight.detach()
        for i in range(self.num_heads):
            head = Head.__new__(Head)
            nn.Module.__init__(head)
            for p, part in enumerate(_PARTS):
                linear = nn.Linear(d_model, self.head_size, bias=False, device="meta")
                rows = weight[self._rows(p, i)]
                trainable = copy and self.qkv_weight.requires_grad
                linear.weight = nn.Parameter(rows.clone() if copy else rows, requires_grad=trainable)
                setattr(head, part, linear)
            head.register_buffer("mask", self.causal_mask.clone() if copy else self.causal_mask)
            heads.append(head)
        return heads

    @property
    def heads(self) -> nn.ModuleList:
        """Teaching ``Head`` modules whose weights are views of ``qkv_weight`` (for looking, not for training).

        ``attn.heads[i].attention_weights(x)`` works as on the teaching model; they are built on each access and
        hold no gradients, so train through ``qkv_weight``.
        """
        return self._teaching_heads(copy=False)

    def packed_qkv_weight(self) -> torch.Tensor:
        """Every head's weights stacked: ``(3*d_model, d_model)``, rows ``[q_0 .. q_{h-1}, k_0 .., v_0 ..]``."""
        return self.qkv_weight

    # -- forward --

    def qkv(
        self, x: torch.Tensor, packed_weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values for every head: three tensors ``(batch, num_heads, seq, head_size)``.

        ``packed_weight``: a tensor to use instead of ``qkv_weight`` (generation passes a detached one).
        """
        batch, seq, d_model = x.shape
        weight = self.qkv_weight if packed_weight is None else packed_weight
        packed = F.linear(x, weight)  # (batch, seq, 3*d_model)
        # split + transpose (not one permute of a 5-d view): in backward the three gradients are then joined by
        # a single cat along the last dim, where the permute needed a stack and a strided copy (3-5% faster attention)
        q, k, v = (t.view(batch, seq, self.num_heads, self.head_size).transpose(1, 2) for t in packed.split(d_model, 2))
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

    # -- checkpoints in the teaching layout --

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        weight = self.qkv_weight if keep_vars else self.qkv_weight.detach()
        mask = self.causal_mask if keep_vars else self.causal_mask.detach()
        for i in range(self.num_heads):  # a Head saves its own buffer first, then its query/key/value children
            destination[f"{prefix}heads.{i}.mask"] = mask
            for p, part in enumerate(_PARTS):
                destination[f"{prefix}heads.{i}.{part}.weight"] = weight[self._rows(p, i)]

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        expected_shape = (self.head_size, self.qkv_weight.size(1))
        mask_shape = tuple(self.causal_mask.shape)
        own_keys = set()
        loaded = {}
        for name, _ in self.head_weights():
            key = prefix + name
            own_keys.add(key)
            if key not in state_dict:
                missing_keys.append(key)
            elif tuple(state_dict[key].shape) != expected_shape:
                error_msgs.append(
                    f"size mismatch for {key}: copying a param with shape {tuple(state_dict[key].shape)} from "
                    f"checkpoint, the shape in current model is {expected_shape}."
                )
            else:
                loaded[name] = state_dict[key]
        for i in range(self.num_heads):
            key = f"{prefix}heads.{i}.mask"
            own_keys.add(key)
            if key not in state_dict:
                missing_keys.append(key)
            elif tuple(state_dict[key].shape) != mask_shape:  # always the causal mask: only its shape matters
                error_msgs.append(
                    f"size mismatch for {key}: copying a buffer with shape {tuple(state_dict[key].shape)} from "
                    f"checkpoint, the shape in current model is {mask_shape}."
                )
        if loaded:
            if local_metadata.get("assign_to_params_buffers", False) and len(loaded) == 3 * self.num_heads:
                packed = torch.cat(
                    [loaded[f"heads.{i}.{part}.weight"] for part in _PARTS for i in range(self.num_heads)]
                )
                self.qkv_weight = nn.Parameter(packed, requires_grad=self.qkv_weight.requires_grad)
            else:
                with torch.no_grad():
                    for name, rows in self.head_weights():
                        if name in loaded:
                            rows.copy_(loaded[name])
        if strict:
            for key in state_dict:
                child = key[len(prefix) :].split(".", 1)[0]
                if key.startswith(prefix) and key not in own_keys and child not in self._modules:
                    unexpected_keys.append(key)


def fuse(model: nn.Module) -> nn.Module:
    """Swap every teaching ``MultiHeadAttention`` inside ``model`` for a ``FusedMultiHeadAttention``, in place.

    The head weights are copied into each layer's packed ``qkv_weight`` (every other parameter stays the same
    tensor), so build the optimizer *after* fusing. The ``state_dict`` keeps its keys and shapes: save or load
    checkpoints with either model. Returns ``model`` for chaining. Calling it twice is harmless.
    """
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, MultiHeadAttention):
                setattr(parent, name, FusedMultiHeadAttention.from_teaching(child))
    return model


def unfuse(model: nn.Module) -> nn.Module:
    """Undo ``fuse``, in place: teaching ``MultiHeadAttention`` modules with the packed weights copied into heads."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, FusedMultiHeadAttention):
                setattr(parent, name, child.to_teaching())
    return model


def _teaching_named(model: nn.Module, grads: bool) -> Iterator[tuple[str, torch.Tensor | None]]:
    fused = {name: module for name, module in model.named_modules() if isinstance(module, FusedMultiHeadAttention)}
    for name, param in model.named_parameters():
        owner, _, leaf = name.rpartition(".")
        module = fused.get(owner)
        if module is None or leaf != "qkv_weight":
            yield name, param.grad if grads else param
        elif grads and param.grad is None:
            yield from ((f"{owner}.{head_name}", None) for head_name, _ in module.head_weights())
        else:
            yield from ((f"{owner}.{n}", rows) for n, rows in module.head_weights(param.grad if grads else param))


def teaching_named_parameters(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """``model.named_parameters()`` under the teaching names: a packed ``qkv_weight`` is given head by head (views).

    For a teaching model this is just ``named_parameters()``; for a fused one the names and shapes are the same.
    """
    yield from _teaching_named(model, grads=False)


def teaching_named_grads(model: nn.Module) -> Iterator[tuple[str, torch.Tensor | None]]:
    """``(teaching name, gradient)`` for every parameter, like ``teaching_named_parameters`` (None: no gradient)."""
    yield from _teaching_named(model, grads=True)


def fast_gpt(cfg: CharGPTConfig) -> GPTModel:
    """A ``GPTModel`` built from ``cfg`` with fused attention (``fuse(GPTModel.from_config(cfg))``)."""
    return fuse(GPTModel.from_config(cfg))
