"""The plots return figures that show exactly the data they claim to."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from gptedu.char.model import GPTModel  # noqa: E402
from gptedu.char.positional import PositionalEncoding  # noqa: E402
from gptedu.checkpoint import save_checkpoint  # noqa: E402
from gptedu.data import CharTokenizer  # noqa: E402
from gptedu.plots import (  # noqa: E402
    attention_for_prompt,
    attention_maps,
    plot_attention,
    plot_attention_for_prompt,
    plot_attention_heads,
    plot_loss_curves,
    plot_positional_encoding,
)


def image_data(fig: Figure) -> np.ndarray:
    return np.asarray(fig.axes[0].images[0].get_array())


def test_positional_encoding_heatmap_shows_the_table():
    pe = PositionalEncoding(16, num_range=200)
    fig = plot_positional_encoding(pe, num_positions=50)
    assert isinstance(fig, Figure)
    np.testing.assert_allclose(image_data(fig), pe.pe[0, :50].numpy())
    np.testing.assert_allclose(image_data(plot_positional_encoding(16, num_positions=50)), pe.pe[0, :50].numpy())
    np.testing.assert_allclose(image_data(plot_positional_encoding(pe.pe, num_positions=7)), pe.pe[0, :7].numpy())


@pytest.fixture
def model_and_tokenizer():
    torch.manual_seed(0)
    tokenizer = CharTokenizer.from_text("abcdefgh ROMEO:\n")
    model = GPTModel(tokenizer.vocab_size, d_model=16, num_heads=2, d_ff=32, context_len=32, num_layers=2)
    return model, tokenizer


@pytest.mark.parametrize("layer,head", [(0, 0), (1, 1)])
def test_attention_for_prompt_is_that_heads_softmax(model_and_tokenizer, layer, head):
    model, tokenizer = model_and_tokenizer
    prompt = "ROMEO: abc"
    weights = attention_for_prompt(model, tokenizer, prompt, layer=layer, head=head)
    x = model.pos_encoding(model.embedding(torch.tensor([tokenizer.encode(prompt)])))
    for block in model.decoder.layers[:layer]:
        x = block(x)
    expected = model.decoder.layers[layer].attn.heads[head].attention_weights(model.decoder.layers[layer].norm1(x))
    torch.testing.assert_close(weights, expected[0].detach())
    assert weights.shape == (len(prompt), len(prompt))
    torch.testing.assert_close(weights.sum(-1), torch.ones(len(prompt)))
    assert torch.all(weights.triu(1) == 0)
    other_head = attention_for_prompt(model, tokenizer, prompt, layer=layer, head=1 - head)
    assert not torch.allclose(weights, other_head)


def test_attention_plot_labels_the_axes_with_the_prompt(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    prompt = "ROMEO:\nab"
    fig = plot_attention_for_prompt(model, tokenizer, prompt, layer=1, head=0)
    ax = fig.axes[0]
    np.testing.assert_allclose(image_data(fig), attention_for_prompt(model, tokenizer, prompt, 1, 0).numpy())
    expected = ["R", "O", "M", "E", "O", ":", "\\n", "a", "b"]  # the newline shown as \n, not as a blank
    assert [t.get_text() for t in ax.get_xticklabels()] == expected
    assert [t.get_text() for t in ax.get_yticklabels()] == expected
    with pytest.raises(ValueError, match="square"):
        plot_attention(torch.ones(3, 4), list("abc"))
    with pytest.raises(ValueError, match="layer"):
        attention_for_prompt(model, tokenizer, prompt, layer=5)


def heads_by_hand(model: GPTModel, ids: torch.Tensor) -> torch.Tensor:
    """(layers, heads, seq, seq) from the modules' weights, written out: LN, q, k, scaled scores, mask, softmax."""
    maps = []
    with torch.no_grad():
        x = model.pos_encoding(model.embedding(ids))
        for block in model.decoder.layers:
            h = block.norm1(x)
            per_head = []
            for head in block.attn.heads:
                q, k = h @ head.query.weight.T, h @ head.key.weight.T
                scores = (q @ k.transpose(-2, -1)) / q.size(-1) ** 0.5
                seq = ids.size(1)
                scores = scores.masked_fill(torch.ones(seq, seq).triu(1).bool(), float("-inf"))
                per_head.append(torch.softmax(scores, dim=-1)[0])
            maps.append(torch.stack(per_head))
            x = block(x)
    return torch.stack(maps)


def test_attention_maps_are_every_heads_softmax(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    prompt = "ROMEO: abc\nhe"
    model.train()  # attention_maps must evaluate in eval mode and give the training mode back
    maps = attention_maps(model, tokenizer, prompt)
    assert model.training
    assert maps.shape == (2, 2, len(prompt), len(prompt))
    torch.testing.assert_close(maps, heads_by_hand(model, torch.tensor([tokenizer.encode(prompt)])))
    with pytest.raises(ValueError, match="context_len=32"):
        attention_maps(model, tokenizer, "ab" * 20)


def test_attention_grid_shows_each_heads_weights_with_the_prompt_on_both_axes(model_and_tokenizer, tmp_path):
    model, tokenizer = model_and_tokenizer
    prompt = "ROMEO: ab\nc"
    expected = heads_by_hand(model, torch.tensor([tokenizer.encode(prompt)])).numpy()
    fig = plot_attention_heads(model, prompt, tokenizer)
    panels = [ax for ax in fig.axes if ax.images and ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["layer 0, head 0", "layer 0, head 1", "layer 1, head 0",
                                                 "layer 1, head 1"]  # fmt: skip
    labels = ["R", "O", "M", "E", "O", ":", "\u2423", "a", "b", "\\n", "c"]  # a space and a newline you can see
    for ax, (layer, head) in zip(panels, [(0, 0), (0, 1), (1, 0), (1, 1)], strict=True):
        np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), expected[layer, head], atol=1e-6)
        assert [t.get_text() for t in ax.get_xticklabels()] == labels
        assert [t.get_text() for t in ax.get_yticklabels()] == labels
    one = plot_attention_heads(model, prompt, tokenizer, layers=[1], heads=[0])
    (panel,) = [ax for ax in one.axes if ax.images and ax.get_title()]
    assert panel.get_title() == "layer 1, head 0"
    np.testing.assert_allclose(np.asarray(panel.images[0].get_array()), expected[1, 0], atol=1e-6)
    with pytest.raises(ValueError, match="heads must be"):
        plot_attention_heads(model, prompt, tokenizer, heads=[2])
    with pytest.raises(ValueError, match="tokenizer"):
        plot_attention_heads(model, prompt)

    # From a checkpoint: the model and tokenizer it holds, so the same pictures.
    path = tmp_path / "ckpt.pt"
    cfg = {"vocab_size": tokenizer.vocab_size, "d_model": 16, "num_heads": 2, "d_ff": 32, "context_len": 32,
           "num_layers": 2}  # fmt: skip
    save_checkpoint({"model_state": model.state_dict(), "model_config": cfg, "tokenizer_chars": tokenizer.chars,
                     "train_config": {}}, path)  # fmt: skip
    from_file = plot_attention_heads(path, prompt)
    panels = [ax for ax in from_file.axes if ax.images and ax.get_title()]
    np.testing.assert_allclose(np.asarray(panels[3].images[0].get_array()), expected[1, 1], atol=1e-6)


def test_loss_curves_plot_the_history():
    history = {
        "step": [1, 2, 3, 4], "loss": [4.0, 3.5, 3.2, 3.0], "lr": [1e-3] * 4,
        "eval_step": [0, 2, 4], "train_loss": [4.2, 3.4, 3.0], "val_loss": [4.3, 3.6, 3.3], "elapsed": [0, 1, 2],
    }  # fmt: skip
    fig = plot_loss_curves(history)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert set(lines) == {"train loss (per step)", "train loss (estimate)", "val loss (estimate)"}
    assert list(lines["train loss (per step)"].get_xdata()) == history["step"]
    assert list(lines["train loss (per step)"].get_ydata()) == history["loss"]
    assert list(lines["val loss (estimate)"].get_xdata()) == history["eval_step"]
    assert list(lines["val loss (estimate)"].get_ydata()) == history["val_loss"]
    assert list(lines["train loss (estimate)"].get_ydata()) == history["train_loss"]
    empty = {k: [] for k in history}
    with pytest.raises(ValueError, match="empty"):
        plot_loss_curves(empty)
