"""Text generation for the GPT-2 family: ``gen_text`` and the text ↔ token-id helpers."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from gptedu.sampling import sample_loop


def text_to_token_ids(text: str, tokenizer) -> torch.Tensor:
    """Encode ``text`` with ``tokenizer`` into a batch of one: ``(1, n_tokens)`` long.

    Special tokens such as ``<|endoftext|>`` written in the text are recognised (``allowed_special="all"``) when
    the tokenizer supports it (gptedu's ``BPETokenizer``, ``TiktokenBPE``, a ``tiktoken.Encoding``).
    """
    try:
        ids = tokenizer.encode(text, allowed_special="all")
    except TypeError:  # a tokenizer without special tokens, e.g. the character tokenizer of part 1
        ids = tokenizer.encode(text)
    return torch.tensor(ids, dtype=torch.long).unsqueeze(0)


def token_ids_to_text(token_ids: torch.Tensor | Sequence[int], tokenizer) -> str:
    """Decode ``(1, n_tokens)`` or ``(n_tokens,)`` token ids back to text."""
    if isinstance(token_ids, torch.Tensor):
        if token_ids.dim() == 2:
            if token_ids.size(0) != 1:
                raise ValueError(f"token_ids_to_text decodes one sequence; got a batch of {token_ids.size(0)}.")
            token_ids = token_ids[0]
        token_ids = token_ids.tolist()
    return tokenizer.decode(list(token_ids))


def check_gen_args(model: torch.nn.Module, idx: torch.Tensor, context_size: int) -> None:
    """Clear errors for the usual generation mistakes (shared by ``gen_text`` and ``gen_text_cached``)."""
    if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.dtype != torch.long:
        found = f"{tuple(idx.shape)} {idx.dtype}" if isinstance(idx, torch.Tensor) else type(idx).__name__
        raise ValueError(
            f"idx must be a (batch, seq) tensor of token ids (torch.long), got {found}; "
            "text_to_token_ids(text, tokenizer) builds one."
        )
    if idx.size(1) == 0:
        raise ValueError("gen_text needs at least one prompt token; got an empty prompt.")
    model_len = getattr(getattr(model, "cfg", None), "context_len", None)
    if context_size < 1 or (model_len is not None and context_size > model_len):
        raise ValueError(
            f"context_size must be between 1 and the model's context_len ({model_len}), got {context_size}."
        )


@torch.no_grad()
def gen_text(
    model: torch.nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    context_size: int,
    temperature: float = 0.0,
    top_k: int | None = None,
    eos_id: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Append up to ``max_new_tokens`` tokens to ``idx`` ``(batch, seq)`` and return the longer tensor.

    Each step feeds the last ``context_size`` tokens to ``model``, takes the logits of the last position and picks
    the next token: ``temperature == 0`` → greedy argmax; otherwise keep the ``top_k`` largest logits (the others
    become ``-inf``), divide by ``temperature``, softmax, and sample (``generator`` makes it reproducible).
    ``eos_id``: generation stops when it is produced, and the stopping token is *not* appended. In a batch, a row
    that produced ``eos_id`` is padded with it until every row has produced it (``gptedu.sampling.sample_loop``).
    The model is used as it is: call ``model.eval()`` first so dropout is off.
    """
    check_gen_args(model, idx, context_size)
    return sample_loop(
        lambda seq: model(seq[:, -context_size:])[:, -1, :],  # (batch, vocab)
        idx,
        max_new_tokens,
        temperature,
        top_k,
        eos_id=eos_id,
        generator=generator,
    )
