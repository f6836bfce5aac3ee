"""Pictures of what the model does: the positional code, attention (one head, or every head), and the loss curves.

Each function returns a matplotlib ``Figure`` (already closed in pyplot, so a notebook shows it once, as the
cell's value, and scripts or tests on a headless machine never pile up open windows).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torch import nn

from gptedu.char.positional import PositionalEncoding, sinusoidal_table


def _new_figure(figsize: tuple[float, float]) -> tuple[Figure, plt.Axes]:
    fig, ax = plt.subplots(figsize=figsize)
    plt.close(fig)
    return fig, ax


def plot_positional_encoding(
    encoding: PositionalEncoding | torch.Tensor | int, num_positions: int = 100, d_model: int | None = None
) -> Figure:
    """Heatmap of the positional code: rows are positions ``0..num_positions-1``, columns the ``d_model`` dims.

    ``encoding``: a ``PositionalEncoding``, its ``pe`` table (``(1, num_range, d_model)`` or ``(num_range,
    d_model)``), or an int ``d_model`` to plot the closed form. The image data is ``pe[:num_positions]``.
    """
    if isinstance(encoding, int):
        table = sinusoidal_table(num_positions, encoding)
    else:
        table = encoding.pe if isinstance(encoding, PositionalEncoding) else encoding
        table = table.detach().reshape(-1, table.size(-1))[:num_positions]
    table = table.cpu().float()
    fig, ax = _new_figure((8, 4))
    image = ax.imshow(table.numpy(), aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xlabel("embedding dimension")
    ax.set_ylabel("position")
    ax.set_title(f"Sinusoidal positional encoding ({table.size(0)} positions x {table.size(1)} dims)")
    fig.colorbar(image, ax=ax)
    return fig


def visible(text: str) -> str:
    """A label you can see: a space as ``␣``, a newline as ``\\n`` (and other invisible characters escaped)."""
    if text == " ":
        return "\u2423"
    return repr(text)[1:-1] if text.isspace() or not text.isprintable() else text


def _prompt_ids(model: nn.Module, tokenizer, prompt: str) -> torch.Tensor:
    ids = torch.tensor([tokenizer.encode(prompt)], dtype=torch.long, device=next(model.parameters()).device)
    if ids.size(1) == 0:
        raise ValueError("The prompt is empty: give at least one character.")
    context_len = getattr(model, "context_len", None)
    if context_len is not None and ids.size(1) > context_len:
        raise ValueError(
            f"The prompt has {ids.size(1)} characters but the model sees at most context_len={context_len}: "
            "shorten the prompt."
        )
    return ids


@torch.no_grad()
def attention_maps(model: nn.Module, tokenizer, prompt: str) -> torch.Tensor:
    """Every head's attention weights for ``prompt``: ``(num_layers, num_heads, seq, seq)``, on the CPU.

    ``model``: a character ``GPTModel`` (teaching or fused: both give ``decoder.layers[i].attn.heads``).
    Entry ``[l, h, t, s]`` is how much position ``t`` draws on position ``s`` in head ``h`` of layer ``l``: the
    softmax that head computes in a normal forward pass (eval mode), so every row sums to 1 and is 0 after ``t``.
    """
    layers = model.decoder.layers
    ids = _prompt_ids(model, tokenizer, prompt)
    inputs: list[torch.Tensor] = []
    # Each head sees its layer's norm1 output; catch them all on the way through one forward pass.
    hooks = [layer.norm1.register_forward_hook(lambda _m, _inp, out: inputs.append(out)) for layer in layers]
    was_training = model.training
    try:
        model.eval()
        model(ids)
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    per_layer = [torch.stack([head.attention_weights(x)[0] for head in layer.attn.heads]) for layer, x in
                 zip(layers, inputs, strict=True)]  # fmt: skip
    return torch.stack(per_layer).cpu()


def attention_for_prompt(model: nn.Module, tokenizer, prompt: str, layer: int = 0, head: int = 0) -> torch.Tensor:
    """Attention weights ``(seq, seq)`` of head ``head`` in decoder layer ``layer`` of a ``GPTModel`` for ``prompt``.

    Row ``t`` says how much position ``t`` draws on each earlier position; every row sums to 1.
    """
    layers = model.decoder.layers
    if not 0 <= layer < len(layers):
        raise ValueError(f"layer must be in 0..{len(layers) - 1}, got {layer}.")
    heads = layers[layer].attn.heads
    if not 0 <= head < len(heads):
        raise ValueError(f"head must be in 0..{len(heads) - 1}, got {head}.")
    return attention_maps(model, tokenizer, prompt)[layer, head]


def plot_attention(weights: torch.Tensor, labels: Sequence[str], title: str = "Attention weights") -> Figure:
    """Heatmap of attention ``weights`` ``(seq, seq)``: row = the position attending (query), column = attended to.

    ``labels``: one string per position (the characters of the prompt), shown on both axes.
    """
    weights = weights.detach().cpu().float()
    if weights.dim() != 2 or weights.size(0) != weights.size(1) or weights.size(0) != len(labels):
        raise ValueError(
            f"plot_attention needs square weights (seq, seq) and seq labels; got {tuple(weights.shape)} "
            f"and {len(labels)} labels."
        )
    shown = [visible(s) for s in labels]
    size = min(12.0, max(4.0, 0.35 * len(labels) + 2))
    fig, ax = _new_figure((size, size))
    image = ax.imshow(weights.numpy(), cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks(range(len(shown)), labels=shown)
    ax.set_yticks(range(len(shown)), labels=shown)
    ax.set_xlabel("attended position (key)")
    ax.set_ylabel("attending position (query)")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return fig


def plot_attention_for_prompt(model: nn.Module, tokenizer, prompt: str, layer: int = 0, head: int = 0) -> Figure:
    """``attention_for_prompt`` drawn by ``plot_attention`` with the prompt's characters on the axes."""
    weights = attention_for_prompt(model, tokenizer, prompt, layer, head)
    return plot_attention(weights, list(prompt), title=f"Layer {layer}, head {head}: {prompt!r}")


def plot_attention_heads(
    model: nn.Module | str | os.PathLike[str],
    prompt: str,
    tokenizer=None,
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
) -> Figure:
    """A grid of attention heatmaps for ``prompt``: one row per decoder layer, one column per head.

    ``model``: a character ``GPTModel`` with its ``tokenizer``, or the path of a checkpoint (``ckpt.pt``, as the
    trainer writes it), from which both are loaded. ``layers``/``heads`` pick rows and columns (default: all).
    Panel ``(row, col)`` shows ``attention_maps(...)[layers[row], heads[col]]``: the query position (the character
    attending) down, the key position (the character attended to) across, the prompt's characters on both axes.
    """
    if isinstance(model, (str, os.PathLike)):
        from gptedu.checkpoint import load_for_generation  # local: plotting alone should not need the trainer

        model, tokenizer = load_for_generation(model)
    if tokenizer is None:
        raise ValueError("plot_attention_heads needs the tokenizer that goes with the model (or a checkpoint path).")
    maps = attention_maps(model, tokenizer, prompt)
    num_layers, num_heads = maps.shape[:2]
    layers = list(range(num_layers)) if layers is None else list(layers)
    heads = list(range(num_heads)) if heads is None else list(heads)
    for name, picked, limit in (("layer", layers, num_layers), ("head", heads, num_heads)):
        bad = [i for i in picked if not 0 <= i < limit]
        if bad or not picked:
            raise ValueError(f"{name}s must be a non-empty list of numbers in 0..{limit - 1}, got {picked}.")
    shown = [visible(ch) for ch in prompt]
    panel = min(5.0, max(2.5, 0.11 * len(prompt) + 1.0))
    fig, axes = plt.subplots(
        len(layers),
        len(heads),
        figsize=(panel * len(heads) + 1.2, panel * len(layers) + 0.6),
        squeeze=False,
        layout="constrained",
    )
    plt.close(fig)
    fontsize = 8 if len(prompt) <= 40 else 5
    for row, layer in enumerate(layers):
        for col, head in enumerate(heads):
            ax = axes[row][col]
            image = ax.imshow(maps[layer, head].numpy(), cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks(range(len(shown)), labels=shown, fontsize=fontsize)
            ax.set_yticks(range(len(shown)), labels=shown, fontsize=fontsize)
            ax.tick_params(length=0)
            ax.set_title(f"layer {layer}, head {head}", fontsize=9)
            if row == len(layers) - 1:
                ax.set_xlabel("attended to (key)", fontsize=8)
            if col == 0:
                ax.set_ylabel("attending (query)", fontsize=8)
    every = len(layers) == num_layers and len(heads) == num_heads
    fig.suptitle(f"Attention of {'every head' if every else 'some heads'} for {prompt!r}", fontsize=11)
    fig.colorbar(image, ax=axes, shrink=0.6)
    return fig


def plot_loss_curves(history: dict[str, list], title: str = "Loss") -> Figure:
    """Training loss per step (faint), and the train/val estimates, against the step, from a trainer's history.

    Lines, in order: ``"train loss (per step)"``, ``"train loss (estimate)"``, ``"val loss (estimate)"``; a line
    is left out when its data is empty.
    """
    fig, ax = _new_figure((8, 4.5))
    if history.get("step"):
        ax.plot(
            history["step"], history["loss"], color="tab:blue", alpha=0.3, linewidth=0.8, label="train loss (per step)"
        )
    if history.get("eval_step"):
        ax.plot(history["eval_step"], history["train_loss"], "o-", color="tab:blue", label="train loss (estimate)")
        ax.plot(history["eval_step"], history["val_loss"], "o-", color="tab:orange", label="val loss (estimate)")
    if not ax.lines:
        raise ValueError("The history is empty: train for a few steps first.")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy loss (nats per character)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig
