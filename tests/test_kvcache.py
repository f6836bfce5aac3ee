"""KV-cached generation produces exactly the tokens of the teaching ``GPTModel.generate``."""

from __future__ import annotations

import pytest
import torch

from gptedu.char import GPTModel
from gptedu.char.fast import fuse
from gptedu.char.kvcache import KVCache, forward_with_cache, generate_cached

torch.set_num_threads(1)

VOCAB, CONTEXT = 23, 24


@pytest.fixture(scope="module")
def model() -> GPTModel:
    torch.manual_seed(0)
    m = GPTModel(VOCAB, 32, num_heads=4, d_ff=64, context_len=CONTEXT, num_layers=2)
    # Random weights give flat distributions; sharpen them so greedy and sampling both have real choices to make.
    with torch.no_grad():
        m.fc_out.weight.mul_(4.0)
    return m


def _prompt(batch: int, length: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


def _cache_for(model: GPTModel, batch: int) -> KVCache:
    cfg = model.config
    return KVCache(
        cfg.num_layers, batch, cfg.num_heads, cfg.context_len, cfg.d_model // cfg.num_heads, model.embedding.weight
    )


def test_cached_logits_equal_full_forward_at_every_position(model):
    tokens = _prompt(2, CONTEXT)
    full = model(tokens)  # (batch, seq, vocab)
    cache = _cache_for(model, 2)
    torch.testing.assert_close(forward_with_cache(model, tokens[:, :5], cache), full[:, 4], rtol=1e-5, atol=1e-5)
    for t in range(5, CONTEXT):
        step = forward_with_cache(model, tokens[:, t : t + 1], cache)
        torch.testing.assert_close(step, full[:, t], rtol=1e-5, atol=1e-5)
    assert cache.length == CONTEXT


@pytest.mark.parametrize("new_tokens", [CONTEXT - 6, 3 * CONTEXT], ids=["within-context", "crossing-context"])
def test_greedy_is_token_identical(model, new_tokens):
    prompt = _prompt(3, 6)
    expected = model.generate(prompt, new_tokens, temperature=0)
    got = generate_cached(model, prompt, new_tokens, temperature=0)
    assert got.shape == (3, 6 + new_tokens)
    assert torch.equal(got, expected)
    assert len(set(got[0, 6:].tolist())) > 2, "degenerate test: greedy output is constant"


@pytest.mark.parametrize("new_tokens", [CONTEXT - 2, 2 * CONTEXT + 5], ids=["within-context", "crossing-context"])
@pytest.mark.parametrize(
    "options", [{}, {"top_k": 5, "temperature": 0.8}, {"top_p": 0.9}], ids=["plain", "top-k", "top-p"]
)
def test_seeded_sampling_is_token_identical(model, new_tokens, options):
    prompt = _prompt(2, 2, seed=4)
    expected = model.generate(prompt, new_tokens, generator=torch.Generator().manual_seed(7), **options)
    got = generate_cached(model, prompt, new_tokens, generator=torch.Generator().manual_seed(7), **options)
    assert torch.equal(got, expected)
    other_seed = generate_cached(model, prompt, new_tokens, generator=torch.Generator().manual_seed(8), **options)
    assert not torch.equal(other_seed, got), "degenerate test: the seed does not matter"


def test_prompt_longer_than_context_and_1d_prompt(model):
    prompt = _prompt(1, CONTEXT + 7)[0]
    expected = model.generate(prompt, 10, temperature=0)
    got = generate_cached(model, prompt, 10, temperature=0)
    assert got.dim() == 1
    assert torch.equal(got, expected)


def test_fused_model_and_eos_stop(model):
    prompt = _prompt(2, 3)
    plain = model.generate(prompt, 15, temperature=0)
    eos = int(plain[0, 6])
    expected = model.generate(prompt, 15, temperature=0, eos_id=eos)
    fused = fuse(GPTModel.from_config(model.config))
    fused.load_state_dict(model.state_dict())
    got = generate_cached(fused, prompt, 15, temperature=0, eos_id=eos)
    assert torch.equal(got, expected)


def test_generation_restores_training_mode_and_rejects_empty_prompt(model):
    model.train()
    generate_cached(model, _prompt(1, 2), 2, temperature=0)
    assert model.training
    with pytest.raises(ValueError, match="empty prompt"):
        generate_cached(model, torch.zeros(1, 0, dtype=torch.long), 2)
