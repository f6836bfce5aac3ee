"""Instruction fine-tuning (notebook 14): the prompt format, the dataset, collate with prompt masking, the loop.

A pretrained model only continues text. To make it *answer*, we show it examples laid out in one fixed format and
train it on the answers only::

    Below is a request about Shakespeare's plays. Write a response that fulfils it.

    ### Instruction:
    Translate to modern English.

    ### Input:
    Wherefore art thou sad?

    ### Response:
    Why are you sad?<|endoftext|>

``collate_instructions`` turns ``(prompt_ids, response_ids)`` pairs into ``(inputs, targets)`` where every target
that is a prompt token or padding is ``ignore_index`` (-100): ``cross_entropy`` skips those positions, so the loss
(``gptedu.gpt2.calc_loss_batch``) measures the response alone.

The examples: ``instructions.json`` (written for this project: modern-English paraphrases, word meanings, short
questions about the plays) plus pairs derived at run time from the corpus (``corpus_examples``: "Who speaks this
line?" and "Continue this speech."). The corpus itself is never copied into the package.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Sequence
from importlib import resources

import torch
from torch.utils.data import DataLoader, Dataset

from gptedu.gpt2.generate import gen_text
from gptedu.gpt2.train import calc_loss_batch, calc_loss_loader

PREAMBLE = "Below is a request about Shakespeare's plays. Write a response that fulfils it."
RESPONSE_HEADER = "\n\n### Response:\n"
IGNORE_INDEX = -100


def format_prompt(entry: dict) -> str:
    """Everything the model reads before its answer: preamble, instruction, the input if any, response header.

    ``entry``: ``{"instruction": str, "input": str, "output": str}`` (``input`` may be empty or missing; then the
    ``### Input:`` section is left out). The result ends with ``"### Response:\\n"``.
    """
    for key in ("instruction",):
        if key not in entry:
            raise KeyError(f"An instruction example needs the key {key!r}; got the keys {sorted(entry)}.")
    text = f"{PREAMBLE}\n\n### Instruction:\n{entry['instruction']}"
    if entry.get("input", "").strip():
        text += f"\n\n### Input:\n{entry['input']}"
    return text + RESPONSE_HEADER


def format_example(entry: dict, eos: str = "<|endoftext|>") -> str:
    """The whole training text of one example: ``format_prompt(entry) + output + eos``."""
    return format_prompt(entry) + entry["output"] + eos


# ---------------------------------------------------------------------------------------------------- the data
def load_instruction_examples() -> list[dict]:
    """The hand-written examples shipped with the package (``gptedu/gpt2/data/instructions.json``)."""
    text = resources.files("gptedu.gpt2").joinpath("data", "instructions.json").read_text(encoding="utf-8")
    entries = json.loads(text)
    for i, e in enumerate(entries):
        if not {"instruction", "output"} <= set(e):
            raise ValueError(f"instructions.json entry {i} lacks 'instruction' or 'output': {e}")
        e.setdefault("input", "")
    return entries


_SPEAKER = re.compile(r"^([A-Z][A-Za-z' ]+):$")


def speeches(text: str) -> list[tuple[str, list[str]]]:
    """``(speaker, lines)`` for every speech of a TinyShakespeare-formatted text (``NAME:`` then lines, blank line)."""
    out = []
    for block in text.split("\n\n"):
        lines = [line.strip() for line in block.strip().split("\n") if line.strip()]
        if len(lines) >= 2 and _SPEAKER.match(lines[0]):
            out.append((lines[0][:-1], lines[1:]))
    return out


def _name(speaker: str) -> str:
    """``"KING HENRY VI"`` → ``"King Henry VI"`` (roman numerals stay upper case)."""
    return " ".join(w if set(w) <= set("IVX") else w.title() for w in speaker.split())


def corpus_examples(text: str, n: int = 200, seed: int = 0, min_speeches: int = 40) -> list[dict]:
    """Examples derived from the corpus: half "Who speaks this line?", half "Continue this speech.".

    Speakers are drawn among characters with at least ``min_speeches`` speeches (so the answer can be learned).
    Deterministic for a given ``seed``.
    """
    rng = random.Random(seed)
    all_speeches = speeches(text)
    counts: dict[str, int] = {}
    for speaker, _ in all_speeches:
        counts[speaker] = counts.get(speaker, 0) + 1
    known = [(s, lines) for s, lines in all_speeches if counts[s] >= min_speeches and len(lines[0]) > 15]
    multi = [(s, lines) for s, lines in all_speeches if len(lines) >= 2]
    if not known or not multi:
        raise ValueError("The text has no speeches in the TinyShakespeare format ('NAME:' lines followed by text).")
    out = []
    for i in range(n):
        if i % 2 == 0:
            speaker, lines = rng.choice(known)
            out.append({"instruction": "Who speaks this line?", "input": lines[0], "output": _name(speaker)})
        else:
            _, lines = rng.choice(multi)
            out.append({"instruction": "Continue this speech.", "input": lines[0], "output": lines[1]})
    return out


def split_entries(entries: Sequence[dict], val_fraction: float = 0.1, seed: int = 0) -> tuple[list, list]:
    """Shuffle (seeded) and split into ``(train, val)``; each side gets at least one example."""
    if len(entries) < 2:
        raise ValueError(f"Need at least 2 examples to split, got {len(entries)}.")
    order = list(range(len(entries)))
    random.Random(seed).shuffle(order)
    n_val = min(len(entries) - 1, max(1, round(len(entries) * val_fraction)))
    return [entries[i] for i in order[n_val:]], [entries[i] for i in order[:n_val]]


class InstructionDataset(Dataset):
    """Tokenized examples: item ``i`` is ``(prompt_ids, response_ids)`` (lists of ints).

    ``response_ids`` = ``tokenizer.encode(output)`` followed by ``eos_id``, so the model learns to stop. The prompt
    and the response are encoded separately: the boundary between them is exact.
    """

    def __init__(self, entries: Iterable[dict], tokenizer, eos_id: int | None = None):
        eos_id = tokenizer.eos_id if eos_id is None else eos_id
        if eos_id is None:
            raise ValueError("The tokenizer has no <|endoftext|> token; pass eos_id= (the id that ends a response).")
        self.eos_id = eos_id
        self.items = [(tokenizer.encode(format_prompt(e)), tokenizer.encode(e["output"]) + [eos_id])
                      for e in entries]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[list[int], list[int]]:
        return self.items[i]


def collate_instructions(
    batch: Sequence[tuple[Sequence[int], Sequence[int]]],
    pad_id: int,
    ignore_index: int = IGNORE_INDEX,
    max_length: int | None = None,
    mask_prompt: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(prompt_ids, response_ids)`` pairs → ``inputs``, ``targets``, both ``(batch, L)`` long.

    For each example the token sequence is ``s = prompt + response``; ``inputs = s[:-1]``, ``targets = s[1:]``
    (the next token at every position). Targets that are prompt tokens (``targets[j]`` with ``j < len(prompt) - 1``)
    become ``ignore_index`` when ``mask_prompt``; rows are right-padded to the longest (``L`` = longest ``len(s) - 1``,
    cut to ``max_length``) with ``pad_id`` in ``inputs`` and ``ignore_index`` in ``targets``.
    """
    if not batch:
        raise ValueError("collate_instructions got an empty batch.")
    seqs = [list(p) + list(r) for p, r in batch]
    short = [i for i, s in enumerate(seqs) if len(s) < 2]
    if short:
        raise ValueError(f"Examples {short} have fewer than 2 tokens: nothing to predict.")
    length = max(len(s) for s in seqs) - 1
    if max_length is not None:
        length = min(length, max_length)
    inputs = torch.full((len(batch), length), pad_id, dtype=torch.long)
    targets = torch.full((len(batch), length), ignore_index, dtype=torch.long)
    for row, ((prompt, _), s) in enumerate(zip(batch, seqs, strict=True)):
        x, y = s[:-1][:length], list(s[1:][:length])
        if mask_prompt:
            for j in range(min(len(prompt) - 1, len(y))):
                y[j] = ignore_index
        inputs[row, : len(x)] = torch.tensor(x, dtype=torch.long)
        targets[row, : len(y)] = torch.tensor(y, dtype=torch.long)
    return inputs, targets


def instruction_loader(dataset: Dataset, batch_size: int, pad_id: int, max_length: int | None = None,
                       shuffle: bool = True, generator: torch.Generator | None = None) -> DataLoader:
    """A ``DataLoader`` over an ``InstructionDataset`` that collates with prompt masking."""

    def collate(batch):
        return collate_instructions(batch, pad_id, max_length=max_length)

    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, collate_fn=collate, generator=generator)


# ---------------------------------------------------------------------------------------------------- training
def finetune(model: torch.nn.Module, train_loader, optimizer: torch.optim.Optimizer, device: torch.device | str,
             num_steps: int, val_loader=None, eval_every: int = 0, eval_iter: int = 5) -> dict[str, list]:
    """``num_steps`` optimizer steps over ``train_loader`` (cycled); the loss covers response tokens only.

    Returns ``{"step": [...], "train_loss": [...], "val_loss": [...]}``: the training loss of every step and, every
    ``eval_every`` steps (if > 0 and a ``val_loader`` is given), the validation loss on ``eval_iter`` batches.
    """
    history: dict[str, list] = {"step": [], "train_loss": [], "val_step": [], "val_loss": []}
    step = 0
    model.train()
    while step < num_steps:
        for input_batch, target_batch in train_loader:
            optimizer.zero_grad()
            loss = calc_loss_batch(input_batch, target_batch, model, device)
            loss.backward()
            optimizer.step()
            step += 1
            history["step"].append(step)
            history["train_loss"].append(loss.item())
            if val_loader is not None and eval_every > 0 and step % eval_every == 0:
                model.eval()
                with torch.no_grad():
                    history["val_step"].append(step)
                    history["val_loss"].append(calc_loss_loader(val_loader, model, device, eval_iter))
                model.train()
            if step >= num_steps:
                break
    model.eval()
    return history


@torch.no_grad()
def generate_response(model: torch.nn.Module, tokenizer, entry: dict, max_new_tokens: int = 40,
                      context_size: int | None = None, eos_id: int | None = None) -> str:
    """The model's answer to ``entry`` (greedy): the text generated after the prompt, up to ``<|endoftext|>``.

    At most ``max_new_tokens`` tokens; the prompt is cropped to its last ``context_size`` tokens if it is longer.
    """
    model.eval()
    context_size = context_size or model.cfg.context_len
    eos_id = tokenizer.eos_id if eos_id is None else eos_id
    prompt = torch.tensor([tokenizer.encode(format_prompt(entry))], dtype=torch.long)
    device = next(model.parameters()).device
    out = gen_text(model, prompt.to(device), max_new_tokens, context_size, eos_id=eos_id)
    return tokenizer.decode(out[0, prompt.size(1):].tolist())


__all__ = [
    "IGNORE_INDEX",
    "PREAMBLE",
    "RESPONSE_HEADER",
    "InstructionDataset",
    "collate_instructions",
    "corpus_examples",
    "finetune",
    "format_example",
    "format_prompt",
    "generate_response",
    "instruction_loader",
    "load_instruction_examples",
    "speeches",
    "split_entries",
]
