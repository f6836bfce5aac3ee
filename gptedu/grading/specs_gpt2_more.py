"""Graded components of part 2, notebook 14 (instruction fine-tuning): the prompt template and the collate function.

Same three steps as :mod:`gptedu.grading.specs`: plain-data cases (entries as dicts of strings, batches as lists of
token ids), the ``calls`` kind of :func:`gptedu.grading.runner.run_case`, and ``compare`` against
:mod:`gptedu.gpt2.finetune`. ``GPT2_MORE_SPECS`` is merged into the registry ``gptedu.grading.specs.SPECS``.
"""

from __future__ import annotations

import torch

from gptedu.gpt2 import finetune
from gptedu.grading.report import Failure, tensor_failure
from gptedu.grading.specs import _spec, _status_failures

NB14 = "14_instruction_finetuning"


# ============================================================================================== 14: prompt format
FORMAT_ENTRIES_VISIBLE = [
    {"instruction": "Translate to modern English.", "input": "Wherefore art thou sad?", "output": "Why are you sad?"},
    {"instruction": "Say goodbye as a Shakespearean character would.", "input": "", "output": "Fare you well."},
]
FORMAT_ENTRIES_HIDDEN = [
    {"instruction": "What does this word mean?", "input": "anon", "output": "Soon."},
    {"instruction": "Write two lines about the sea.", "input": "   ", "output": "x"},
    {"instruction": "Continue this speech.", "input": "Line one,\nline two,", "output": "and three."},
]


def _format_cases(hidden: bool) -> list[dict]:
    entries = FORMAT_ENTRIES_HIDDEN if hidden else FORMAT_ENTRIES_VISIBLE
    calls = [{"name": f"c{i}", "args": [dict(e)], "describe": f"entry with instruction {e['instruction']!r} and "
                                                                f"input {e['input']!r}"} for i, e in enumerate(entries)]
    return [{"spec": "format_prompt", "id": "format_prompt/0", "kind": "calls", "label": "format_prompt",
             "calls": calls, "entries": entries, "seed": 0, "describe": f"format_prompt on {len(entries)} entries"}]


def _format_compare(case, outputs):
    failures = _status_failures("format_prompt", case, outputs)
    if failures:
        return failures
    for i, entry in enumerate(case["entries"]):
        expected = finetune.format_prompt(entry)
        found = outputs.get(f"result:c{i}")
        if found == expected:
            continue
        cause = "compare your text with the template above character by character (blank lines, colons, the " \
                "final newline after '### Response:')."
        if isinstance(found, str):
            if not entry["input"].strip() and "### Input:" in found:
                cause = "with an empty (or blank) input, leave the whole '### Input:' section out."
            elif entry["input"].strip() and "### Input:" not in found:
                cause = "the input is missing: add '\\n\\n### Input:\\n' + entry['input'] when it is not empty."
            elif entry["output"] in found and entry["output"].strip() and not expected.endswith(entry["output"]):
                cause = "the prompt must stop after '### Response:\\n': the output is the target, not the prompt."
            elif found.rstrip("\n") == expected.rstrip("\n"):
                cause = "the prompt ends with '### Response:' followed by exactly one newline."
        failures.append(Failure("the prompt text equals the template", case["calls"][i]["describe"],
                                f"expected {expected!r}\nfound    {found!r}", cause))
        break
    return failures


# ============================================================================================== 14: collate
def _collate_cases(hidden: bool) -> list[dict]:
    # (batch of (prompt, response), pad_id, max_length)
    settings = ([([([5, 6, 7, 8], [9, 10, 2]), ([3, 4], [11, 2]), ([12, 13, 14], [2])], 2, None),
                 ([([1, 2, 3, 4, 5, 6], [7, 8, 9, 0]), ([4, 5], [6, 7, 0])], 0, 6),
                 ([([7], [8, 9, 1])], 1, None)] if hidden else
                [([([1, 2, 3], [4, 5, 0]), ([6, 7], [8, 0])], 0, None),
                 ([([10, 11, 12, 13], [14, 15, 16, 50]), ([17, 18], [19, 50])], 50, 5)])
    calls = []
    for i, (batch, pad, max_length) in enumerate(settings):
        kwargs = {"pad_id": pad}
        if max_length is not None:
            kwargs["max_length"] = max_length
        calls.append({"name": f"c{i}", "args": [[(list(p), list(r)) for p, r in batch]], "kwargs": kwargs,
                      "describe": f"batch={batch}, pad_id={pad}"
                                  + (f", max_length={max_length}" if max_length else "")})
    return [{"spec": "collate_instructions", "id": "collate_instructions/0", "kind": "calls",
             "label": "collate_instructions", "calls": calls, "settings": settings, "seed": 0,
             "describe": f"collate_instructions on {len(settings)} batches"}]


def _collate_like(batch, pad, max_length, shift=True, masked=-1, target_pad=-100, mask=True) -> torch.Tensor:
    """The targets of a collate written with one knob turned (a typical mistake)."""
    seqs = [list(p) + list(r) for p, r in batch]
    length = max(len(s) for s in seqs) - 1
    if max_length is not None:
        length = min(length, max_length)
    targets = torch.full((len(batch), length), target_pad, dtype=torch.long)
    for row, ((prompt, _), seq) in enumerate(zip(batch, seqs, strict=True)):
        y = list((seq[1:] if shift else seq[:-1])[:length])
        if mask:
            for j in range(max(0, min(len(prompt) + masked, len(y)))):
                y[j] = -100
        targets[row, : len(y)] = torch.tensor(y, dtype=torch.long)
    return targets


def _collate_variants(batch, pad, max_length) -> list[tuple[str, torch.Tensor]]:
    return [
        ("the prompt is not masked: set the targets of prompt tokens (targets[j] for j < len(prompt) - 1) to -100.",
         _collate_like(batch, pad, max_length, mask=False)),
        ("the padding in the targets is pad_id: padded target positions must be -100 so the loss skips them.",
         _collate_like(batch, pad, max_length, target_pad=pad)),
        ("one target too many is masked: the first response token (targets[len(prompt) - 1]) must stay, it is "
         "what the model predicts after reading the whole prompt.", _collate_like(batch, pad, max_length, masked=0)),
        ("the last prompt token is not masked as a target: mask targets[j] for every j < len(prompt) - 1.",
         _collate_like(batch, pad, max_length, masked=-2)),
        ("the targets are not shifted: targets = (prompt + response)[1:], inputs = (prompt + response)[:-1].",
         _collate_like(batch, pad, max_length, shift=False)),
    ]


def _collate_compare(case, outputs):
    failures = _status_failures("collate_instructions", case, outputs)
    if failures:
        return failures
    for i, (batch, pad, max_length) in enumerate(case["settings"]):
        desc = case["calls"][i]["describe"]
        x, y = finetune.collate_instructions(batch, pad, max_length=max_length)
        fx, fy = outputs.get(f"result:c{i}.0"), outputs.get(f"result:c{i}.1")
        if not isinstance(fx, torch.Tensor) or not isinstance(fy, torch.Tensor):
            return [Failure("returns (inputs, targets)", desc, "expected a pair of tensors.",
                            "return inputs, targets (both (batch, L) torch.long).")]
        if fx.dtype != torch.long or fy.dtype != torch.long:
            return [Failure("token ids are torch.long", desc, f"found {fx.dtype} and {fy.dtype}.",
                            "torch.tensor(..., dtype=torch.long): embeddings and cross_entropy need integer ids.")]
        fail = tensor_failure("inputs: prompt + response without its last token, right-padded with pad_id", desc,
                              "inputs", x, fx, 0, 0,
                              "inputs = (prompt + response)[:-1], padded on the right with pad_id to the longest "
                              "row" + (", then cut to max_length." if max_length else "."))
        if fail:
            if fx.shape == x.shape and bool((fx[:, 0] == pad).any()) and not bool((x[:, 0] == pad).any()):
                fail.cause = "the rows are padded on the left: pad on the right (the positions must start at 0)."
            elif max_length and fx.size(1) > max_length:
                fail.cause = "max_length is ignored: cut inputs and targets to at most max_length columns."
            return [fail]
        fail = tensor_failure("targets: next tokens, -100 on prompt tokens and padding", desc, "targets", y, fy, 0, 0,
                              "")
        if fail:
            fail.cause = next((text for text, v in _collate_variants(batch, pad, max_length)
                               if v.shape == fy.shape and torch.equal(v, fy)),
                              "targets = (prompt + response)[1:], with targets[j] = -100 for j < len(prompt) - 1 "
                              "and on the padding.")
            return [fail]
    return failures


GPT2_MORE_SPECS = {s.name: s for s in [
    _spec("format_prompt", "format_prompt (the instruction template)", "format_prompt", NB14, 3, 2, _format_cases,
          _format_compare),
    _spec("collate_instructions", "collate_instructions (padding and prompt masking)", "collate_instructions", NB14,
          8, 7, _collate_cases, _collate_compare),
]}
