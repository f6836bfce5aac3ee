"""Generation with a key/value cache for the character GPT: the same tokens as ``GPTModel.generate``, much faster.

``GPTModel.generate`` runs the whole context through the model for every new token, although only the last
position's logits are used and the keys and values of the earlier positions have not changed. ``generate_cached``
runs the prompt once ("prefill"), keeps every layer's keys and values in a ``KVCache``, and then feeds one token per
step: each step costs one position instead of the whole context.

**Limitation — the context window.** This model adds *absolute* sinusoidal positions to the embeddings. While the
sequence fits in ``context_len``, position ``t`` always holds the same token, so the cached keys and values stay
valid and the result equals ``GPTModel.generate`` token for token (greedy, and sampling with the same
``torch.Generator``, up to floating-point rounding of the logits). Once the sequence is longer than ``context_len``,
``generate`` feeds the last ``context_len`` tokens, so every token moves one position to the left at each step and
every cached key and value is stale. ``generate_cached`` then recomputes the whole window at every step, exactly
like ``generate``: still identical, but no faster. The speed-up therefore holds for ``prompt + new tokens <=
context_len``. The default preset's window is 128 characters (longer windows trained too slowly for its 5-minute
budget), so there the cache pays off for short continuations; ``benchmarks/bench_generation.py`` reports both.
Models with relative positions (RoPE, ALiBi) can keep a sliding cache; this one cannot without changing its outputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gptedu.char.fast import FusedMultiHeadAttention
from gptedu.char.model import GPTModel
from gptedu.sampling import sample_loop


class KVCache:
    """Keys and values of every layer, preallocated for ``context_len`` positions.

    ``keys[i]`` / ``values[i]``: ``(batch, num_heads, context_len, head_size)`` for layer ``i``; the first
    ``length`` positions are filled.
    """

    def __init__(
        self, num_layers: int, batch: int, num_heads: int, context_len: int, head_size: int, like: torch.Tensor
    ):
        shape = (batch, num_heads, context_len, head_size)
        self.keys = [torch.empty(shape, dtype=like.dtype, device=like.device) for _ in range(num_layers)]
        self.values = [torch.empty(shape, dtype=like.dtype, device=like.device) for _ in range(num_layers)]
        self.length = 0
        self.capacity = context_len

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store ``k``, ``v`` ``(batch, heads, new, head_size)`` after the cached positions; return all of them."""
        start, end = self.length, self.length + k.size(2)
        if end > self.capacity:
            raise ValueError(f"KVCache holds {self.capacity} positions; cannot add {k.size(2)} after {start}.")
        self.keys[layer][:, :, start:end] = k
        self.values[layer][:, :, start:end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]


def prepare_layers(model: GPTModel) -> list[tuple[nn.Module, FusedMultiHeadAttention, torch.Tensor]]:
    """Per decoder layer: the layer, a fused view of its attention and its packed QKV weight, built once.

    A fused model's layers are used as they are; a teaching model's get a fused copy (its head weights packed once
    per generation, instead of once per token: a concatenation saved per layer and step).
    """
    prepared = []
    for layer in model.decoder.layers:
        attn = layer.attn
        if not isinstance(attn, FusedMultiHeadAttention):
            attn = FusedMultiHeadAttention.from_teaching(attn)
        prepared.append((layer, attn, attn.packed_qkv_weight().detach()))
    return prepared


def forward_with_cache(
    model: GPTModel,
    tokens: torch.Tensor,
    cache: KVCache,
    layers: list[tuple[nn.Module, FusedMultiHeadAttention, torch.Tensor]] | None = None,
) -> torch.Tensor:
    """Run ``tokens`` ``(batch, new)`` at positions ``cache.length ...``; return the last logits ``(batch, vocab)``.

    With an empty cache and ``new > 1`` this is the prefill (causal attention inside the new tokens); with
    ``new == 1`` the token attends to every cached position and itself. Other cases are not needed here.
    ``layers``: ``prepare_layers(model)``, to reuse across steps (computed here when not given).
    """
    start, new = cache.length, tokens.size(1)
    if start > 0 and new != 1:
        raise ValueError("forward_with_cache feeds either a whole prompt into an empty cache or one token at a time.")
    if layers is None:
        layers = prepare_layers(model)
    x = model.embedding(tokens) + model.pos_encoding.pe[:, start : start + new]  # (batch, new, d_model)
    for i, (layer, attn, qkv_weight) in enumerate(layers):
        q, k, v = attn.qkv(layer.norm1(x), qkv_weight)  # (batch, heads, new, head_size)
        k_all, v_all = cache.append(i, k, v)
        x = x + attn.merge_heads(F.scaled_dot_product_attention(q, k_all, v_all, is_causal=new > 1))
        x = x + layer.ffn(layer.norm2(x))
    cache.length += new
    return model.fc_out(model.decoder.norm(x[:, -1]))


def _new_cache(model: GPTModel, batch: int, like: torch.Tensor) -> KVCache:
    cfg = model.config
    return KVCache(cfg.num_layers, batch, cfg.num_heads, cfg.context_len, cfg.d_model // cfg.num_heads, like)


@torch.no_grad()
def generate_cached(
    model: GPTModel,
    start_tokens: torch.Tensor,
    max_new_tokens: int = 50,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    eos_id: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``GPTModel.generate`` with a KV cache: same arguments, same result (see the module docstring).

    ``start_tokens``: ``(batch, seq)`` or ``(seq,)`` token ids. Returns the prompt followed by the new tokens,
    with the same number of dims as given. Works for the teaching model and for a ``fuse``d one.
    """
    squeeze = start_tokens.dim() == 1
    idx = start_tokens[None] if squeeze else start_tokens
    if idx.size(1) == 0:
        raise ValueError("generate_cached() needs at least one start token; got an empty prompt.")
    context_len = model.context_len
    layers = prepare_layers(model)
    cache = _new_cache(model, idx.size(0), model.embedding.weight)

    def next_logits(seq: torch.Tensor) -> torch.Tensor:
        if seq.size(1) > context_len:
            # The window slid: every position changed, the cache is stale. Recompute the window (as generate does).
            cache.length = 0
            return forward_with_cache(model, seq[:, -context_len:], cache, layers)
        if cache.length == 0:
            return forward_with_cache(model, seq, cache, layers)  # prefill
        return forward_with_cache(model, seq[:, -1:], cache, layers)

    was_training = model.training
    model.eval()
    try:
        idx = sample_loop(next_logits, idx, max_new_tokens, temperature, top_k, top_p, eos_id, generator)
    finally:
        model.train(was_training)
    return idx[0] if squeeze else idx
