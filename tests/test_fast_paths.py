"""The fused fast path computes the same function as the teaching model and speaks its checkpoint layout.

``fuse`` packs every layer's per-head query/key/value weights into one ``qkv_weight`` parameter; everything here
compares it against the teaching ``GPTModel`` under the teaching names: logits, gradients, state_dicts,
checkpoints both ways, and several AdamW steps.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from gptedu.char import CharGPTConfig, GPTModel, MultiHeadAttention
from gptedu.char.fast import (
    FusedMultiHeadAttention,
    fast_gpt,
    fuse,
    teaching_named_grads,
    teaching_named_parameters,
    unfuse,
)
from gptedu.plots import attention_for_prompt
from gptedu.trainer import TrainConfig, make_optimizer

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


def _loss(model, tokens):
    logits = model(tokens)
    targets = torch.roll(tokens, -1, dims=1)
    return logits, F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"d{s[1]}h{s[2]}L{s[5]}T{s[7]}")
def test_fused_logits_and_gradients_match_teaching(size):
    teaching, fused, tokens = _pair(size)
    (t_logits, t_loss), (f_logits, f_loss) = _loss(teaching, tokens), _loss(fused, tokens)
    t_loss.backward()
    f_loss.backward()
    torch.testing.assert_close(f_logits, t_logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(f_loss, t_loss, rtol=1e-6, atol=1e-6)
    t_grads, f_grads = dict(teaching.named_parameters()), dict(teaching_named_grads(fused))
    assert list(f_grads) == list(t_grads)  # every teaching parameter, in the teaching order
    for name, param in t_grads.items():
        assert param.grad is not None and f_grads[name] is not None, name
        assert f_grads[name].shape == param.shape, name
        torch.testing.assert_close(f_grads[name], param.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_fused_model_packs_each_layers_heads_into_one_parameter():
    teaching, fused, tokens = _pair(SIZES[2])  # 3 layers of 8 heads
    assert not any(isinstance(m, MultiHeadAttention) for m in fused.modules())
    attns = [m for m in fused.modules() if isinstance(m, FusedMultiHeadAttention)]
    assert len(attns) == 3
    t_count, f_count = len(list(teaching.parameters())), len(list(fused.parameters()))
    assert f_count == t_count - 3 * (3 * 8 - 1)  # 24 head matrices per layer became one
    assert all(a.qkv_weight.shape == (3 * 64, 64) and a.qkv_weight.is_leaf for a in attns)
    # the non-attention parameters are the very same tensors: fusing copies only the head weights
    t_params = dict(teaching.named_parameters())
    assert fused.fc_out.weight is not t_params["fc_out.weight"]  # deepcopy in _pair; check sharing on a fresh fuse
    model = GPTModel(13, 16, 2, 32, 8, 1)
    before = dict(model.named_parameters())
    fuse(model)
    after = dict(model.named_parameters())
    assert after["decoder.layers.0.attn.proj.weight"] is before["decoder.layers.0.attn.proj.weight"]
    assert after["embedding.weight"] is before["embedding.weight"]
    assert "decoder.layers.0.attn.qkv_weight" in after and "decoder.layers.0.attn.heads.0.query.weight" not in after


def test_packed_weight_order_is_query_key_value_by_head():
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2, context_len=4)
    packed = FusedMultiHeadAttention.from_teaching(mha).packed_qkv_weight()
    assert packed.shape == (24, 8)
    assert torch.equal(packed[4:8], mha.heads[1].query.weight)
    assert torch.equal(packed[8:12], mha.heads[0].key.weight)
    assert torch.equal(packed[20:24], mha.heads[1].value.weight)


def test_state_dict_has_the_teaching_keys_shapes_order_and_values():
    teaching, fused, _ = _pair(SIZES[2])
    t_sd, f_sd = teaching.state_dict(), fused.state_dict()
    assert list(f_sd) == list(t_sd)
    for key in t_sd:
        assert f_sd[key].shape == t_sd[key].shape and f_sd[key].dtype == t_sd[key].dtype, key
        assert torch.equal(f_sd[key], t_sd[key]), key
    assert not any(v.requires_grad for v in f_sd.values())
    names = [name for name, _ in teaching_named_parameters(fused)]
    assert names == [name for name, _ in teaching.named_parameters()]


def test_checkpoints_cross_load_both_ways_through_a_file(tmp_path):
    cfg = CharGPTConfig(vocab_size=20, d_model=32, num_heads=4, d_ff=64, context_len=16, num_layers=2)
    tokens = torch.randint(0, 20, (2, 16), generator=torch.Generator().manual_seed(0))
    torch.manual_seed(1)
    fused = fast_gpt(cfg)
    torch.manual_seed(2)
    teaching = GPTModel.from_config(cfg)
    assert not torch.allclose(fused(tokens), teaching(tokens))  # different weights before loading

    torch.save(fused.state_dict(), tmp_path / "fused.pt")
    teaching.load_state_dict(torch.load(tmp_path / "fused.pt", weights_only=True), strict=True)  # fused → teaching
    torch.testing.assert_close(teaching(tokens), fused(tokens), rtol=1e-5, atol=1e-5)

    torch.manual_seed(3)
    other_teaching = GPTModel.from_config(cfg)
    torch.save(other_teaching.state_dict(), tmp_path / "teaching.pt")
    fused.load_state_dict(torch.load(tmp_path / "teaching.pt", weights_only=True), strict=True)  # teaching → fused
    torch.testing.assert_close(fused(tokens), other_teaching(tokens), rtol=1e-5, atol=1e-5)
    head = other_teaching.decoder.layers[1].attn.heads[2]
    packed = fused.decoder.layers[1].attn.qkv_weight
    assert torch.equal(packed[2 * 8 : 3 * 8], head.query.weight)  # head size 8: query rows of head 2
    assert torch.equal(packed[32 + 16 : 32 + 24], head.key.weight)
    assert torch.equal(packed[64 + 16 : 64 + 24], head.value.weight)


def test_loading_reports_missing_unexpected_and_misshapen_head_weights():
    cfg = CharGPTConfig(vocab_size=20, d_model=16, num_heads=2, d_ff=32, context_len=8, num_layers=1)
    good = GPTModel.from_config(cfg).state_dict()
    fused = fast_gpt(cfg)

    missing = {k: v for k, v in good.items() if k != "decoder.layers.0.attn.heads.1.key.weight"}
    with pytest.raises(RuntimeError, match=r"Missing key\(s\).*heads\.1\.key\.weight"):
        fused.load_state_dict(missing)
    result = fused.load_state_dict(missing, strict=False)
    assert result.missing_keys == ["decoder.layers.0.attn.heads.1.key.weight"] and not result.unexpected_keys
    assert torch.equal(fused.decoder.layers[0].attn.qkv_weight[0:8], good["decoder.layers.0.attn.heads.0.query.weight"])

    extra = {**good, "decoder.layers.0.attn.heads.2.query.weight": torch.zeros(8, 16)}
    with pytest.raises(RuntimeError, match=r"Unexpected key\(s\).*heads\.2\.query\.weight"):
        fused.load_state_dict(extra)

    wrong = {**good, "decoder.layers.0.attn.heads.0.value.weight": torch.zeros(4, 16)}
    with pytest.raises(RuntimeError, match=r"size mismatch for decoder\.layers\.0\.attn\.heads\.0\.value\.weight"):
        fused.load_state_dict(wrong)

    wider = GPTModel(20, 16, 2, 32, 12, 1).state_dict()  # a longer context: every mask has another shape
    with pytest.raises(RuntimeError, match=r"size mismatch for decoder\.layers\.0\.attn\.heads\.0\.mask"):
        fused.load_state_dict(wider)


def test_load_state_dict_with_assign_packs_the_loaded_tensors():
    cfg = CharGPTConfig(vocab_size=20, d_model=16, num_heads=2, d_ff=32, context_len=8, num_layers=1)
    torch.manual_seed(0)
    teaching = GPTModel.from_config(cfg)
    fused = fast_gpt(cfg)
    fused.load_state_dict(teaching.state_dict(), assign=True)
    tokens = torch.randint(0, 20, (2, 8))
    torch.testing.assert_close(fused(tokens), teaching(tokens), rtol=1e-5, atol=1e-5)
    assert isinstance(fused.decoder.layers[0].attn.qkv_weight, torch.nn.Parameter)


def test_fused_and_teaching_take_the_same_adamw_steps():
    cfg = CharGPTConfig(vocab_size=30, d_model=32, num_heads=4, d_ff=64, context_len=16, num_layers=2)
    torch.manual_seed(0)
    teaching = GPTModel.from_config(cfg)
    fused = fuse(copy.deepcopy(teaching))
    initial = {k: v.clone() for k, v in teaching.state_dict().items()}
    train = TrainConfig(lr=1e-2, weight_decay=0.1, grad_clip=0.5)  # a clip that bites: the global norm matters
    optimizers = [make_optimizer(m, train) for m in (teaching, fused)]
    gen = torch.Generator().manual_seed(5)
    for _ in range(4):
        tokens = torch.randint(0, 30, (3, 16), generator=gen)
        norms = []
        for model, opt in zip((teaching, fused), optimizers, strict=True):
            opt.zero_grad(set_to_none=True)
            _loss(model, tokens)[1].backward()
            norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), train.grad_clip))
            opt.step()
        assert norms[0] > train.grad_clip  # clipping was active
        torch.testing.assert_close(norms[1], norms[0], rtol=1e-5, atol=1e-6)
    fused_params = dict(teaching_named_parameters(fused))
    for name, param in teaching.named_parameters():
        torch.testing.assert_close(fused_params[name], param, rtol=1e-4, atol=1e-5, msg=name)
    moved = (
        fused_params["decoder.layers.1.attn.heads.3.value.weight"]
        - initial["decoder.layers.1.attn.heads.3.value.weight"]
    )
    assert moved.abs().max() > 1e-3  # the packed rows were trained, not left alone
    torch.testing.assert_close(fused(tokens), teaching(tokens), rtol=1e-4, atol=1e-4)


def test_unfuse_restores_the_teaching_modules_with_the_same_outputs():
    teaching, fused, tokens = _pair(SIZES[1])
    expected = fused(tokens)
    unfuse(fused)
    assert sum(isinstance(m, MultiHeadAttention) for m in fused.modules()) == 2
    assert not any(isinstance(m, FusedMultiHeadAttention) for m in fused.modules())
    assert [n for n, _ in fused.named_parameters()] == [n for n, _ in teaching.named_parameters()]
    torch.testing.assert_close(fused(tokens), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fused(tokens), teaching(tokens), rtol=0, atol=0)
    fuse(fuse(fused))  # and back again; twice is harmless
    torch.testing.assert_close(fused(tokens), expected, rtol=0, atol=0)


def test_heads_view_gives_the_teaching_attention_weights():
    teaching, fused, tokens = _pair(SIZES[1])
    x = torch.randn(2, 10, 32, generator=torch.Generator().manual_seed(3))
    t_heads = teaching.decoder.layers[1].attn.heads
    f_heads = fused.decoder.layers[1].attn.heads
    assert len(f_heads) == len(t_heads) == 4
    for t_head, f_head in zip(t_heads, f_heads, strict=True):
        torch.testing.assert_close(f_head.attention_weights(x), t_head.attention_weights(x), rtol=0, atol=0)
        assert torch.equal(f_head.mask, t_head.mask)
    # views, not copies: what the optimizer writes into qkv_weight shows through
    with torch.no_grad():
        fused.decoder.layers[1].attn.qkv_weight[0].fill_(0.5)
    assert torch.all(fused.decoder.layers[1].attn.heads[0].query.weight[0] == 0.5)


def test_attention_plot_helper_works_on_a_fused_model():
    from gptedu.data import CharTokenizer

    tokenizer = CharTokenizer.from_text("abcdefgh ROMEO:\n")
    torch.manual_seed(0)
    teaching = GPTModel(tokenizer.vocab_size, d_model=16, num_heads=2, d_ff=32, context_len=32, num_layers=2)
    fused = fuse(copy.deepcopy(teaching))
    for layer, head in [(0, 1), (1, 0)]:
        expected = attention_for_prompt(teaching, tokenizer, "ROMEO: abc", layer=layer, head=head)
        got = attention_for_prompt(fused, tokenizer, "ROMEO: abc", layer=layer, head=head)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_fused_model_follows_dtype_changes_and_still_loads_into_teaching():
    teaching, fused, tokens = _pair(SIZES[0])
    fused.double()
    teaching.double()
    sd = fused.state_dict()
    assert sd["decoder.layers.0.attn.heads.0.mask"].dtype == torch.float64
    assert sd["decoder.layers.0.attn.heads.0.query.weight"].dtype == torch.float64
    teaching.load_state_dict(sd)
    torch.testing.assert_close(fused(tokens), teaching(tokens), rtol=1e-12, atol=1e-12)


def test_fused_attention_is_causal_and_rejects_too_long_input():
    torch.manual_seed(0)
    attn = FusedMultiHeadAttention(16, 4, context_len=6)
    x = torch.randn(1, 6, 16)
    changed = x.clone()
    changed[:, 4] += 1.0
    torch.testing.assert_close(attn(changed)[:, :4], attn(x)[:, :4])
    assert not torch.allclose(attn(changed)[:, 4], attn(x)[:, 4])
    with pytest.raises(ValueError, match="context_len"):
        attn(torch.randn(1, 7, 16))
    with pytest.raises(ValueError, match="divisible"):
        FusedMultiHeadAttention(10, 4)


def test_directly_built_fused_attention_matches_a_teaching_layer_with_its_weights():
    torch.manual_seed(0)
    fused = FusedMultiHeadAttention(24, 3, context_len=10)
    teaching = MultiHeadAttention(24, 3, context_len=10)
    teaching.load_state_dict(fused.state_dict())
    x = torch.randn(2, 10, 24)
    torch.testing.assert_close(fused(x), teaching(x), rtol=1e-5, atol=1e-6)
    bound = 1 / 24**0.5  # the teaching Linear's default initialisation range
    assert fused.qkv_weight.abs().max() <= bound and fused.qkv_weight.std() > bound / 3
