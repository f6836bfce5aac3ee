"""KV cache: cached logits equal uncached ones; cached generation equals gen_text token for token."""

from __future__ import annotations

import pytest
import torch

from gptedu.gpt2 import GPTConfig, GPTModel, KVCache, gen_text, gen_text_cached

CFG = GPTConfig(context_len=20, vocab_size=50, emb_dim=32, n_heads=4, n_layers=2, drop_rate=0.0, qkv_bias=True)


@pytest.fixture(scope="module")
def model() -> GPTModel:
    torch.manual_seed(0)
    return GPTModel(CFG).eval()


def test_cached_logits_equal_full_forward(model):
    idx = torch.randint(0, 50, (3, 20))
    full = model(idx)
    cache = KVCache()
    pieces = [model(idx[:, :7], kv_cache=cache)]  # a prefill of 7 positions, then one token at a time
    assert cache.length == 7
    pieces += [model(idx[:, t : t + 1], kv_cache=cache) for t in range(7, 20)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=1e-5, atol=1e-5)
    assert cache.length == 20
    layer = cache.layers(2)[0]
    assert layer.keys.shape == (3, 4, 20, 8) and layer.values.shape == (3, 4, 20, 8)


def test_cache_refuses_to_grow_past_the_context(model):
    cache = KVCache()
    model(torch.zeros(1, 20, dtype=torch.long), kv_cache=cache)
    with pytest.raises(ValueError, match="learned positions"):
        model(torch.zeros(1, 1, dtype=torch.long), kv_cache=cache)


@pytest.mark.parametrize("prompt_len, new", [(1, 19), (5, 10), (3, 40)])  # the last runs far past context_len
def test_cached_generation_equals_uncached_greedy(model, prompt_len, new):
    torch.manual_seed(prompt_len)
    idx = torch.randint(0, 50, (2, prompt_len))
    expected = gen_text(model, idx, new, context_size=20)
    assert torch.equal(gen_text_cached(model, idx, new, context_size=20), expected)


def test_cached_generation_with_smaller_context_size_and_long_prompt(model):
    idx = torch.randint(0, 50, (1, 30))
    assert torch.equal(gen_text_cached(model, idx, 12, context_size=8), gen_text(model, idx, 12, context_size=8))


def test_cached_sampling_and_eos_follow_gen_text(model):
    idx = torch.randint(0, 50, (1, 4))
    kwargs = {"temperature": 0.8, "top_k": 5}
    a = gen_text(model, idx, 15, 20, generator=torch.Generator().manual_seed(1), **kwargs)
    b = gen_text_cached(model, idx, 15, 20, generator=torch.Generator().manual_seed(1), **kwargs)
    assert torch.equal(a, b)
    eos = int(a[0, 9])
    a = gen_text(model, idx, 15, 20, eos_id=eos, generator=torch.Generator().manual_seed(1), **kwargs)
    b = gen_text_cached(model, idx, 15, 20, eos_id=eos, generator=torch.Generator().manual_seed(1), **kwargs)
    assert torch.equal(a, b) and a.size(1) <= 9


def test_cache_is_used_not_recomputed(model, monkeypatch):
    """Inside the context, each step after the prompt feeds exactly one token to the model."""
    seen = []
    original = GPTModel.forward

    def spy(self, idx, kv_cache=None):
        seen.append(idx.size(1))
        return original(self, idx, kv_cache=kv_cache)

    monkeypatch.setattr(GPTModel, "forward", spy)
    gen_text_cached(model, torch.zeros(1, 6, dtype=torch.long), 10, context_size=20)
    assert seen == [6] + [1] * 9
