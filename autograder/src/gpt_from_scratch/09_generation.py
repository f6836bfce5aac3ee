# %% [markdown] id="c00"
# # 09 · Generation: temperature, top-k, greedy
#
# *Part 1 of "Building a GPT from scratch" (assignment `gpt_from_scratch`, notebooks 01–09).*
#
# **Points in this notebook: 15** (`top_k_filter` 3 + 2, `sample_next_token` 5 + 5; self-checks + hidden tests). **Series total: 145 points.**
#
# A trained model gives, at each step, a probability for every next character. *How* we pick from it
# changes the text a lot: always the most likely character (greedy) loops; sampling from the raw
# distribution wanders; temperature and top-k sit in between. This notebook writes the sampler and uses it
# with the model trained in notebook 08.
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
import os.path

import matplotlib.pyplot as plt

import dataclasses

from gptedu.trainer import Trainer, load_for_generation, presets

# %% [markdown] id="c02"
# ## A trained model
#
# Notebook 08 saved its model in `runs/notebook08/ckpt.pt`. When that file is not here (or under the
# autograder), this cell trains a small model for a short while instead.

# %% id="c03"
checkpoint = "runs/notebook08/ckpt.pt"
if os.path.exists(checkpoint) and not QUICK:
    model, tokenizer = load_for_generation(checkpoint)
    print(f"loaded the model of notebook 08 ({sum(p.numel() for p in model.parameters()):,} parameters)")
else:
    preset = "tiny" if QUICK else "default"
    model_config, train_config = presets()[preset]
    train_config = dataclasses.replace(train_config, max_steps=20 if QUICK else 400, progress=False,
                                       log_evals=False, eval_interval=0, eval_batches=2)
    trainer = Trainer(train_config, model_config)
    history = trainer.train()
    model, tokenizer = trainer.model, trainer.tokenizer
    print(f"trained a model for {trainer.step} steps (val loss {history['val_loss'][-1]:.2f})")
model = model.cpu().eval()

# %% [markdown] id="c04"
# ## Temperature
#
# Dividing the logits $z$ by a temperature $T > 0$ before the softmax,
#
# $$p_i(T) = \frac{e^{z_i / T}}{\sum_j e^{z_j / T}},$$
#
# keeps the order of the characters but reshapes the distribution: $T < 1$ sharpens it (as $T \to 0$ all the
# mass goes to the argmax: **greedy** decoding), $T > 1$ flattens it (as $T \to \infty$ it becomes uniform).
# Dividing the *probabilities* by $T$ after the softmax would do nothing: sampling renormalises them.
# Here is the model's distribution for the character after a prompt, at three temperatures:

# %% id="c05"
from gptedu.plots import visible

prompt = "ROMEO:\nWhat say"
with torch.no_grad():
    logits = model(torch.tensor([tokenizer.encode(prompt)]))[0, -1]
top = torch.argsort(logits, descending=True)[:12]
labels = [visible(tokenizer.decode([int(i)])) for i in top]  # a space shows as ␣, a newline as \n
fig, ax = plt.subplots(figsize=(9, 3.5))
width = 0.27
for k, temperature in enumerate((0.5, 1.0, 2.0)):
    probs = torch.softmax(logits / temperature, dim=-1)[top]
    ax.bar(torch.arange(12) + (k - 1) * width, probs, width, label=f"T = {temperature}")
ax.set_xticks(range(12), labels)
ax.set_ylabel("probability")
ax.set_title(f"next character after {prompt!r}")
ax.legend()
plt.show()


# %% [markdown] id="c06"
# ## Top-k
#
# Even at a sensible temperature, the long tail of unlikely characters gets picked now and then, and one bad
# character can derail a word. **Top-k** sampling (Fan et al. 2018, "Hierarchical Neural Story Generation")
# keeps only the $k$ most likely candidates: their logits stay, every
# other logit becomes $-\infty$ (probability exactly 0 after the softmax).
#
# ### Exercise 1: `top_k_filter` (5 points)
#
# `top_k_filter(logits, k)`: `logits` of shape `(batch, vocab)`; return a new tensor of the same shape where
# the `k` largest logits of **each row** are unchanged and every other entry is `-inf`. Keep every logit equal
# to the `k`-th largest (ties stay), and treat `k >= vocab` as "keep everything". `torch.topk` helps.

# %% id="c07" nbgrader={"grade": false, "grade_id": "top_k_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits of each row, -inf elsewhere: (batch, vocab) -> (batch, vocab)."""
    ### BEGIN SOLUTION
    k = min(k, logits.size(-1))
    kth_largest = torch.topk(logits, k, dim=-1).values[:, -1:]  # (batch, 1)
    return logits.masked_fill(logits < kth_largest, float("-inf"))
    ### END SOLUTION


# %% id="c08" nbgrader={"grade": true, "grade_id": "test_top_k_filter_visible", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Self-check: `top_k_filter` against the reference (3 points).
from gptedu.grading import check

check("top_k_filter", globals())

# %% id="c09" nbgrader={"grade": true, "grade_id": "test_top_k_filter_hidden", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds, and no shortcuts (2 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("top_k_filter", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="c10"
# ### Exercise 2: `sample_next_token` (10 points)
#
# `sample_next_token(logits, temperature=1.0, top_k=None, generator=None)`: `logits` of shape `(batch, vocab)`
# → one token id per row, shape `(batch, 1)`, `torch.long`:
#
# * `temperature == 0` means greedy: return `logits.argmax(dim=-1, keepdim=True)` (no division by zero);
# * otherwise divide the logits by the temperature, apply `top_k_filter` when `top_k` is given, take the
#   softmax and sample with `torch.multinomial(probs, num_samples=1, generator=generator)`.
#
# The checks draw thousands of samples and compare their frequencies with the distribution they should
# follow, so any correct sampling code passes; a generator with another seed must give other samples.

# %% id="c11" nbgrader={"grade": false, "grade_id": "sample_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def sample_next_token(logits: torch.Tensor, temperature: float = 1.0, top_k=None, generator=None) -> torch.Tensor:
    """One token id per row of logits (batch, vocab) -> (batch, 1)."""
    ### BEGIN SOLUTION
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)
    ### END SOLUTION


# %% id="c12" nbgrader={"grade": true, "grade_id": "test_sample_next_token_visible", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Self-check: `sample_next_token` (greedy, temperature, top-k, generator) against the reference (5 points).
from gptedu.grading import check

check("sample_next_token", globals())

# %% id="c13" nbgrader={"grade": true, "grade_id": "test_sample_next_token_hidden", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds, and no shortcuts (5 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("sample_next_token", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="c14"
# ## The generation loop, with an end-of-sequence token
#
# `generate` below uses your sampler. It crops the context to the model's `context_len` at every step (the
# model has no positional code beyond it), and stops a row once it produces `eos_id` — here the newline
# character, so each call writes one line. A fixed `torch.Generator` makes every sample reproducible.

# %% id="c15"
@torch.no_grad()
def generate(model, prompt: str, max_new_tokens: int = 200, temperature: float = 1.0, top_k=None,
             eos: str | None = None, seed: int = 0) -> str:
    generator = torch.Generator().manual_seed(seed)
    idx = torch.tensor([tokenizer.encode(prompt)])
    eos_id = tokenizer.s2i[eos] if eos is not None else None
    for _ in range(max_new_tokens):
        logits = model(idx[:, -model.context_len :])[:, -1, :]
        next_token = sample_next_token(logits, temperature, top_k, generator)
        idx = torch.cat([idx, next_token], dim=1)
        if eos_id is not None and next_token.item() == eos_id:
            break
    return tokenizer.decode(idx[0])

n = 60 if QUICK else 200
for temperature, top_k in ((0.0, None), (0.8, None), (0.8, 5), (1.5, None)):
    print(f"--- temperature {temperature}, top_k {top_k}")
    print(generate(model, "ROMEO:\n", n, temperature, top_k))
print("--- one line only (eos = newline):")
print(generate(model, "JULIET:\n", n, 0.8, None, eos="\n", seed=3) + "<eos>")

# %% [markdown] id="c16"
# What to look for in the samples above (they come from your model; under `GPTEDU_QUICK=1` it is barely
# trained and every sample is noise): greedy decoding tends to fall into a loop of frequent phrases, since the
# most likely continuation of a loop is the loop; temperature 1.5 invents words and punctuation; temperature
# around 0.8, with or without a small top-k, usually gives the most play-like text. That is the end of part 1:
# you built, trained and sampled a GPT from scratch.
