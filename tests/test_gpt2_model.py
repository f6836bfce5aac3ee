"""Part 2 (GPT-2 family): components against closed forms / torch references, parameter counts, loss, generation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gptedu.gpt2 import (
    GELU,
    GPT2_124M,
    GPT2_355M,
    GPT2_774M,
    GPT2_1558M,
    FeedForward,
    GPTConfig,
    GPTEmbedding,
    GPTModel,
    LayerNorm,
    MultiHeadAttention,
    TransformerBlock,
    calc_loss_batch,
    calc_loss_loader,
    count_parameters,
    create_dataloader,
    gen_text,
    gpt_param_count,
    text_to_token_ids,
    token_ids_to_text,
    train_simple,
)
from gptedu.gpt2.bpe import BPETokenizer

TINY = GPTConfig(context_len=16, vocab_size=40, emb_dim=32, n_heads=4, n_layers=2, drop_rate=0.0)


def tiny_model(seed: int = 0, **changes) -> GPTModel:
    torch.manual_seed(seed)
    return GPTModel(TINY.replace(**changes)).eval()


# ----------------------------------------------------------------------------- config


def test_config_rejects_heads_that_do_not_divide_the_width():
    with pytest.raises(ValueError, match="divisible by n_heads"):
        GPTConfig(emb_dim=30, n_heads=4)


def test_presets_are_openais_sizes():
    sizes = [(c.emb_dim, c.n_layers, c.n_heads) for c in (GPT2_124M, GPT2_355M, GPT2_774M, GPT2_1558M)]
    assert sizes == [(768, 12, 12), (1024, 24, 16), (1280, 36, 20), (1600, 48, 25)]
    assert GPT2_124M.vocab_size == 50257 and GPT2_124M.context_len == 1024


# ----------------------------------------------------------------------------- LayerNorm, GELU, FeedForward


def test_layernorm_equals_torch_and_closed_form():
    torch.manual_seed(0)
    ln = LayerNorm(10)
    with torch.no_grad():
        ln.scale.normal_()
        ln.shift.normal_()
    x = torch.randn(3, 5, 10) * 4 + 2
    ref = F.layer_norm(x, (10,), ln.scale, ln.shift, eps=1e-5)
    torch.testing.assert_close(ln(x), ref, rtol=1e-5, atol=1e-5)
    # The biased variance (divide by n): an unbiased one would be off by a factor sqrt(n / (n - 1)).
    plain = LayerNorm(10)(x)
    assert torch.allclose(plain.mean(-1), torch.zeros(3, 5), atol=1e-5)
    assert torch.allclose(plain.var(-1, unbiased=False), torch.ones(3, 5), atol=1e-3)
    assert [n for n, _ in ln.named_parameters()] == ["scale", "shift"]


def test_gelu_is_the_tanh_approximation():
    x = torch.linspace(-6, 6, 101)
    expected = 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    torch.testing.assert_close(GELU()(x), expected)
    torch.testing.assert_close(GELU()(x), F.gelu(x, approximate="tanh"))
    assert not torch.allclose(GELU()(x), F.gelu(x), atol=1e-5)  # differs from the exact erf form


def test_feedforward_expands_four_times_and_keeps_shape():
    ff = FeedForward(TINY)
    assert ff.layers[0].weight.shape == (128, 32) and ff.layers[2].weight.shape == (32, 128)
    assert isinstance(ff.layers[1], GELU)
    x = torch.randn(2, 7, 32)
    assert ff(x).shape == (2, 7, 32)
    torch.testing.assert_close(ff(x), ff.layers[2](F.gelu(ff.layers[0](x), approximate="tanh")))


# ----------------------------------------------------------------------------- attention


def reference_attention(mha: MultiHeadAttention, x: torch.Tensor) -> torch.Tensor:
    """Head by head, with explicit loops, from the same weights."""
    b, seq, _ = x.shape
    hd = mha.head_dim
    q, k, v = mha.W_query(x), mha.W_key(x), mha.W_value(x)
    heads = []
    for h in range(mha.n_heads):
        sl = slice(h * hd, (h + 1) * hd)
        scores = q[..., sl] @ k[..., sl].transpose(1, 2) / math.sqrt(hd)
        causal = torch.ones(seq, seq).tril().bool()
        scores = scores.masked_fill(~causal, float("-inf"))
        heads.append(torch.softmax(scores, dim=-1) @ v[..., sl])
    return mha.out_proj(torch.cat(heads, dim=-1))


@pytest.mark.parametrize("qkv_bias", [False, True])
def test_multihead_attention_matches_per_head_reference_and_torch(qkv_bias):
    torch.manual_seed(1)
    mha = MultiHeadAttention(d_in=12, d_out=16, context_len=10, drop_rate=0.0, n_heads=4, qkv_bias=qkv_bias)
    assert (mha.W_query.bias is not None) == qkv_bias and mha.out_proj.bias is not None
    x = torch.randn(3, 7, 12)
    out = mha(x)
    assert out.shape == (3, 7, 16)
    torch.testing.assert_close(out, reference_attention(mha, x), rtol=1e-5, atol=1e-5)
    # torch's fused kernel, same projections
    q, k, v = (mha._split_heads(w(x)) for w in (mha.W_query, mha.W_key, mha.W_value))
    fused = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(3, 7, 16)
    torch.testing.assert_close(out, mha.out_proj(fused), rtol=1e-5, atol=1e-5)
    assert "mask" not in mha.state_dict()  # a buffer, but not a weight to save


def test_attention_dropout_acts_on_weights_only_in_training():
    torch.manual_seed(2)
    mha = MultiHeadAttention(8, 8, context_len=6, drop_rate=0.5, n_heads=2)
    x = torch.randn(1, 6, 8)
    mha.eval()
    torch.testing.assert_close(mha(x), mha(x))
    mha.train()
    assert not torch.allclose(mha(x), mha(x))


# ----------------------------------------------------------------------------- embedding, block, model


def test_embedding_adds_learned_positions():
    emb = GPTEmbedding(context_len=8, vocab_size=20, emb_dim=6, drop_rate=0.0)
    idx = torch.tensor([[3, 3, 5]])
    out = emb(idx)
    assert out.shape == (1, 3, 6)
    torch.testing.assert_close(out[0, 1], emb.tok_emb.weight[3] + emb.pos_emb.weight[1])
    torch.testing.assert_close(emb(idx[:, 2:], start_pos=2)[0, 0], out[0, 2])
    with pytest.raises(ValueError, match="learned positions"):
        emb(torch.zeros(1, 9, dtype=torch.long))


def test_transformer_block_is_pre_ln_with_residuals():
    torch.manual_seed(3)
    block = TransformerBlock(TINY).eval()
    x = torch.randn(2, 5, 32)
    h = x + block.att(block.norm1(x))
    torch.testing.assert_close(block(x), h + block.ff(block.norm2(h)))
    assert isinstance(block.drop_shortcut, nn.Dropout)


def test_model_shapes_and_names():
    model = tiny_model()
    logits = model(torch.randint(0, 40, (3, 16)))
    assert logits.shape == (3, 16, 40)
    names = dict(model.named_children())
    assert list(names) == ["emb", "trf_blocks", "final_norm", "out_head"]
    assert len(model.trf_blocks) == 2 and model.out_head.bias is None
    with pytest.raises(ValueError, match="learned positions"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(batch, seq\)"):
        model(torch.zeros(5, dtype=torch.long))


def test_model_is_causal():
    model = tiny_model()
    idx = torch.randint(0, 40, (2, 12))
    changed = idx.clone()
    changed[:, 7] = (changed[:, 7] + 1) % 40  # change token t+1 = 7
    a, b = model(idx), model(changed)
    torch.testing.assert_close(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def test_weight_tying_shares_one_tensor():
    model = tiny_model(tie_weights=True)
    assert model.out_head.weight is model.emb.tok_emb.weight
    with torch.no_grad():
        model.emb.tok_emb.weight[0, 0] = 123.0
    assert model.out_head.weight[0, 0] == 123.0
    assert count_parameters(model) == count_parameters(tiny_model()) - 40 * 32


def test_parameter_counts_of_gpt2_124m():
    # GPT-2 124M's figures: 163,009,536 parameters untied; 124,412,160 when the output head reuses the embedding.
    assert gpt_param_count(GPT2_124M) == 163_009_536
    assert gpt_param_count(GPT2_124M.replace(tie_weights=True)) == 124_412_160
    # OpenAI's released 124M (tied, with QKV bias) has 124,439,808 parameters.
    assert gpt_param_count(GPT2_124M.replace(tie_weights=True, qkv_bias=True)) == 124_439_808
    with torch.device("meta"):  # no memory, no init time: only shapes
        untied = GPTModel(GPT2_124M)
        tied = GPTModel(GPT2_124M.replace(tie_weights=True))
    assert count_parameters(untied) == 163_009_536
    assert count_parameters(untied, exclude_out_head=True) == 124_412_160
    assert count_parameters(tied) == 124_412_160


@pytest.mark.parametrize("changes", [{}, {"tie_weights": True}, {"qkv_bias": True, "n_layers": 3}])
def test_closed_form_count_matches_modules(changes):
    assert count_parameters(tiny_model(**changes)) == gpt_param_count(TINY.replace(**changes))


# ----------------------------------------------------------------------------- loss and training


def test_calc_loss_batch_is_cross_entropy_and_loader_averages():
    model = tiny_model()
    x, y = torch.randint(0, 40, (4, 16)), torch.randint(0, 40, (4, 16))
    loss = calc_loss_batch(x, y, model, "cpu")
    torch.testing.assert_close(loss, F.cross_entropy(model(x).reshape(-1, 40), y.reshape(-1)))
    assert abs(loss.item() - math.log(40)) < 1.0  # an untrained model is near-uniform
    batches = [(x[:2], y[:2]), (x[2:], y[2:])]
    expected = (calc_loss_batch(*batches[0], model, "cpu") + calc_loss_batch(*batches[1], model, "cpu")) / 2
    assert calc_loss_loader(batches, model, "cpu") == pytest.approx(expected.item(), rel=1e-6)
    assert calc_loss_loader(batches, model, "cpu", num_batches=1) == pytest.approx(
        calc_loss_batch(*batches[0], model, "cpu").item(), rel=1e-6
    )
    assert math.isnan(calc_loss_loader([], model, "cpu"))


def test_dataloader_windows_are_shifted_by_one():
    ids = torch.arange(100)
    loader = create_dataloader(ids, batch_size=2, max_length=8, stride=4, shuffle=False)
    x, y = next(iter(loader))
    assert x.tolist()[1] == list(range(4, 12)) and torch.equal(y, x + 1)
    assert len(loader.dataset) == (100 - 8 - 1) // 4 + 1


def test_a_few_dozen_steps_lower_the_loss(corpus_text, capsys):
    text = corpus_text[:20_000]
    tok = BPETokenizer.train(text, vocab_size=300)
    ids = tok.encode(text)
    split = int(0.9 * len(ids))
    gen = torch.Generator().manual_seed(0)
    train_loader = create_dataloader(ids[:split], batch_size=8, max_length=32, generator=gen)
    val_loader = create_dataloader(ids[split:], batch_size=8, max_length=32, shuffle=False)
    torch.manual_seed(0)
    cfg = GPTConfig(context_len=32, vocab_size=tok.vocab_size, emb_dim=48, n_heads=4, n_layers=2, drop_rate=0.0)
    model = GPTModel(cfg)
    before = calc_loss_loader(val_loader, model.eval(), "cpu", num_batches=4)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
    train_losses, val_losses, seen = train_simple(
        model, train_loader, val_loader, opt, "cpu", num_epochs=1, eval_freq=20, eval_iter=2,
        start_context="ROMEO:", tokenizer=tok, max_steps=40,
    )  # fmt: skip
    after = calc_loss_loader(val_loader, model.eval(), "cpu", num_batches=4)
    assert after < before - 0.5, (before, after)
    assert len(train_losses) == len(val_losses) == 2 and seen == [20 * 8 * 32, 40 * 8 * 32]
    assert "ROMEO:" in capsys.readouterr().out


# ----------------------------------------------------------------------------- generation


def test_greedy_generation_is_deterministic_and_equals_top_k_1():
    model = tiny_model()
    idx = torch.randint(0, 40, (2, 4))
    greedy = gen_text(model, idx, max_new_tokens=10, context_size=16)
    assert greedy.shape == (2, 14) and torch.equal(greedy[:, :4], idx)
    assert torch.equal(greedy, gen_text(model, idx, 10, 16))
    top1 = gen_text(model, idx, 10, 16, temperature=1.5, top_k=1, generator=torch.Generator().manual_seed(5))
    assert torch.equal(greedy, top1)
    expected = model(greedy[:, :-1])[:, 3:].argmax(-1)  # every new token is the argmax given its prefix
    assert torch.equal(greedy[:, 4:], expected)


def test_sampling_is_reproducible_with_a_generator_and_respects_top_k():
    model = tiny_model()
    idx = torch.zeros(1, 1, dtype=torch.long)
    a = gen_text(model, idx, 12, 16, temperature=1.0, top_k=3, generator=torch.Generator().manual_seed(0))
    b = gen_text(model, idx, 12, 16, temperature=1.0, top_k=3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    for t in range(1, a.size(1)):
        top3 = model(a[:, :t][:, -16:])[0, -1].topk(3).indices
        assert a[0, t] in top3


def test_generation_stops_at_eos_without_appending_it():
    model = tiny_model()
    idx = torch.randint(0, 40, (1, 3))
    free = gen_text(model, idx, 8, 16)
    eos = int(free[0, 6])  # the 4th generated token
    first = int((free[0, 3:] == eos).nonzero()[0])
    stopped = gen_text(model, idx, 8, 16, eos_id=eos)
    assert torch.equal(stopped, free[:, : 3 + first])


def test_context_is_cropped_to_context_size():
    model = tiny_model()
    idx = torch.randint(0, 40, (1, 30))  # longer than context_len = 16
    out = gen_text(model, idx, 5, context_size=16)
    assert out.shape == (1, 35)
    window = gen_text(model, idx[:, -16:], 1, 16)
    assert out[0, 30] == window[0, 16]  # the first new token only saw the last 16 tokens
    small = gen_text(model, idx, 1, context_size=4)
    assert small[0, 30] == model(idx[:, -4:])[0, -1].argmax()
    with pytest.raises(ValueError, match="context_size"):
        gen_text(model, idx, 1, context_size=17)


def test_text_token_round_trip_helpers():
    tok = BPETokenizer.train("to be or not to be", vocab_size=270)
    ids = text_to_token_ids("to be<|endoftext|>", tok)
    assert ids.shape[0] == 1 and ids[0, -1].item() == tok.eos_id
    assert token_ids_to_text(ids, tok) == "to be<|endoftext|>"
    assert token_ids_to_text(ids[0], tok) == "to be<|endoftext|>"


def test_config_reads_like_a_dict_and_classes_accept_dicts():
    assert TINY["emb_dim"] == TINY.emb_dim == 32 and TINY.get("tie_weights") is False
    with pytest.raises(KeyError, match="no field"):
        TINY["d_model"]
    torch.manual_seed(0)
    from_dict = GPTModel(TINY.to_dict())
    assert from_dict.cfg == TINY
    assert count_parameters(from_dict) == gpt_param_count(TINY.to_dict())
    with pytest.raises(ValueError, match="Unknown config keys"):
        GPTModel({**TINY.to_dict(), "d_model": 3})
