"""Choosing the next token from logits (greedy, temperature, top-k, top-p) and the one generation loop.

Shared by both model families: ``GPTModel.generate``, ``generate_cached`` (part 1), ``gen_text`` and
``gen_text_cached`` (part 2) are ``sample_loop`` with different ways of computing the next logits, so they sample
the same way and stop at an end-of-sequence token the same way.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Set to ``-inf`` every logit outside the top-k and/or the top-p nucleus.

    ``logits``: ``(batch, vocab)``. Returns a new tensor of the same shape. Ties at the k-th value are kept.
    """
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k}.")
        k = min(top_k, logits.size(-1))
        kth = torch.topk(logits, k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}.")
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = torch.softmax(sorted_logits, dim=-1)
        # Drop a token when the tokens ranked above it already hold top_p of the mass; the first always stays.
        drop_sorted = (probs.cumsum(dim=-1) - probs) >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next_token(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pick one token per row of ``logits`` ``(batch, vocab)``; returns ``(batch, 1)`` long.

    ``temperature == 0`` means greedy (argmax). Otherwise logits are divided by the temperature *before*
    the softmax, filtered by top-k / top-p, and sampled with ``torch.multinomial``.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 means greedy), got {temperature}.")
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = filter_logits(logits / temperature, top_k=top_k, top_p=top_p)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)


def sample_loop(
    next_logits: Callable[[torch.Tensor], torch.Tensor],
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    eos_id: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The one autoregressive loop of the package: append up to ``max_new_tokens`` tokens to ``idx``.

    ``idx``: ``(batch, seq)`` token ids. ``next_logits(idx)`` returns the logits of the position after the last one,
    ``(batch, vocab)``: it may run the whole (cropped) context through a model, or only the newest token through a
    KV cache it keeps. Each step picks one token per row with ``sample_next_token`` and appends it.

    End of sequence (``eos_id``): a row that produced ``eos_id`` is finished; while other rows go on it is padded
    with ``eos_id`` (the batch stays rectangular), and the loop stops at the step where every row has finished,
    *without* appending that step's tokens. For one sequence: generation stops when the model picks ``eos_id``, and
    ``eos_id`` is not in the result. Returns ``(batch, seq + generated)``.
    """
    finished = torch.zeros(idx.size(0), 1, dtype=torch.bool, device=idx.device)
    for _ in range(max_new_tokens):
        nxt = sample_next_token(next_logits(idx), temperature, top_k, top_p, generator)  # (batch, 1)
        if eos_id is not None:
            finished |= nxt == eos_id
            if bool(finished.all()):
                break
            nxt = nxt.masked_fill(finished, eos_id)
        idx = torch.cat([idx, nxt], dim=1)
    return idx
