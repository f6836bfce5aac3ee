# %% [markdown] id="c00"
# # 08 · Training
#
# *Part 1 of "Building a GPT from scratch" (assignment `gpt_from_scratch`, notebooks 01–09).*
#
# **Points in this notebook: 15** (`train` 5 + 5, `evaluate` 3 + 2; self-checks + hidden tests). **Series total: 145 points.**
#
# The model predicts a distribution over the next character at every position; training makes the true
# next character more likely. This notebook writes the training and evaluation loops, then trains a GPT on
# TinyShakespeare for five minutes (on a CPU; a GPU gets further in the same time), plots the loss curves,
# and looks inside the trained model at what its attention heads read.
#
# Under the autograder (and with `GPTEDU_QUICK=1`) the training run is a short, deterministic one with a
# tiny model: the grade depends on the checks only, never on a long run.
#
# How to work: fill in every cell that says `raise NotImplementedError()`, run it, then run the check cell
# below it. A check prints a report; when something is wrong it names the check, the tensor and position, the
# expected and found values, and the most likely cause. The hidden tests run the same checks on sizes you have
# not seen. Earlier steps come from the reference package `gptedu`, so a mistake in one notebook never costs
# points in the next.

# %% id="c01"
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
    requirement = os.environ.get("GPTEDU_PIP") or (where and f"gptedu[plots] @ {where}")
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
import math
import time

import matplotlib.pyplot as plt
from tqdm.auto import tqdm

from gptedu import CharTokenizer, GPTModel, load_tinyshakespeare  # notebooks 01 and 07
from gptedu.data import get_batch, split_contiguous


# %% [markdown] id="c02"
# ## The loss
#
# For logits $z \in \mathbb{R}^{V}$ at one position and the true next character $y$, the cross-entropy loss is
# $-\log \text{softmax}(z)_y$, in nats. A model that knows nothing spreads its bets evenly and scores
# $\ln V = \ln 65 \approx 4.17$ (notebook 07 measured an untrained one); every nat below that is learned.
#
# ## Exercise 1: `train` (10 points)
#
# `train(model, dataloader, criterion, optimizer, device)` makes one pass over `dataloader` (batches
# `(src, tgt)` of token ids, both `(batch, seq)`), with one optimizer step per batch, and returns the **mean** of
# the batch losses as a Python float. It is the loop every PyTorch model trains with; three things to work out:
#
# * `criterion` is an `nn.CrossEntropyLoss`: it takes logits `(N, C)` and targets `(N,)`, and your model gives
#   `(batch, seq, vocab_size)`. What are $N$ and $C$ here, and how do you reshape logits and targets so that
#   every position of every window counts as one prediction?
# * A step is: forward, loss, backward, update. PyTorch *adds* each backward's gradients to the ones already
#   there. What must happen in every step so that it follows its own batch only?
# * The model goes into training mode first (dropout, which later models have, depends on it), and each batch
#   goes to `device`. Keep the running total with `loss.item()`: a float, not a tensor that holds the graph.
#
# ## Exercise 2: `evaluate` (5 points)
#
# `evaluate(model, dataloader, criterion, device)`: the mean loss over `dataloader`, computed as in `train`,
# but leaving the model's weights exactly as they were. Which mode, and which context manager, make it cheaper
# and safe?

# %% id="c03" nbgrader={"grade": false, "grade_id": "loop_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def train(model, dataloader, criterion, optimizer, device) -> float:
    """One pass over dataloader; returns the mean loss of its batches."""
    ### BEGIN SOLUTION
    model.train()
    total, batches = 0.0, 0
    for src, tgt in dataloader:
        src, tgt = src.to(device), tgt.to(device)
        optimizer.zero_grad()
        logits = model(src)  # (batch, seq, vocab)
        loss = criterion(logits.reshape(-1, logits.size(-1)), tgt.reshape(-1))
        loss.backward()
        optimizer.step()
        total += loss.item()
        batches += 1
    return total / batches
    ### END SOLUTION


def evaluate(model, dataloader, criterion, device) -> float:
    """Mean loss over dataloader, without training."""
    ### BEGIN SOLUTION
    model.eval()
    total, batches = 0.0, 0
    with torch.no_grad():
        for src, tgt in dataloader:
            src, tgt = src.to(device), tgt.to(device)
            logits = model(src)
            total += criterion(logits.reshape(-1, logits.size(-1)), tgt.reshape(-1)).item()
            batches += 1
    return total / batches
    ### END SOLUTION


# %% id="c04" nbgrader={"grade": true, "grade_id": "test_train_visible", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Self-check: `train` (mean loss, updated weights, training mode) against the reference (5 points).
from gptedu.grading import check

check("train", globals())

# %% id="c05" nbgrader={"grade": true, "grade_id": "test_train_hidden", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds, and no shortcuts (5 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("train", globals(), hidden=True)
### END HIDDEN TESTS

# %% id="c06" nbgrader={"grade": true, "grade_id": "test_evaluate_visible", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Self-check: `evaluate` (mean loss, eval mode, no gradients, weights untouched) against the reference (3 points).
from gptedu.grading import check

check("evaluate", globals())

# %% id="c07" nbgrader={"grade": true, "grade_id": "test_evaluate_hidden", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds, and no shortcuts (2 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("evaluate", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="c08"
# ## Your loop at work
#
# A classic plan, ten epochs over *every* overlapping window of 100 characters in batches of 64, is the number
# of steps the cell prints first: hours on a CPU. Here an "epoch" is a fixed number of steps on windows sampled
# at random (`get_batch`, notebook 01), and validation uses a fixed set of windows from the held-out tail of
# the text. A small model and three short epochs are enough to see your `train` and `evaluate` work: the loss
# falls from about $\ln 65 \approx 4.17$.

# %% id="c09"
device = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
text = load_tinyshakespeare()
tokenizer = CharTokenizer.from_text(text)
data = torch.tensor(tokenizer.encode(text), dtype=torch.long)
train_data, val_data = split_contiguous(data, 0.9)
print(f"ten epochs over every 100-character window, batches of 64: {10 * (len(train_data) - 100) // 64:,} steps")

if QUICK:  # autograder / tests: a tiny, deterministic run
    config = dict(d_model=32, num_heads=2, d_ff=64, context_len=32, num_layers=1)
    epochs, steps_per_epoch, batch_size = 3, 10, 16
else:
    config = dict(d_model=64, num_heads=4, d_ff=256, context_len=64, num_layers=2)
    epochs, steps_per_epoch, batch_size = 3, 60, 32

torch.manual_seed(0)
model = GPTModel(tokenizer.vocab_size, **config).to(device)
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
criterion = nn.CrossEntropyLoss()
batch_gen = torch.Generator().manual_seed(0)
val_batches = [get_batch(val_data, 32, config["context_len"], torch.Generator().manual_seed(i)) for i in range(4)]

def random_batches(steps):
    # `steps` batches of random training windows, drawn one at a time (a "dataloader" for train())
    for _ in range(steps):
        yield get_batch(train_data, batch_size, config["context_len"], batch_gen)

losses = [evaluate(model, val_batches, criterion, device)]
print(f"before training: val {losses[0]:.3f}")
for epoch in range(1, epochs + 1):
    bar = tqdm(random_batches(steps_per_epoch), total=steps_per_epoch, desc=f"epoch {epoch}", leave=False,
               disable=QUICK)
    train_loss = train(model, bar, criterion, optimizer, device)
    losses.append(evaluate(model, val_batches, criterion, device))
    print(f"epoch {epoch}: train {train_loss:.3f}  val {losses[-1]:.3f}")
assert losses[-1] < losses[0], "the validation loss did not go down: check train()"

# %% [markdown] id="c10"
# ## The real run
#
# For a model that writes recognisable Shakespeare we hand over to `gptedu`'s step-based `Trainer`. At its
# core it is your loop — batch, forward, cross-entropy, backward, step — plus what longer runs need: a
# learning-rate warm-up and decay, gradient clipping, periodic train/validation estimates on fixed
# batches, a progress bar, a time limit and checkpoints. The recipe follows nanoGPT's character-level
# Shakespeare run (Karpathy), sized for a CPU. Its `"default"` preset (the cell prints its configuration and
# parameter count; its fused attention computes the same function as your modules, with the same weights)
# trains for a fixed budget of time, on a GPU when there is one. How far it gets therefore depends on the
# machine: the cell prints the machine, the model that trained, the steps it managed and the final train and
# validation estimates (`benchmarks/README.md` records the figures of a quiet 2-core machine: about 2,000 steps
# of 32 windows). Before the first step the trainer times a few forward passes and fits the plan to what the
# budget buys here: on a machine too slow for the preset's 4 layers x 128 it trains smaller batches, or a model
# half as wide and half as deep, and prints why (a model that sees the text several times beats a larger one
# that sees a fraction of it). The run saved in `solutions/` shared its 2 CPU cores with other jobs: read its
# printout for what that machine managed. Under the autograder a tiny preset runs for a few steps instead.

# %% id="c11"
import dataclasses

from gptedu.trainer import Trainer, presets

preset = "tiny" if QUICK else "default"
model_config, train_config = presets()[preset]
if QUICK:
    train_config = dataclasses.replace(train_config, max_steps=20, eval_interval=10, eval_batches=2,
                                       progress=False, num_threads=1)
else:
    train_config = dataclasses.replace(train_config, out_dir="runs/notebook08")  # checkpoint for notebook 09
trainer = Trainer(train_config, model_config, text=text)
threads = torch.get_num_threads()
print(f"preset {preset!r} on {trainer.device} ({os.cpu_count()} CPU cores, {threads} thread{'s' * (threads > 1)})")
start = time.perf_counter()
history = trainer.train()
print(f"trained {trainer.model_config}: {sum(p.numel() for p in trainer.model.parameters()):,} parameters, "
      f"batches of {trainer.config.batch_size}")
print(f"{trainer.step} steps in {time.perf_counter() - start:.0f} s; "
      f"final estimate: train {history['train_loss'][-1]:.3f}, val {history['val_loss'][-1]:.3f}")

# %% [markdown] id="c12"
# ## Loss curves
#
# The per-step training loss is noisy (each step sees one batch of random windows); the estimates on fixed
# batches are smooth. Look at the last estimates printed above: after a full run the validation loss ends above
# the training loss (the few steps under `GPTEDU_QUICK=1` are too short to show it). Two things open that gap. The held-out tail of the corpus is other text (other plays, other speakers)
# than the training head, so it is harder from the start; and with every pass over the training text the model
# memorises a little of it. The cell prints the gap early and at the end, and whether the validation loss was
# still falling: a gap that grows while the validation loss stalls is overfitting, the moment to stop or to
# add data or regularisation.

# %% id="c13"
fig, ax = plt.subplots(figsize=(8, 3.8))
ax.plot(history["step"], history["loss"], color="lightgray", lw=0.8, label="training loss (each step)")
ax.plot(history["eval_step"], history["train_loss"], "o-", label="train (estimate)")
ax.plot(history["eval_step"], history["val_loss"], "s-", label="validation (estimate)")
ax.axhline(math.log(tokenizer.vocab_size), color="grey", ls=":", label="ln 65 (uniform guess)")
ax.set_xlabel("step")
ax.set_ylabel("cross-entropy (nats)")
ax.set_ylim(1.0, 4.6)
ax.legend()
plt.show()
gaps = [v - t for t, v in zip(history["train_loss"], history["val_loss"])]
steps = history["eval_step"]
print(f"validation - training: {gaps[1]:+.3f} at step {steps[1]}, {gaps[-1]:+.3f} at step {steps[-1]}; "
      f"validation still falling at the end: {history['val_loss'][-1] < history['val_loss'][-2]}")

# %% [markdown] id="c14"
# ## What it writes
#
# A sample at temperature 0.8 (notebook 09 looks at sampling closely):

# %% id="c15"
print(trainer.sample("ROMEO:\n", max_new_tokens=100 if QUICK else 500, temperature=0.8, seed=1))

# %% [markdown] id="h13e"
# ## What the heads look at
#
# Notebook 03 drew the weights of an untrained head: no pattern worth a name. Here is every head of the model
# you just trained, loaded back from the checkpoint the trainer saved (`runs/notebook08/ckpt.pt`; under the
# autograder and with `GPTEDU_QUICK=1`, the tiny model in memory, 1 layer of 2 heads after 20 steps, which has
# not learned much to show). One panel per head, one row per layer, the prompt's characters on both axes: row =
# the character attending (the query), column = the character it reads from (the key); `␣` is a space, `\n`
# a newline. `gptedu.plots.plot_attention_heads` draws the same picture for any checkpoint.

# %% id="h13f"
import itertools

from gptedu.checkpoint import load_for_generation
from gptedu.plots import attention_maps, plot_attention_heads

checkpoint = os.path.join(train_config.out_dir, "ckpt.pt") if train_config.out_dir else None
if checkpoint and os.path.exists(checkpoint):
    trained, trained_tokenizer = load_for_generation(checkpoint)
else:
    trained, trained_tokenizer = trainer.model, trainer.tokenizer
prompt = "JULIET:\nO Romeo, Romeo!\n\nROMEO:\nI take thee"[: trained.context_len]
plot_attention_heads(trained, prompt, trained_tokenizer)

# %% [markdown] id="h13g"
# Sixteen panels are hard to read by eye, and one prompt is a small sample. The next cell measures instead:
# on 20 windows of held-out text, for each head and each position, it finds the position the head attends to
# most, and counts how often that is the character itself, the one before it, the one two before, the start
# of the current word (the space before it) or the start of the current line (the newline before it), those
# two only when they are further back than two characters. It prints, for each head, the most frequent.

# %% id="h13h"
val_text = tokenizer.decode(val_data[:25_000])
windows = [val_text[i : i + trained.context_len] for i in range(0, 20 * 1000, 1000)]
kinds = ["itself", "the previous character", "two characters back", "the start of the word",
         "the start of the line", "elsewhere"]
num_layers, num_heads = len(trained.decoder.layers), len(trained.decoder.layers[0].attn.heads)
counts = torch.zeros(num_layers, num_heads, len(kinds))
for window in windows:
    strongest = attention_maps(trained, trained_tokenizer, window).argmax(-1)[..., 3:]  # (layers, heads, seq-3)
    t = torch.arange(3, len(window))
    space = torch.tensor([window.rfind(" ", 0, i) for i in t.tolist()])
    newline = torch.tensor([window.rfind("\n", 0, i) for i in t.tolist()])
    word_start = torch.where((space > newline) & (space < t - 2), space, -9)  # -9: never an attended position
    line_start = torch.where((newline >= 0) & (newline < t - 2), newline, -9)
    targets = torch.stack([t, t - 1, t - 2, word_start, line_start])  # (5, seq-3)
    hits = strongest == targets[:, None, None, :]  # (5, layers, heads, seq-3)
    counts[..., :5] += hits.sum(-1).permute(1, 2, 0)
    counts[..., 5] += (~hits.any(0)).sum(-1)
shares = counts / counts.sum(-1, keepdim=True)
for layer, head in itertools.product(range(num_layers), range(num_heads)):
    order = shares[layer, head].argsort(descending=True)[:2].tolist()
    print(f"layer {layer}, head {head}: " + ", then ".join(f"{kinds[k]} ({shares[layer, head, k]:.0%})" for k in order))

# %% [markdown] id="h13i"
# ### Reading the result
#
# The picture and the numbers above come from your run. Here is what we saw in ours: models of the default
# preset trained for 300 to 850 steps on a 2-core CPU shared with other jobs (`benchmarks/README.md` records how
# many steps a quiet machine gets in the five minutes).
#
# * In the first layer, of the targets the cell names, the character just before is the one every head picks
#   most often (a third to a half of the positions), then the character itself or the one two back: these heads gather the last few letters,
#   the context a trigram model would use. In the grid, that is the bright band along the diagonal.
# * A head in a higher layer reads the start of the current line, the newline where the line (after a
#   speaker's name, the speech) began, wherever it is: at a quarter to a half of the positions in our runs. It
#   tells the layers above where in the line the text stands; in the grid it is a vertical stripe shared by the
#   characters of a line.
# * Many heads, above all in the higher layers, spread their weight in ways these labels do not name
#   ("elsewhere").
#
# Which head takes which role changes from run to run, and a longer run sharpens the patterns. With
# `GPTEDU_QUICK=1` the tiny model (1 layer of 2 heads, 20 steps) shows none of this yet.

# %% [markdown] id="c16"
# **Next:** notebook 09 explores how to sample: temperature, top-k, greedy decoding.
