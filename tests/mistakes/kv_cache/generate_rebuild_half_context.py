"""Cached generate: rebuilds the cache from half the context.

Mistake: ``idx[:, -(ctx // 2):]``.
Component: kv_cached_generate (notebook 13).
Expected effect: other tokens; the message names the stale cache.
"""

# ruff: noqa: F821, F841, B905, E501  (the names come from the notebook's earlier cells)


import torch

COMPONENT = "kv_cached_generate"
EXPECT = "caught"
HINTS = ('stale',)

# --- answer cell ---

class CachedGPT(GPT2Model):
    """gptedu's GPT-2 model with a generate() that uses a KV cache."""

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 0.0) -> torch.Tensor:
        ctx = self.cfg.context_len
        cache = KVCache()
        logits = self(idx[:, -ctx:], kv_cache=cache)[:, -1, :]
        for _ in range(max_new_tokens):
            idx_next = sample_next_token(logits, temperature)
            idx = torch.cat([idx, idx_next], dim=1)
            if cache.length < ctx:
                logits = self(idx_next, kv_cache=cache)[:, -1, :]
            else:  # positions shift from here on: rebuild the cache from the last ctx tokens
                cache = KVCache()
                logits = self(idx[:, -(ctx // 2):], kv_cache=cache)[:, -1, :]
        return idx
