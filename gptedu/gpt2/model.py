"""The GPT-2 model: embeddings → ``n_layers`` pre-LN transformer blocks → final LayerNorm → output head."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from gptedu.gpt2.attention import MultiHeadAttention
from gptedu.gpt2.config import GPTConfig
from gptedu.gpt2.layers import FeedForward, LayerNorm

if TYPE_CHECKING:
    from gptedu.gpt2.kvcache import KVCache, LayerKVCache


class GPTEmbedding(nn.Module):
    """Token embedding + *learned* absolute position embedding, then dropout.

    Parameters: ``tok_emb`` (``nn.Embedding(vocab_size, emb_dim)``), ``pos_emb`` (``nn.Embedding(context_len,
    emb_dim)``); ``drop`` is ``nn.Dropout(drop_rate)``.

    ``forward(idx, start_pos=0)``: token ids ``(batch, seq)`` → ``(batch, seq, emb_dim)``; token ``idx[:, i]`` gets
    position ``start_pos + i`` (``start_pos > 0`` when earlier positions are already in a KV cache).
    """

    def __init__(self, context_len: int, vocab_size: int, emb_dim: int, drop_rate: float):
        super().__init__()
        self.context_len = context_len
        self.tok_emb = nn.Embedding(vocab_size, emb_dim)
        self.pos_emb = nn.Embedding(context_len, emb_dim)
        self.drop = nn.Dropout(drop_rate)

    def forward(self, idx: torch.Tensor, start_pos: int = 0) -> torch.Tensor:
        seq = idx.size(1)
        if start_pos + seq > self.context_len:
            raise ValueError(
                f"Got {start_pos + seq} positions but the model has only {self.context_len} learned positions "
                f"(context_len). Crop the input to its last {self.context_len} tokens, e.g. idx[:, -context_len:]."
            )
        positions = torch.arange(start_pos, start_pos + seq, device=idx.device)
        return self.drop(self.tok_emb(idx) + self.pos_emb(positions))


class TransformerBlock(nn.Module):
    """One pre-LN block: ``x = x + drop(att(norm1(x)))`` then ``x = x + drop(ff(norm2(x)))``.

    Parameters: ``norm1``, ``norm2`` (``LayerNorm(emb_dim)``), ``att`` (``MultiHeadAttention(emb_dim, emb_dim,
    context_len, drop_rate, n_heads, qkv_bias)``), ``ff`` (``FeedForward(cfg)``); ``drop_shortcut`` is the
    ``nn.Dropout(drop_rate)`` applied to each branch before it is added back to the residual stream.

    ``forward(x, kv_cache=None)``: ``(batch, seq, emb_dim)`` → same shape.
    """

    def __init__(self, cfg: GPTConfig | dict):
        super().__init__()
        cfg = GPTConfig.coerce(cfg)
        self.norm1 = LayerNorm(cfg.emb_dim)
        self.att = MultiHeadAttention(
            d_in=cfg.emb_dim,
            d_out=cfg.emb_dim,
            context_len=cfg.context_len,
            drop_rate=cfg.drop_rate,
            n_heads=cfg.n_heads,
            qkv_bias=cfg.qkv_bias,
        )
        self.norm2 = LayerNorm(cfg.emb_dim)
        self.ff = FeedForward(cfg)
        self.drop_shortcut = nn.Dropout(cfg.drop_rate)

    def forward(self, x: torch.Tensor, kv_cache: LayerKVCache | None = None) -> torch.Tensor:
        x = x + self.drop_shortcut(self.att(self.norm1(x), kv_cache=kv_cache))
        x = x + self.drop_shortcut(self.ff(self.norm2(x)))
        return x


class GPTModel(nn.Module):
    """GPT-2: ``emb`` → ``trf_blocks`` → ``final_norm`` → ``out_head``.

    Parameters: ``emb`` (``GPTEmbedding``: ``emb.tok_emb``, ``emb.pos_emb``), ``trf_blocks`` (``nn.Sequential`` of
    ``n_layers`` ``TransformerBlock``), ``final_norm`` (``LayerNorm(emb_dim)``), ``out_head``
    (``nn.Linear(emb_dim, vocab_size, bias=False)``). With ``cfg.tie_weights``, ``out_head.weight`` *is*
    ``emb.tok_emb.weight`` (one tensor, counted once by ``model.parameters()``).

    ``forward(idx, kv_cache=None)``: token ids ``(batch, seq)`` → logits ``(batch, seq, vocab_size)``. With a
    ``KVCache`` (see ``gptedu.gpt2.kvcache``), ``idx`` holds only the new tokens, which continue the cached positions.
    """

    def __init__(self, cfg: GPTConfig | dict):
        super().__init__()
        cfg = GPTConfig.coerce(cfg)
        self.cfg = cfg
        self.emb = GPTEmbedding(cfg.context_len, cfg.vocab_size, cfg.emb_dim, cfg.drop_rate)
        self.trf_blocks = nn.Sequential(*[TransformerBlock(cfg) for _ in range(cfg.n_layers)])
        self.final_norm = LayerNorm(cfg.emb_dim)
        self.out_head = nn.Linear(cfg.emb_dim, cfg.vocab_size, bias=False)
        if cfg.tie_weights:
            self.out_head.weight = self.emb.tok_emb.weight
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """GPT-2's initialisation: weights ~ N(0, 0.02), biases 0 (LayerNorms keep scale 1, shift 0).

        PyTorch's defaults (``nn.Embedding`` ~ N(0, 1)) would make the first logits huge, most visibly with tied
        weights; with this the untrained loss starts near ``ln(vocab_size)``.
        """
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor, kv_cache: KVCache | None = None) -> torch.Tensor:
        if idx.dim() != 2:
            raise ValueError(
                f"GPTModel expects token ids of shape (batch, seq), got {tuple(idx.shape)}; "
                "for a single sequence use idx.unsqueeze(0)."
            )
        if kv_cache is None:
            x = self.trf_blocks(self.emb(idx))
        else:
            x = self.emb(idx, start_pos=kv_cache.length)
            for block, layer_cache in zip(self.trf_blocks, kv_cache.layers(len(self.trf_blocks)), strict=True):
                x = block(x, kv_cache=layer_cache)
        return self.out_head(self.final_norm(x))


def count_parameters(model: nn.Module, exclude_out_head: bool = False) -> int:
    """Number of distinct parameters (a tied matrix counts once).

    ``exclude_out_head=True`` leaves out ``model.out_head`` — the figure GPT-2's "124M" refers to when the output
    head reuses the token embedding.
    """
    params = {id(p): p for p in model.parameters()}
    if exclude_out_head:
        for p in model.out_head.parameters():
            params.pop(id(p), None)
    return sum(p.numel() for p in params.values())


def gpt_param_count(cfg: GPTConfig | dict) -> int:
    """The parameter count of ``GPTModel(cfg)`` in closed form (checks ``count_parameters`` and your arithmetic).

    embeddings ``(vocab + context) d``; per block: 2 LayerNorms ``4d``, Q/K/V ``3d^2`` (+ ``3d`` bias), out_proj
    ``d^2 + d``, feed-forward ``8d^2 + 5d``; final LayerNorm ``2d``; output head ``vocab d`` unless tied.
    """
    cfg = GPTConfig.coerce(cfg)
    d = cfg.emb_dim
    per_block = 4 * d + 3 * d * d + (3 * d if cfg.qkv_bias else 0) + d * d + d + 8 * d * d + 5 * d
    total = (cfg.vocab_size + cfg.context_len) * d + cfg.n_layers * per_block + 2 * d
    if not cfg.tie_weights:
        total += cfg.vocab_size * d
    return total
