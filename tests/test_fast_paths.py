"""The fused fast path computes the same function as the teaching model, with the same parameters."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from gptedu.char import CharGPTConfig, GPTModel, MultiHeadAttention
from gptedu.char.fast import FusedMultiHeadAttention, fast_gpt, fuse, unfuse

torch.set_num_threads(1)

SIZES = [
    # vocab, d_model, heads, d_ff, context_len, layers, batch, seq
    (11, 16, 1, 32, 8, 1, 2, 8),
    (65, 32, 4, 64, 24, 2, 3, 17),
    (65, 64, 8, 128, 32, 3, 2, 32),
    (40, 48, 2, 96, 40, 2, 1, 1),
]


def _pair(size, seed=0):
    vocab, d_model, heads, d_ff, context_len, layers, batch, seq = size
    torch.manual_seed(seed)
    teaching = GPTModel(vocab, d_model, heads, d_ff, context_len, layers)
    fused = fuse(copy.deepcopy(teaching))
    tokens = torch.randint(0, vocab, (batch, seq), generator=torch.Generator().manual_seed(seed + 1))
    return teaching, fused, tokens


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"d{s[1]}h{s[2]}L{s[5]}T{s[7]}")
def test_fused_logits_and_gradients_match_teaching(size):
    teaching, fused, tokens = _pair(size)
    targets = torch.roll(tokens, -1, dims=1)
    losses = []
    for model in (teaching, fused):
        logits = model(tokens)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        loss.backward()
        losses.append((logits, loss))
    torch.testing.assert_close(losses[1][0], losses[0][0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(losses[1][1], losses[0][1], rtol=1e-6, atol=1e-6)
    fused_params = dict(fused.named_parameters())
    for name, param in teaching.named_parameters():
        assert param.grad is not None, name
        torch.testing.assert_close(fused_params[name].grad, param.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_fuse_replaces_every_attention_layer_and_keeps_the_state_dict():
    teaching, fused, _ = _pair(SIZES[2])
    assert not any(isinstance(m, MultiHeadAttention) for m in fused.modules())
    assert sum(isinstance(m, FusedMultiHeadAttention) for m in fused.modules()) == 3
    t_sd, f_sd = teaching.state_dict(), fused.state_dict()
    assert list(t_sd) == list(f_sd)
    assert all(t_sd[k].shape == f_sd[k].shape and torch.equal(t_sd[k], f_sd[k]) for k in t_sd)


def test_checkpoints_cross_load_both_ways():
    cfg = CharGPTConfig(vocab_size=20, d_model=32, num_heads=4, d_ff=64, context_len=16, num_layers=2)
    tokens = torch.randint(0, 20, (2, 16), generator=torch.Generator().manual_seed(0))
    torch.manual_seed(1)
    fused = fast_gpt(cfg)
    torch.manual_seed(2)
    teaching = GPTModel.from_config(cfg)
    assert not torch.allclose(fused(tokens), teaching(tokens))  # different weights before loading
    teaching.load_state_dict(fused.state_dict(), strict=True)
    torch.testing.assert_close(teaching(tokens), fused(tokens), rtol=1e-5, atol=1e-5)
    torch.manual_seed(3)
    other = fast_gpt(cfg)
    other.load_state_dict(GPTModel.from_config(cfg).state_dict(), strict=True)  # teaching → fused also loads
    other.load_state_dict(teaching.state_dict(), strict=True)
    torch.testing.assert_close(other(tokens), teaching(tokens), rtol=1e-5, atol=1e-5)


def test_fuse_shares_parameters_so_an_existing_optimizer_keeps_training_the_model():
    torch.manual_seed(0)
    model = GPTModel(13, 16, 2, 32, 8, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = model.decoder.layers[0].attn.heads[1].key.weight.detach().clone()
    fuse(model)
    tokens = torch.randint(0, 13, (2, 8))
    model(tokens).sum().backward()
    optimizer.step()
    after = model.decoder.layers[0].attn.heads[1].key.weight
    assert not torch.equal(before, after)


def test_unfuse_restores_the_teaching_modules_with_the_same_outputs():
    teaching, fused, tokens = _pair(SIZES[1])
    expected = fused(tokens)
    unfuse(fused)
    assert sum(isinstance(m, MultiHeadAttention) for m in fused.modules()) == 2
    assert not any(isinstance(m, FusedMultiHeadAttention) for m in fused.modules())
    torch.testing.assert_close(fused(tokens), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fused(tokens), teaching(tokens), rtol=0, atol=0)


def test_fused_attention_is_causal_and_rejects_too_long_input():
    torch.manual_seed(0)
    attn = FusedMultiHeadAttention.from_teaching(MultiHeadAttention(16, 4, context_len=6))
    x = torch.randn(1, 6, 16)
    changed = x.clone()
    changed[:, 4] += 1.0
    torch.testing.assert_close(attn(changed)[:, :4], attn(x)[:, :4])
    assert not torch.allclose(attn(changed)[:, 4], attn(x)[:, 4])
    with pytest.raises(ValueError, match="context_len"):
        attn(torch.randn(1, 7, 16))


def test_packed_weight_order_is_query_key_value_by_head():
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2, context_len=4)
    packed = FusedMultiHeadAttention.from_teaching(mha).packed_qkv_weight()
    assert packed.shape == (24, 8)
    assert torch.equal(packed[4:8], mha.heads[1].query.weight)
    assert torch.equal(packed[8:12], mha.heads[0].key.weight)
    assert torch.equal(packed[20:24], mha.heads[1].value.weight)
