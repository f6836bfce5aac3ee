"""Instruction fine-tuning (``gptedu.gpt2.finetune``): template, data, collate with prompt masking, the loop."""

from __future__ import annotations

import json
from importlib import resources

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from gptedu.gpt2 import BPETokenizer, GPTModel, calc_loss_batch, calc_loss_loader
from gptedu.gpt2.finetune import (
    IGNORE_INDEX,
    PREAMBLE,
    InstructionDataset,
    collate_instructions,
    corpus_examples,
    finetune,
    format_example,
    format_prompt,
    generate_response,
    instruction_loader,
    load_instruction_examples,
    speeches,
    split_entries,
)

PLAY = """FIRST WITCH:
When shall we three meet again
In thunder, lightning, or in rain?

MACBETH:
So foul and fair a day I have not seen.
What are these, so wither'd and so wild?

FIRST WITCH:
All hail, Macbeth! hail to thee, thane of Glamis!

MACBETH:
Stay, you imperfect speakers, tell me more:
By Sinel's death I know I am thane of Glamis;
"""


def test_format_prompt_with_and_without_input():
    with_input = format_prompt({"instruction": "Translate.", "input": "Hie thee hence!", "output": "Go away!"})
    assert with_input == (f"{PREAMBLE}\n\n### Instruction:\nTranslate.\n\n### Input:\nHie thee hence!"
                          "\n\n### Response:\n")
    for blank in ("", "   ", None):
        entry = {"instruction": "Say hello.", "output": "Hail!"}
        if blank is not None:
            entry["input"] = blank
        assert format_prompt(entry) == f"{PREAMBLE}\n\n### Instruction:\nSay hello.\n\n### Response:\n"
    assert format_example({"instruction": "Say hello.", "input": "", "output": "Hail!"}).endswith(
        "### Response:\nHail!<|endoftext|>")
    with pytest.raises(KeyError, match="instruction"):
        format_prompt({"input": "x", "output": "y"})


def test_written_examples_ship_with_the_package():
    raw = resources.files("gptedu.gpt2").joinpath("data", "instructions.json").read_text(encoding="utf-8")
    assert len(json.loads(raw)) >= 40
    examples = load_instruction_examples()
    assert all(e["instruction"].strip() and e["output"].strip() and "input" in e for e in examples)
    assert len({(e["instruction"], e["input"]) for e in examples}) == len(examples)  # no duplicated request


def test_corpus_examples_are_derived_deterministically():
    assert speeches(PLAY)[1] == ("MACBETH", ["So foul and fair a day I have not seen.",
                                             "What are these, so wither'd and so wild?"])
    examples = corpus_examples(PLAY, n=6, seed=3, min_speeches=2)
    assert examples == corpus_examples(PLAY, n=6, seed=3, min_speeches=2)
    for e in examples[0::2]:
        assert e["instruction"] == "Who speaks this line?"
        assert any(e["input"] == lines[0] and e["output"] == name.title() for name, lines in speeches(PLAY))
    roman = corpus_examples("KING HENRY VI:\nWhat, shall we march to London?\nAy, presently.\n", n=1, min_speeches=1)
    assert roman[0]["output"] == "King Henry VI"
    for e in examples[1::2]:
        assert e["instruction"] == "Continue this speech."
        assert any(lines[:2] == [e["input"], e["output"]] for _, lines in speeches(PLAY))
    with pytest.raises(ValueError, match="TinyShakespeare format"):
        corpus_examples("no speeches here", n=2)


def test_split_is_disjoint_and_seeded():
    entries = [{"instruction": str(i), "input": "", "output": "x"} for i in range(20)]
    train, val = split_entries(entries, 0.25, seed=1)
    assert len(val) == 5 and len(train) == 15
    assert {e["instruction"] for e in train}.isdisjoint({e["instruction"] for e in val})
    assert (train, val) == split_entries(entries, 0.25, seed=1)
    assert (train, val) != split_entries(entries, 0.25, seed=2)


def test_collate_shifts_pads_and_masks_the_prompt():
    batch = [([1, 2, 3], [4, 5, 0]), ([6, 7], [8, 0]), ([9], [10, 11, 12, 13, 0])]
    inputs, targets = collate_instructions(batch, pad_id=0)
    assert inputs.dtype == targets.dtype == torch.long
    assert inputs.tolist() == [[1, 2, 3, 4, 5], [6, 7, 8, 0, 0], [9, 10, 11, 12, 13]]
    # targets[j] = s[j+1]; -100 where s[j+1] is a prompt token (j < len(prompt) - 1) and on the padding
    assert targets.tolist() == [[-100, -100, 4, 5, 0], [-100, 8, 0, -100, -100], [10, 11, 12, 13, 0]]
    unmasked = collate_instructions(batch, pad_id=0, mask_prompt=False)[1]
    assert unmasked.tolist()[0] == [2, 3, 4, 5, 0]
    cut_x, cut_y = collate_instructions(batch, pad_id=0, max_length=3)
    assert cut_x.shape == cut_y.shape == (3, 3)
    assert torch.equal(cut_x, inputs[:, :3]) and torch.equal(cut_y, targets[:, :3])
    with pytest.raises(ValueError, match="empty batch"):
        collate_instructions([], pad_id=0)
    with pytest.raises(ValueError, match="fewer than 2 tokens"):
        collate_instructions([([1], [])], pad_id=0)


def test_masked_loss_ignores_prompt_and_padding_exactly():
    """The gradient reaches the logits of answer positions only; the loss is the mean over those positions."""
    torch.manual_seed(0)
    batch = [([3, 1, 4, 1, 5], [9, 2, 6, 0]), ([5, 3], [5, 8, 9, 7, 0])]
    inputs, targets = collate_instructions(batch, pad_id=0)
    logits = torch.randn(*inputs.shape, 12, requires_grad=True)
    loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    loss.backward()
    answer = targets != IGNORE_INDEX
    assert int(answer.sum()) == 4 + 5  # every answer token (eos included), nothing else
    assert bool((logits.grad[~answer] == 0).all())
    assert bool((logits.grad[answer].abs().sum(-1) > 0).all())
    by_hand = -torch.log_softmax(logits.detach()[answer], -1).gather(1, targets[answer][:, None]).mean()
    assert torch.allclose(loss.detach(), by_hand, atol=1e-6)


def _tiny_setup(seed: int = 0):
    text = PLAY * 3 + "Translate. Go away! Say hello. Hail!"
    tok = BPETokenizer.train(text, vocab_size=256 + 40 + 1)
    cfg = {"vocab_size": tok.vocab_size, "context_len": 192, "emb_dim": 32, "n_heads": 2, "n_layers": 1,
           "drop_rate": 0.0, "qkv_bias": False, "tie_weights": True}
    torch.manual_seed(seed)
    return tok, GPTModel(cfg)


def test_dataset_items_are_prompt_and_answer_with_eos():
    tok, _ = _tiny_setup()
    entries = [{"instruction": "Say hello.", "input": "", "output": "Hail!"}]
    ds = InstructionDataset(entries, tok)
    prompt, response = ds[0]
    assert len(ds) == 1
    assert tok.decode(prompt) == format_prompt(entries[0])
    assert response[-1] == tok.eos_id and tok.decode(response[:-1]) == "Hail!"


def test_a_few_steps_lower_the_response_loss_and_teach_the_answer():
    tok, model = _tiny_setup()
    entries = [{"instruction": "Say hello.", "input": "", "output": "Hail!"},
               {"instruction": "Translate.", "input": "Hie thee hence!", "output": "Go away!"}]
    loader = instruction_loader(InstructionDataset(entries, tok), batch_size=2, pad_id=tok.eos_id, shuffle=False)
    model.eval()
    with torch.no_grad():
        before = calc_loss_loader(loader, model, "cpu")
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    history = finetune(model, loader, optimizer, "cpu", num_steps=60, val_loader=loader, eval_every=30)
    assert len(history["train_loss"]) == 60 and history["val_step"] == [30, 60]
    with torch.no_grad():
        after = calc_loss_loader(loader, model, "cpu")
    assert after < 0.5 * before
    assert not model.training
    assert generate_response(model, tok, entries[0], max_new_tokens=10) == "Hail!"
    assert generate_response(model, tok, entries[1], max_new_tokens=10) == "Go away!"


def test_finetune_leaves_the_prompt_loss_out():
    """Fine-tuning with masked batches equals training on the response positions alone (same first-step loss)."""
    tok, model = _tiny_setup(1)
    entries = [{"instruction": "Say hello.", "input": "", "output": "Hail!"}]
    prompt, response = InstructionDataset(entries, tok)[0]
    inputs, targets = collate_instructions([(prompt, response)], pad_id=tok.eos_id)
    loss = calc_loss_batch(inputs, targets, model, "cpu")
    logits = model(inputs)[0, len(prompt) - 1:]
    assert torch.allclose(loss, F.cross_entropy(logits, torch.tensor(response)), atol=1e-6)
