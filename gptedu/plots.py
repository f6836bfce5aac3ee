"""Pictures of what the model does: the positional code, one head's attention, and the loss curves.

Each function returns a matplotlib ``Figure`` (already closed in pyplot, so a notebook shows it once, as the
cell's value, and scripts or tests on a headless machine never pile up open windows).
"""

from __future__ import annotations

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


@torch.no_grad()
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
    ids = torch.tensor([tokenizer.encode(prompt)], dtype=torch.long, device=next(model.parameters()).device)
    if ids.size(1) == 0:
        raise ValueError("The prompt is empty: give at least one character.")
    captured = {}
    # The head sees norm1's output of its layer; catch it on the way through a normal forward pass.
    hook = layers[layer].norm1.register_forward_hook(lambda _m, _inp, out: captured.setdefault("x", out))
    was_training = model.training
    try:
        model.eval()
        model(ids)
    finally:
        hook.remove()
        model.train(was_training)
    return heads[head].attention_weights(captured["x"])[0].cpu()


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
    shown = [repr(s)[1:-1] if s.isspace() or not s.isprintable() else s for s in labels]  # '\n' -> visible
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
