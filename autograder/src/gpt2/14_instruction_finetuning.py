# %% [markdown] id="c000"
# # 14 · Instruction fine-tuning
#
# *Part 2 of "Building a GPT from scratch" (assignment `gpt2`, notebooks 10–14): GPT-2, built and trained.*
#
# **Points in this notebook: 20** (self-checks 11 + hidden tests 9). **Part 2 total: 180 points.**
#
# Notebooks 10–13 built a GPT-2, trained it and made its generation fast. This one teaches it to answer requests:
# supervised instruction fine-tuning, the first step of the recipe that turned GPT-3 into InstructGPT (Ouyang et
# al. 2022, "Training language models to follow instructions with human feedback").
#
# A pretrained language model does one thing: it continues text. Ask it *"Translate to modern English: Wherefore art
# thou sad?"* and it writes more Shakespeare. Instruction fine-tuning keeps the same model and the same loss, and
# changes only the **data**: examples of a request followed by its answer, always laid out in one template, so the
# model learns where an answer starts, what it looks like, and when to stop.
#
# Two details make it work, and you write both:
#
# 1. **the prompt template** (`format_prompt`, 5 points): one fixed layout with a `### Response:` header that tells the
#    model "your answer starts here";
# 2. **the batch** (`collate_instructions`, 15 points): requests and answers of different lengths padded into one
#    tensor, with the targets of the prompt tokens and of the padding set to `-100`, the `ignore_index` of
#    `cross_entropy`, so that the loss scores **only the answer**.
#
# Then we take a small GPT pretrained on TinyShakespeare (as in notebook 12), fine-tune it on a few hundred
# examples, and compare its answers before and after. Everything runs on a CPU; the cells print how long
# pretraining and fine-tuning took.

# %% id="c001"
# Setup (JupyterLab, Notebook 7, Colab): installs gptedu if it is missing, from $GPTEDU_PIP, else from
# the gptedu checkout this notebook sits in, else from the course's repository GPTEDU_REPO.
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

GPTEDU_REPO = None  # set by the course build (gptedu.grading.build.COURSE_REPO)
if importlib.util.find_spec("gptedu") is None:
    here = Path.cwd().resolve()
    checkout = next((p for p in (here, *here.parents) if (p / "gptedu" / "__init__.py").is_file()), None)
    where = checkout.as_uri() if checkout else GPTEDU_REPO
    requirement = os.environ.get("GPTEDU_PIP") or (where and f"gptedu[plots,gpt2] @ {where}")
    if not requirement:
        raise RuntimeError("gptedu is missing and this notebook is not in a gptedu checkout: set GPTEDU_PIP, "
                           "e.g. os.environ['GPTEDU_PIP'] = 'gptedu @ git+https://github.com/<course>/gptedu'")
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", requirement])

import torch
from torch import nn

# Under the autograder (NBGRADER_EXECUTION) or with GPTEDU_QUICK=1, heavy cells take a short path.
QUICK = bool(os.environ.get("NBGRADER_EXECUTION") or os.environ.get("GPTEDU_QUICK"))
if QUICK:
    torch.set_num_threads(1)  # graders run many notebooks side by side
torch.manual_seed(0)
import time

import matplotlib.pyplot as plt
import torch.nn.functional as F
from torch.utils.data import DataLoader

from gptedu.data import load_tinyshakespeare
from gptedu.gpt2 import BPETokenizer, GPTModel, create_dataloader, gen_text, train_simple
from gptedu.gpt2.finetune import corpus_examples, finetune, load_instruction_examples, split_entries

# %% [markdown] id="c002"
# ## The data: requests and answers
#
# An instruction example is a dictionary with three strings: `instruction` (the request), `input` (what it is about;
# may be empty) and `output` (the answer). Ours come from two places, both built in this repository (no download):
#
# | kind | where | example |
# |---|---|---|
# | written by hand (42) | `gptedu/gpt2/data/instructions.json` | *Translate to modern English.* / *Hie thee hence!* → *Go away quickly!* |
# | "Who speaks this line?" | derived from the corpus at run time | the first line of a speech → its speaker |
# | "Continue this speech." | derived from the corpus at run time | the first line of a speech → its second line |
#
# The derived examples are cheap and plentiful; the written ones are few but ask for something the corpus never
# shows (paraphrase, word meanings, one-word answers). We keep a few examples of every kind aside to compare answers
# before and after fine-tuning.

# %% id="c003"
text = load_tinyshakespeare()
written = load_instruction_examples()
derived = corpus_examples(text, n=120 if QUICK else 400, seed=0)
examples = written + derived
train_examples, val_examples = split_entries(examples, val_fraction=0.1, seed=0)
print(f"{len(written)} written + {len(derived)} derived = {len(examples)} examples: "
      f"{len(train_examples)} for training, {len(val_examples)} held out")
for e in [written[0], written[20], derived[0], derived[1]]:
    print(e)

# %% [markdown] id="c004"
# ## Exercise 1: the prompt template (5 points)
#
# Every example is shown to the model in the same layout (the idea, and the `###` headers, follow the Alpaca data set
# of Taori et al., 2023; the wording here is ours):
#
# ```
# Below is a request about Shakespeare's plays. Write a response that fulfils it.
#
# ### Instruction:
# Translate to modern English.
#
# ### Input:
# Wherefore art thou sad?
#
# ### Response:
# ```
#
# followed, during training, by the answer and `<|endoftext|>`. Precisely, `format_prompt(entry)` returns
#
# * `PREAMBLE` (the first line, given below), a blank line, `### Instruction:`, a newline and `entry["instruction"]`;
# * **only if** `entry["input"]` is not empty (nor only spaces): a blank line, `### Input:`, a newline and
#   `entry["input"]`;
# * a blank line, `### Response:` and **one** newline — the prompt ends there: the answer is what the model must
#   produce, so it is not part of the prompt.
#
# "A blank line" means two newline characters, `"\n\n"`. At inference time we give the model exactly this prompt and
# let it continue: the `### Response:` header is its cue.

# %% id="c005"
PREAMBLE = "Below is a request about Shakespeare's plays. Write a response that fulfils it."


# %% id="c006" nbgrader={"grade": false, "grade_id": "format_prompt_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def format_prompt(entry: dict) -> str:
    """The text the model reads before its answer; ends with '### Response:' and a newline."""
    ### BEGIN SOLUTION
    text = PREAMBLE + "\n\n### Instruction:\n" + entry["instruction"]
    if entry.get("input", "").strip():
        text += "\n\n### Input:\n" + entry["input"]
    return text + "\n\n### Response:\n"
    ### END SOLUTION


# %% id="c007"
print(format_prompt(written[0]) + written[0]["output"])
print("-" * 40)
print(format_prompt({"instruction": "Say goodbye as a Shakespearean character would.", "input": ""}), end="")

# %% id="c008" nbgrader={"grade": true, "grade_id": "test_format_prompt_visible", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Self-check: `format_prompt` against the template (3 points).
from gptedu.grading import check

check("format_prompt", globals())

# %% id="c009" nbgrader={"grade": true, "grade_id": "test_format_prompt_hidden", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: cases you have not seen (2 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("format_prompt", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="c010"
# ## Tokens: prompt, answer, end of text
#
# The model reads token ids. We encode the prompt and the answer **separately** and append the end-of-text id to the
# answer, so that we know exactly which tokens belong to which part, and so the model learns to *stop*:
#
# ```
# prompt_ids   = tokenizer.encode(format_prompt(entry))
# response_ids = tokenizer.encode(entry["output"]) + [eos_id]
# ```
#
# ## Exercise 2: the batch, with padding and prompt masking (15 points)
#
# A training example is the sequence $s$ = `prompt_ids + response_ids`. As in pretraining, the model reads
# $s_0 \dots s_{n-2}$ and must predict, at every position $j$, the next token $s_{j+1}$:
#
# ```
# inputs  = s[:-1]
# targets = s[1:]
# ```
#
# With a prompt of 3 tokens $p_0 p_1 p_2$ and an answer $r_0 r_1$ followed by end-of-text $e$:
#
# | position $j$ | 0 | 1 | 2 | 3 | 4 |
# |---|---|---|---|---|---|
# | `inputs[j]` | $p_0$ | $p_1$ | $p_2$ | $r_0$ | $r_1$ |
# | `targets[j]` before masking | $p_1$ | $p_2$ | $r_0$ | $r_1$ | $e$ |
# | `targets[j]` after masking | -100 | -100 | $r_0$ | $r_1$ | $e$ |
#
# **Prompt masking.** The prompt is given, not produced: we do not want to train the model to write requests. The
# targets that are prompt tokens, `targets[j]` for `j < len(prompt) - 1`, become `-100`. Note position 2: the
# model has read the whole prompt and must produce the *first answer token* $r_0$ — that one stays.
#
# **Padding.** Examples have different lengths; a batch is one rectangle. Pad every row **on the right** to the
# longest row (`L = max(len(s)) - 1` columns): `inputs` with `pad_id`, `targets` with `-100`. If `max_length` is
# given, keep only the first `max_length` columns (of both).
#
# **Why -100.** `F.cross_entropy(logits, targets)` skips every position whose target equals its `ignore_index`,
# which is `-100` by default: those positions add nothing to the loss *and are not counted in the mean*. With $R$
# the set of answer positions,
#
# $$\mathcal{L} = -\frac{1}{|R|} \sum_{j \in R} \log p_\theta\left(\texttt{targets}_j \mid \texttt{inputs}_{\le j}\right),$$
#
# so `calc_loss_batch` from notebook 12 needs no change at all.
#
# Write `collate_instructions(batch, pad_id, ignore_index=-100, max_length=None)`: `batch` is a list of
# `(prompt_ids, response_ids)` pairs (lists of ints); return `(inputs, targets)`, two `torch.long` tensors of shape
# `(len(batch), L)`.

# %% id="c011" nbgrader={"grade": false, "grade_id": "collate_instructions_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def collate_instructions(batch, pad_id, ignore_index=-100, max_length=None):
    """(prompt_ids, response_ids) pairs -> inputs, targets (batch, L); targets -100 on prompt tokens and padding."""
    ### BEGIN SOLUTION
    seqs = [list(prompt) + list(response) for prompt, response in batch]
    length = max(len(s) for s in seqs) - 1
    if max_length is not None:
        length = min(length, max_length)
    inputs = torch.full((len(batch), length), pad_id, dtype=torch.long)
    targets = torch.full((len(batch), length), ignore_index, dtype=torch.long)
    for row, ((prompt, _), s) in enumerate(zip(batch, seqs)):
        x = s[:-1][:length]
        y = s[1:][:length]
        for j in range(min(len(prompt) - 1, len(y))):  # targets that are prompt tokens
            y[j] = ignore_index
        inputs[row, : len(x)] = torch.tensor(x, dtype=torch.long)
        targets[row, : len(y)] = torch.tensor(y, dtype=torch.long)
    return inputs, targets
    ### END SOLUTION


# %% id="c012"
inputs, targets = collate_instructions([([11, 12, 13], [21, 22, 99]), ([14, 15], [23, 99])], pad_id=99)
print("inputs\n", inputs)
print("targets\n", targets)

# %% id="c013" nbgrader={"grade": true, "grade_id": "test_collate_instructions_visible", "locked": true, "points": 8, "schema_version": 3, "solution": false, "task": false}
# Self-check: `collate_instructions` (shifts, prompt masking, padding, max_length) (8 points).
from gptedu.grading import check

check("collate_instructions", globals())

# %% id="c014" nbgrader={"grade": true, "grade_id": "test_collate_instructions_hidden", "locked": true, "points": 7, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: cases you have not seen (7 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("collate_instructions", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="c015"
# ## A pretrained model
#
# Fine-tuning starts from a model that already knows the language. We pretrain a small GPT-2 on TinyShakespeare
# exactly as in notebook 12: a byte-level BPE tokenizer trained on the corpus (notebook 11; its `<|endoftext|>` is
# the last id), the whole corpus as one stream of tokens, and notebook 12's training loop (`gptedu.gpt2.train_simple`
# is the same loop). Under the autograder and with `GPTEDU_QUICK=1` this takes seconds (a tiny model, 40 steps);
# the full run is 500 steps, and the cell prints how long they took. The output head is tied to the token
# embedding (notebook 10), which keeps the small model smaller.

# %% id="c016"
corpus = text[:100_000] if QUICK else text
tokenizer = BPETokenizer.train(corpus, vocab_size=256 + (300 if QUICK else 700) + 1)
eos_id = tokenizer.eos_id
ids = tokenizer.encode(corpus)
cfg = {"vocab_size": tokenizer.vocab_size, "context_len": 128, "emb_dim": 64 if QUICK else 96, "n_heads": 4,
       "n_layers": 2 if QUICK else 3, "drop_rate": 0.0, "qkv_bias": False, "tie_weights": True}
torch.manual_seed(0)
model = GPTModel(cfg)
pretrain_loader = create_dataloader(ids, batch_size=8, max_length=64,
                                    generator=torch.Generator().manual_seed(0))
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3 if QUICK else 5e-4, weight_decay=0.1)
start = time.perf_counter()
pre_steps = 40 if QUICK else 500
train_losses, _, _ = train_simple(model, pretrain_loader, pretrain_loader, optimizer, "cpu", num_epochs=1,
                                  eval_freq=pre_steps, eval_iter=2, max_steps=pre_steps)
print(f"pretrained {pre_steps} steps on {len(ids):,} tokens in {time.perf_counter() - start:.0f} s; "
      f"vocabulary {tokenizer.vocab_size}, {sum(p.numel() for p in model.parameters()):,} parameters")

# %% [markdown] id="c017"
# ## The loss sees only the answer
#
# Check the claim of the formula on a real batch: the loss with masked targets equals the cross-entropy computed by
# hand over the answer positions alone, and it differs from the loss over every position.

# %% id="c018"
pairs = [(tokenizer.encode(format_prompt(e)), tokenizer.encode(e["output"]) + [eos_id]) for e in train_examples]
val_pairs = [(tokenizer.encode(format_prompt(e)), tokenizer.encode(e["output"]) + [eos_id]) for e in val_examples]
inputs, targets = collate_instructions(pairs[:4], pad_id=eos_id, max_length=cfg["context_len"])
model.eval()
with torch.no_grad():
    logits = model(inputs)
masked = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
keep = targets != -100
by_hand = -torch.log_softmax(logits[keep], dim=-1).gather(1, targets[keep][:, None]).mean()
_, unmasked_targets = collate_instructions([([], p + r) for p, r in pairs[:4]], pad_id=eos_id,
                                           max_length=cfg["context_len"])  # nothing masked but the padding
everything = F.cross_entropy(logits.flatten(0, 1), unmasked_targets.flatten())
print(f"batch {tuple(inputs.shape)}: {int(keep.sum())} answer tokens out of {inputs.numel()} positions")
print(f"masked loss {masked:.4f} = by hand over the answer tokens {by_hand:.4f}; loss over every token {everything:.4f}")


# %% [markdown] id="c019"
# ## Before fine-tuning
#
# `answer(model, entry)` gives the model the prompt and lets it continue greedily (notebook 12's `gen_text`) until it
# produces `<|endoftext|>` or 30 tokens. The pretrained model has never seen the template: it continues with
# Shakespeare-like text (or, after very little pretraining, with blank lines), and it does not know when to stop.

# %% id="c020"
def answer(model, entry, max_new_tokens=30):
    prompt = torch.tensor([tokenizer.encode(format_prompt(entry))])
    out = gen_text(model.eval(), prompt, max_new_tokens, cfg["context_len"], eos_id=eos_id)
    return tokenizer.decode(out[0, prompt.size(1):].tolist())


kinds = ["Translate to modern English.", "What does this word mean?", "Who speaks this line?",
         "Continue this speech."]
probes = [next((e for e in val_examples if e["instruction"] == kind), None) for kind in kinds]
probes = [e for e in probes if e is not None] or val_examples[:4]
before = {i: answer(model, e) for i, e in enumerate(probes)}
for i, e in enumerate(probes):
    print(f"{e['instruction']} | {e['input']!r}\n    before: {before[i]!r}")


# %% [markdown] id="c021"
# ## Fine-tuning
#
# The loop is the pretraining loop (zero the gradients, `calc_loss_batch`, backward, step); only the batches change.
# The `DataLoader` calls **your** `collate_instructions` to build each batch. The learning rate is lower than in
# pretraining: we adjust the model, we do not retrain it.

# %% id="c022"
def collate(batch):
    return collate_instructions(batch, pad_id=eos_id, max_length=cfg["context_len"])


train_loader = DataLoader(pairs, batch_size=8, shuffle=True, collate_fn=collate,
                          generator=torch.Generator().manual_seed(0))
val_loader = DataLoader(val_pairs, batch_size=8, shuffle=False, collate_fn=collate)
ft_steps = 30 if QUICK else 250
optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.1)
start = time.perf_counter()
history = finetune(model, train_loader, optimizer, "cpu", num_steps=ft_steps, val_loader=val_loader,
                   eval_every=max(ft_steps // 6, 1), eval_iter=2 if QUICK else 10)
print(f"{ft_steps} fine-tuning steps in {time.perf_counter() - start:.0f} s")
plt.figure(figsize=(6, 3))
plt.plot(history["step"], history["train_loss"], alpha=0.6, label="training batches")
plt.plot(history["val_step"], history["val_loss"], "o-", label="held-out examples")
plt.xlabel("step")
plt.ylabel("loss on answer tokens")
plt.title("Instruction fine-tuning")
plt.legend()
plt.show()

# %% [markdown] id="c023"
# ## After fine-tuning
#
# The same prompts, the same greedy decoding. After the full run (not the autograder's few steps), read the answers
# for their *form* first: they start right after `### Response:`, are short, and end with `<|endoftext|>` instead of
# running on. Then for their content: a model this small, fine-tuned for a few hundred steps, gets some right and
# guesses others
# (a plausible speaker name, a few words of modern English). The held-out loss on the answer tokens is the honest
# measure; after a few quick steps it has only begun to fall.

# %% id="c024"
for i, e in enumerate(probes):
    print(f"{e['instruction']} | {e['input']!r}")
    print(f"    before:   {before[i]!r}")
    print(f"    after:    {answer(model, e)!r}")
    print(f"    expected: {e['output']!r}")
print(f"held-out answer loss: {history['val_loss'][0]:.3f} (step {history['val_step'][0]}) -> "
      f"{history['val_loss'][-1]:.3f} (step {history['val_step'][-1]})")

# %% [markdown] id="c025"
# ## What you built, and where to go next
#
# * The template and the `### Response:` cue turn "continue this text" into "answer this request" without changing
#   the model or the loss.
# * Masking the prompt with `-100` spends the whole gradient on the answer; the end-of-text token in the target
#   teaches the model to stop.
# * The same recipe scales: load OpenAI's GPT-2 weights with `gptedu.gpt2.hf.load_hf_gpt2` (a checkpoint you
#   already have), use its tokenizer (`load_gpt2_tokenizer`), and fine-tune on a larger instruction set; on a small GPU a few
#   thousand examples give a model that follows simple requests. Parameter-efficient methods (e.g. LoRA, which trains
#   small low-rank updates instead of every weight) make that affordable for the larger sizes.
# * Judging answers is harder than computing a loss: larger projects compare answers with references by hand or with
#   a stronger model.
#
# This is the end of the series: from a character-level GPT of Shakespeare, built one module at a time, to a GPT-2
# you pretrained, sampled from quickly with a KV cache, and taught to answer requests.
