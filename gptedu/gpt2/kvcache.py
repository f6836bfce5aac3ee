"""A key/value cache: generate each new token with one forward pass over *one* position.

Without a cache, ``gen_text`` re-runs the whole context for every new token, although the keys and values of the
old positions never change (attention is causal). The cache keeps them, per layer, so a step costs
``O(length)`` attention instead of a full forward pass over ``length`` positions.

The honest limit with *learned absolute* positions (GPT-2): once the text is longer than ``context_size``,
``gen_text`` feeds the last ``context_size`` tokens at positions ``0..context_size-1`` — every token moves one
position per step, so every cached key is stale. ``gen_text_cached`` then recomputes the window from scratch at each
step (exactly what ``gen_text`` does): tokens stay identical, but past the context the cache no longer saves time.
"""

from __future__ import annotations

import torch

from gptedu.gpt2.generate import check_gen_args
from gptedu.sampling import sample_loop


class LayerKVCache:
    """The keys and values of every position seen so far, for one attention layer.

    ``keys`` / ``values``: ``(batch, n_heads, length, head_dim)`` (``None`` while empty).
    """

    def __init__(self) -> None:
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None

    @property
    def length(self) -> int:
        return 0 if self.keys is None else self.keys.size(2)

    def append(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add the new positions' keys/values ``(batch, n_heads, new, head_dim)``; return all of them."""
        if self.keys is None:
            self.keys, self.values = keys, values
        else:
            self.keys = torch.cat([self.keys, keys], dim=2)
            self.values = torch.cat([self.values, values], dim=2)
        return self.keys, self.values


class KVCache:
    """One ``LayerKVCache`` per transformer block; ``length`` = number of positions already processed."""

    def __init__(self) -> None:
        self._layers: list[LayerKVCache] = []

    def layers(self, n_layers: int) -> list[LayerKVCache]:
        if not self._layers:
            self._layers = [LayerKVCache() for _ in range(n_layers)]
        if len(self._layers) != n_layers:
            raise ValueError(f"This KVCache holds {len(self._layers)} layers but the model has {n_layers}.")
        return self._layers

    @property
    def length(self) -> int:
        return self._layers[0].length if self._layers else 0


@torch.no_grad()
def gen_text_cached(
    model: torch.nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    context_size: int,
    temperature: float = 0.0,
    top_k: int | None = None,
    eos_id: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``gen_text`` with a KV cache: same arguments, same result (token for token under greedy decoding).

    The prompt (cropped to ``context_size``) is processed once; then each step feeds only the newest token.
    When the next token would not fit in ``context_size`` positions, the cache is rebuilt from the last
    ``context_size`` tokens (see the module docstring). Call ``model.eval()`` first, as for ``gen_text``.
    """
    check_gen_args(model, idx, context_size)
    state = {"cache": KVCache()}

    def next_logits(seq: torch.Tensor) -> torch.Tensor:
        cache = state["cache"]
        if cache.length == 0:  # the prompt, cropped to the window
            return model(seq[:, -context_size:], kv_cache=cache)[:, -1, :]
        if cache.length < context_size:  # one new token at the next position
            return model(seq[:, -1:], kv_cache=cache)[:, -1, :]
        # positions shift from here on: recompute the window (learned absolute positions)
        state["cache"] = KVCache()
        return model(seq[:, -context_size:], kv_cache=state["cache"])[:, -1, :]

    return sample_loop(next_logits, idx, max_new_tokens, temperature, top_k, eos_id=eos_id, generator=generator)
