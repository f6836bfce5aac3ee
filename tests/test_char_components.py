"""Part 1 reference components: shapes, closed forms, causality, and equality with PyTorch's own layers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gptedu.char import (
    FeedForward,
    GPTModel,
    Head,
    MultiHeadAttention,
    PositionalEncoding,
    TransformerDecoder,
    TransformerDecoderLayer,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_positional_encoding_equals_closed_form():
    d_model, num_range = 16, 50
    pe = PositionalEncoding(d_model, num_range)
    assert pe.pe.shape == (1, num_range, d_model)
    assert "pe" in dict(pe.named_buffers()) and not list(pe.parameters())
    for pos in (0, 1, 7, 49):
        for i in range(d_model // 2):
            angle = pos / 10000 ** (2 * i / d_model)
            assert pe.pe[0, pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-5)
            assert pe.pe[0, pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-5)
    x = torch.randn(3, 10, d_model)
    assert torch.equal(pe(x), x + pe.pe[:, :10])


def test_positional_encoding_rejects_too_long_input():
    with pytest.raises(ValueError, match="num_range"):
        PositionalEncoding(8, 4)(torch.zeros(1, 5, 8))


@pytest.mark.parametrize("seq", [1, 5, 12])
def test_head_shapes_rows_sum_to_one_and_causality(seq):
    head = Head(d_model=16, d_k=8, d_v=6, context_len=12)
    assert torch.equal(head.mask, torch.tril(torch.ones(12, 12)))
    x = torch.randn(2, seq, 16)
    out = head(x)
    assert out.shape == (2, seq, 6)
    w = head.attention_weights(x)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, seq))
    assert torch.all(w.triu(diagonal=1) == 0)


def test_head_matches_scaled_dot_product_attention():
    head = Head(16, 8, 8, context_len=10)
    x = torch.randn(3, 10, 16)
    expected = F.scaled_dot_product_attention(head.query(x), head.key(x), head.value(x), is_causal=True)
    torch.testing.assert_close(head(x), expected, atol=1e-6, rtol=1e-5)


def test_head_rejects_sequences_longer_than_context():
    with pytest.raises(ValueError, match="context_len"):
        Head(8, 4, 4, context_len=3)(torch.zeros(1, 4, 8))


def fused_attention(mha: MultiHeadAttention, x: torch.Tensor) -> torch.Tensor:
    """The same computation with every head stacked into one batched matmul (how fast code does it)."""
    batch, seq, d_model = x.shape
    n = len(mha.heads)
    w_q = torch.cat([h.query.weight for h in mha.heads])  # (d_model, d_model): head i owns rows i*hs:(i+1)*hs
    w_k = torch.cat([h.key.weight for h in mha.heads])
    w_v = torch.cat([h.value.weight for h in mha.heads])

    def split(t):
        return t.view(batch, seq, n, d_model // n).transpose(1, 2)

    q, k, v = split(x @ w_q.T), split(x @ w_k.T), split(x @ w_v.T)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return mha.proj(y.transpose(1, 2).reshape(batch, seq, d_model))


@pytest.mark.parametrize(("d_model", "num_heads", "seq"), [(16, 4, 7), (32, 8, 20), (24, 3, 1)])
def test_multi_head_equals_fused_implementation(d_model, num_heads, seq):
    mha = MultiHeadAttention(d_model, num_heads, context_len=20)
    assert isinstance(mha.heads, nn.ModuleList) and len(mha.heads) == num_heads
    assert mha.heads[0].query.weight.shape == (d_model // num_heads, d_model)
    x = torch.randn(2, seq, d_model)
    out = mha(x)
    assert out.shape == (2, seq, d_model)
    torch.testing.assert_close(out, fused_attention(mha, x), atol=1e-5, rtol=1e-5)


def test_multi_head_rejects_indivisible_sizes():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3)


def test_feed_forward_is_linear_gelu_linear():
    ff = FeedForward(8, d_ff=32)
    assert isinstance(ff.ffn[1], nn.GELU)
    x = torch.randn(2, 5, 8)
    expected = F.linear(F.gelu(F.linear(x, ff.ffn[0].weight, ff.ffn[0].bias)), ff.ffn[2].weight, ff.ffn[2].bias)
    torch.testing.assert_close(ff(x), expected)
    assert ff.ffn[0].out_features == 32


def copy_into_torch_layer(layer: TransformerDecoderLayer, d_model: int, num_heads: int, d_ff: int):
    ref = nn.TransformerEncoderLayer(
        d_model, num_heads, d_ff, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
    )
    heads = layer.attn.heads
    with torch.no_grad():
        ref.self_attn.in_proj_weight.copy_(
            torch.cat(
                [torch.cat([h.query.weight for h in heads]), torch.cat([h.key.weight for h in heads]),
                 torch.cat([h.value.weight for h in heads])]
            )
        )
        ref.self_attn.in_proj_bias.zero_()  # notebook 03's heads have no bias
        ref.self_attn.out_proj.load_state_dict(layer.attn.proj.state_dict())
        ref.linear1.load_state_dict(layer.ffn.ffn[0].state_dict())
        ref.linear2.load_state_dict(layer.ffn.ffn[2].state_dict())
        ref.norm1.load_state_dict(layer.norm1.state_dict())
        ref.norm2.load_state_dict(layer.norm2.state_dict())
    return ref.eval()


@pytest.mark.parametrize(("d_model", "num_heads", "d_ff", "seq"), [(16, 4, 32, 9), (32, 2, 64, 16)])
def test_decoder_layer_equals_torch_transformer_encoder_layer(d_model, num_heads, d_ff, seq):
    layer = TransformerDecoderLayer(d_model, num_heads, d_ff, context_len=16)
    with torch.no_grad():  # non-trivial norms so a swapped norm1/norm2 would show
        for norm in (layer.norm1, layer.norm2):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
    ref = copy_into_torch_layer(layer, d_model, num_heads, d_ff)
    x = torch.randn(3, seq, d_model)
    causal = nn.Transformer.generate_square_subsequent_mask(seq)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), ref(x, src_mask=causal, is_causal=True), atol=1e-5, rtol=1e-5)


def test_decoder_stacks_distinct_layers_and_ends_with_a_norm():
    dec = TransformerDecoder(16, 4, 32, context_len=8, num_layers=3)
    assert isinstance(dec.layers, nn.ModuleList) and len(dec.layers) == 3
    assert dec.layers[0].attn.proj.weight.data_ptr() != dec.layers[1].attn.proj.weight.data_ptr()
    x = torch.randn(2, 8, 16)
    expected = x
    for layer in dec.layers:
        expected = layer(expected)
    torch.testing.assert_close(dec(x), dec.norm(expected))


def small_model(context_len: int = 16) -> GPTModel:
    return GPTModel(vocab_size=11, d_model=16, num_heads=4, d_ff=32, context_len=context_len, num_layers=2).eval()


def test_gpt_forward_shape_and_causality():
    model = small_model()
    x = torch.randint(0, 11, (2, 12))
    logits = model(x)
    assert logits.shape == (2, 12, 11)
    for t in (0, 5, 10):
        changed = x.clone()
        changed[:, t + 1] = (changed[:, t + 1] + 1) % 11
        with torch.no_grad():
            other = model(changed)
        torch.testing.assert_close(other[:, : t + 1], logits[:, : t + 1].detach(), atol=0, rtol=0)
        assert not torch.allclose(other[:, t + 1], logits[:, t + 1])


def test_gpt_forward_rejects_bad_input():
    model = small_model(context_len=4)
    with pytest.raises(ValueError, match=r"\(batch, seq\)"):
        model(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="crop"):
        model(torch.zeros(1, 5, dtype=torch.long))


def test_greedy_generation_is_deterministic_and_equals_top_k_1():
    model = small_model(context_len=32)
    prompt = torch.randint(0, 11, (3, 4))
    greedy = model.generate(prompt, max_new_tokens=20, temperature=0)
    assert greedy.shape == (3, 24) and torch.equal(greedy[:, :4], prompt)
    assert torch.equal(greedy, model.generate(prompt, max_new_tokens=20, temperature=0))
    top1 = model.generate(prompt, max_new_tokens=20, temperature=1.0, top_k=1)
    assert torch.equal(greedy, top1)
    # greedy = argmax of the full-recompute logits at every step
    seq = prompt
    for _ in range(20):
        seq = torch.cat([seq, model(seq)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(greedy, seq)


def test_sampling_is_reproducible_with_a_generator_and_respects_top_k():
    model = small_model()
    prompt = torch.zeros(4, 1, dtype=torch.long)
    a = model.generate(prompt, 15, temperature=1.5, generator=torch.Generator().manual_seed(7))
    b = model.generate(prompt, 15, temperature=1.5, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    top3 = model.generate(prompt, 1, temperature=2.0, top_k=3, generator=torch.Generator().manual_seed(1))
    allowed = set(model(prompt)[0, -1].topk(3).indices.tolist())
    for row in top3[:, -1].tolist():
        assert row in allowed


def test_generation_crops_the_context():
    model = small_model(context_len=6)
    prompt = torch.randint(0, 11, (1, 6))
    out = model.generate(prompt, max_new_tokens=10, temperature=0)  # would raise if it fed > 6 tokens
    assert out.shape == (1, 16)
    for step in range(6, 16):
        window = out[:, step - 6 : step]
        assert out[0, step].item() == model(window)[0, -1].argmax().item()


def test_eos_stops_generation():
    model = small_model()
    prompt = torch.randint(0, 11, (1, 3))
    greedy = model.generate(prompt, 10, temperature=0)[0, 3:]
    eos = greedy[2].item()
    stop = greedy.tolist().index(eos)  # the first time the greedy continuation produces it
    out = model.generate(prompt, 50, temperature=0, eos_id=eos)
    # stops at eos without appending it (gptedu.sampling.sample_loop's one end-of-sequence behaviour)
    assert out.tolist() == [prompt[0].tolist() + greedy[:stop].tolist()]


def test_generate_accepts_a_1d_prompt_and_rejects_an_empty_one():
    model = small_model()
    out = model.generate(torch.tensor([1, 2, 3]), 5, temperature=0)
    assert out.shape == (8,)
    with pytest.raises(ValueError, match="empty prompt"):
        model.generate(torch.zeros(1, 0, dtype=torch.long), 5)


def test_generate_leaves_the_training_mode_as_it_was():
    model = small_model().train()
    model.generate(torch.zeros(1, 1, dtype=torch.long), 2)
    assert model.training


def test_notebook08_loop_lowers_the_loss():
    from gptedu.char import evaluate, train
    from gptedu.data import TokenWindows

    torch.manual_seed(0)
    tokens = torch.tensor([i % 7 for i in range(400)])  # a perfectly predictable sequence
    loader = torch.utils.data.DataLoader(TokenWindows(tokens, 8), batch_size=16, shuffle=True)
    model = GPTModel(7, 16, 2, 32, context_len=8, num_layers=1)
    criterion = nn.CrossEntropyLoss()
    before = evaluate(model, loader, criterion, "cpu")
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(2):
        train(model, loader, criterion, optimizer, "cpu")
    after = evaluate(model, loader, criterion, "cpu")
    assert before > 1.5 and after < 0.5 * before
