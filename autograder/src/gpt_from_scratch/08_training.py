# %% [markdown] id="c00"
# # 08 · Training
#
# *Part 1 of "Building a GPT from scratch" (assignment `gpt_from_scratch`, notebooks 01–09).*
#
# **Points in this notebook: 15** (`train` 5 + 5, `evaluate` 3 + 2; self-checks + hidden tests). **Series total: 145 points.**
#
# The model predicts a distribution over the next character at every position; training makes the true
# next character more likely. This notebook writes the training and evaluation loops, then trains a GPT on
# TinyShakespeare — a few minutes on a laptop CPU (faster on a GPU) — and plots the loss curves.
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
    requirement = os.environ.get("GPTEDU_PIP") or (where and f"gptedu @ {where}")
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
# $-\log \text{softmax}(z)_y$. `nn.CrossEntropyLoss` takes logits of shape `(N, V)` and targets `(N,)`, so
# flatten batch and sequence: `logits.reshape(-1, V)`, `targets.reshape(-1)`. A model that knows nothing
# spreads its bets evenly and scores $\ln V = \ln 65 \approx 4.17$; every nat below that is learned.
#
# ## Exercise 1: `train` (10 points)
#
# `train(model, dataloader, criterion, optimizer, device)` runs one pass over `dataloader` (batches
# `(src, tgt)` of shape `(batch, seq)`) and returns the **mean** of the batch losses (a float):
#
# 1. `model.train()` (training mode: dropout on, if any);
# 2. for each batch: move `src`, `tgt` to `device`; `optimizer.zero_grad()`; `logits = model(src)`;
#    `loss = criterion(logits.reshape(-1, logits.size(-1)), tgt.reshape(-1))`; `loss.backward()`;
#    `optimizer.step()`; add `loss.item()` to a running total;
# 3. return total / number of batches.
#
# ## Exercise 2: `evaluate` (5 points)
#
# `evaluate(model, dataloader, criterion, device)`: the same loss, but in `model.eval()` mode, under
# `torch.no_grad()`, with no backward pass and no optimizer; returns the mean loss.

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
# Self-check: `train` (mean loss, updated weights, training mode) against the reference with the same weights (5 points).
from gptedu.grading import check

check("train", globals())

# %% id="c05" nbgrader={"grade": true, "grade_id": "test_train_hidden", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds, and no shortcuts (5 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("train", globals(), hidden=True)
### END HIDDEN TESTS

# %% id="c06" nbgrader={"grade": true, "grade_id": "test_evaluate_visible", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Self-check: `evaluate` (mean loss, eval mode, no gradients, weights untouched) against the reference with the same weights (3 points).
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
# The homework's plan — ten epochs over *every* overlapping window — is about 157,000 steps: hours on a
# CPU. Here an "epoch" is a fixed number of steps on windows sampled at random (`get_batch`, notebook 01),
# and validation uses a fixed set of windows from the held-out tail of the text. A small model and three
# short epochs are enough to see your `train` and `evaluate` work: the loss falls from about
# $\ln 65 \approx 4.17$.

# %% id="c09"
device = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
text = load_tinyshakespeare()
tokenizer = CharTokenizer.from_text(text)
data = torch.tensor(tokenizer.encode(text), dtype=torch.long)
train_data, val_data = split_contiguous(data, 0.9)

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
# learning-rate warm-up and cosine decay, gradient clipping, periodic train/validation estimates on fixed
# batches, a progress bar, a time limit and checkpoints. Its `"default"` preset (4 layers, 4 heads, 128
# wide, feed-forward 256 wide, ~0.55 M parameters, fused attention with the same weights as your modules)
# is sized to reach a validation loss of 1.55 or lower in five minutes on a 2-core laptop CPU; `max_time`
# stops it at five minutes on a slower machine, and it uses a GPU when there is one. Under the autograder a
# tiny preset runs for a few steps instead.

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
print(f"preset {preset!r}: {model_config}")
print(f"{sum(p.numel() for p in trainer.model.parameters()):,} parameters on {trainer.device}")
start = time.perf_counter()
history = trainer.train()
print(f"{trainer.step} steps in {time.perf_counter() - start:.0f} s; "
      f"final estimate: train {history['train_loss'][-1]:.3f}, val {history['val_loss'][-1]:.3f}")

# %% [markdown] id="c12"
# ## Loss curves
#
# The per-step training loss is noisy (each step sees 8 to 32 random windows); the estimates on fixed
# batches are smooth. The validation loss stays close to the training loss: with a contiguous split and
# five minutes of training there is little overfitting.

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

# %% [markdown] id="c14"
# ## What it writes
#
# A sample at temperature 0.8 (notebook 09 looks at sampling closely):

# %% id="c15"
print(trainer.sample("ROMEO:\n", max_new_tokens=100 if QUICK else 500, temperature=0.8, seed=1))

# %% [markdown] id="c16"
# **Next:** notebook 09 explores how to sample: temperature, top-k, greedy decoding.
