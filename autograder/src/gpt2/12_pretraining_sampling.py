# %% [markdown] id="3568329f"
# # 12 · Pretraining and sampling
#
# *Part 2 of "Building a GPT from scratch" (assignment `gpt2`, notebooks 10–14): GPT-2, built and trained.*
#
# **Points in this notebook: 25** (self-checks 14 + hidden tests 11). **Part 2 total: 180 points.**
#
# Notebook 10 built GPT-2 and notebook 11 its tokenizer. Here you write the three functions that turn them into a
# language model you can train and sample from:
#
# 1. `calc_loss_batch`: the cross-entropy of the next-token predictions on one batch (5 points);
# 2. `calc_loss_loader`: its average over a data loader, to follow training and validation loss (5 points);
# 3. `gen_text`: generation with temperature, top-k and an end-of-text id (15 points);
#
# then train a small GPT with BPE tokens on TinyShakespeare, on a CPU, and sample from it.

# %% id="bf5b881f"
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
import math
import time

import matplotlib.pyplot as plt
import torch.nn.functional as F

from gptedu.data import load_tinyshakespeare
from gptedu.gpt2 import BPETokenizer, create_dataloader
from gptedu.gpt2 import GPTModel as GPT2Model  # part 2's GPT-2 (gptedu.GPTModel is part 1's character model)

# %% [markdown] id="249f2a80"
# ## Data: BPE tokens, a contiguous split, windows
#
# A tokenizer with 1,000 merges (notebook 11), the corpus as one long list of token ids, the first 90% for training
# and the last 10% for validation (a contiguous split: random windows would leak validation text into training).
# `create_dataloader` cuts fixed-length windows; the target of each window is the same window shifted by one token.

# %% id="5097ed8d"
text = load_tinyshakespeare()
tokenizer = BPETokenizer.train(text, vocab_size=256 + 1000 + 1)
ids = tokenizer.encode(text)
split = int(0.9 * len(ids))
print(f"{len(text):,} characters -> {len(ids):,} tokens; vocabulary {tokenizer.vocab_size}")

CONTEXT = 64
train_loader = create_dataloader(ids[:split], batch_size=16, max_length=CONTEXT, shuffle=True,
                                 generator=torch.Generator().manual_seed(0))
val_loader = create_dataloader(ids[split:], batch_size=16, max_length=CONTEXT, shuffle=False)
x, y = next(iter(train_loader))
print("inputs", tuple(x.shape), "targets", tuple(y.shape))
print(repr(tokenizer.decode(x[0, :12].tolist())), "->", repr(tokenizer.decode(y[0, :12].tolist())))


# %% [markdown] id="0026252e"
# ## Exercise 1: `calc_loss_batch` (5 points)
#
# The model returns logits `(batch, seq, vocab)`: a prediction of the next token at *every* position. The loss is
# the mean cross-entropy over all `batch × seq` predictions. `F.cross_entropy` wants the logits as `(N, vocab)`
# and the targets as `(N,)`: flatten the first two axes (`logits.flatten(0, 1)`, `targets.flatten()`). Pass the raw
# logits: `cross_entropy` applies the log-softmax itself. Move both batches to `device` first, and return the loss
# tensor (the training loop calls `.backward()` on it).

# %% id="fd761683" nbgrader={"grade": false, "grade_id": "gpt2_calc_loss_batch_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def calc_loss_batch(input_batch, target_batch, model, device):
    """Mean next-token cross-entropy of model on one batch; a scalar tensor."""
    ### BEGIN SOLUTION
    input_batch, target_batch = input_batch.to(device), target_batch.to(device)
    logits = model(input_batch)  # (batch, seq, vocab)
    return F.cross_entropy(logits.flatten(0, 1), target_batch.flatten())
    ### END SOLUTION


# %% id="aeb3e810" nbgrader={"grade": true, "grade_id": "test_gpt2_calc_loss_batch_visible", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Self-check: `calc_loss_batch` against the reference (3 points).
from gptedu.grading import check

check("gpt2_calc_loss_batch", globals())

# %% id="b78dd85c" nbgrader={"grade": true, "grade_id": "test_gpt2_calc_loss_batch_hidden", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds (2 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("gpt2_calc_loss_batch", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="ded60cae"
# ## Exercise 2: `calc_loss_loader` (5 points)
#
# Average `calc_loss_batch(...).item()` over the first `num_batches` batches of `data_loader` (all of them when
# `num_batches` is `None`; never more than `len(data_loader)`). Return `float("nan")` for an empty loader.

# %% id="0e32cf4b" nbgrader={"grade": false, "grade_id": "gpt2_calc_loss_loader_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def calc_loss_loader(data_loader, model, device, num_batches=None):
    """Mean loss over the first num_batches batches of data_loader (a float)."""
    ### BEGIN SOLUTION
    if len(data_loader) == 0:
        return float("nan")
    n = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    total = 0.0
    for i, (input_batch, target_batch) in enumerate(data_loader):
        if i >= n:
            break
        total += calc_loss_batch(input_batch, target_batch, model, device).item()
    return total / n
    ### END SOLUTION


# %% id="55ee0238" nbgrader={"grade": true, "grade_id": "test_gpt2_calc_loss_loader_visible", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Self-check: `calc_loss_loader` against the reference (3 points).
from gptedu.grading import check

check("gpt2_calc_loss_loader", globals())

# %% id="f8431f22" nbgrader={"grade": true, "grade_id": "test_gpt2_calc_loss_loader_hidden", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds (2 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("gpt2_calc_loss_loader", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="68b61d07"
# Before training, a model that knows nothing should spread its probability evenly over the vocabulary: its loss
# is close to $\ln(\text{vocab\_size})$.

# %% id="16921fe3"
cfg = {"vocab_size": tokenizer.vocab_size, "context_len": CONTEXT, "emb_dim": 128, "n_heads": 4, "n_layers": 4,
       "drop_rate": 0.1, "qkv_bias": False, "tie_weights": True}
torch.manual_seed(0)
model = GPT2Model(cfg)
model.eval()
with torch.no_grad():
    print(f"initial val loss {calc_loss_loader(val_loader, model, 'cpu', num_batches=5):.3f}   "
          f"ln(vocab) = {math.log(cfg['vocab_size']):.3f}")


# %% [markdown] id="b2c0aae7"
# ## Exercise 3: `gen_text` (15 points)
#
# `gen_text(model, idx, max_new_tokens, context_size, temperature=0.0, top_k=None, eos_id=None)` appends up to
# `max_new_tokens` tokens to `idx` `(batch, seq)` and returns the longer tensor. At each step:
#
# 1. feed the last `context_size` tokens (`idx[:, -context_size:]`; the model has only `context_size` learned
#    positions) under `torch.no_grad()`, and keep the logits of the last position `(batch, vocab)`;
# 2. **top-k** (if `top_k` is given): set every logit below the k-th largest to `-inf`
#    (`torch.topk(logits, top_k).values[:, -1:]` is the k-th largest of each row);
# 3. **temperature**: `0` means greedy, `logits.argmax(dim=-1, keepdim=True)`; otherwise sample from
#    `softmax(logits / temperature)` with `torch.multinomial(probs, num_samples=1)` — below 1 sharpens the
#    distribution, above 1 flattens it;
# 4. **end of text**: if `eos_id` is given and every row chose `eos_id` (compare the whole `(batch, 1)` tensor),
#    stop *without* appending it;
# 5. append with `torch.cat([idx, idx_next], dim=1)`.

# %% id="91af7a05" nbgrader={"grade": false, "grade_id": "gpt2_gen_text_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def gen_text(model, idx, max_new_tokens, context_size, temperature=0.0, top_k=None, eos_id=None):
    """Generate up to max_new_tokens tokens after idx (batch, seq); returns (batch, seq + generated)."""
    ### BEGIN SOLUTION
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = model(idx[:, -context_size:])[:, -1, :]
        if top_k is not None:
            kth = torch.topk(logits, top_k).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if temperature > 0:
            probs = torch.softmax(logits / temperature, dim=-1)
            idx_next = torch.multinomial(probs, num_samples=1)
        else:
            idx_next = logits.argmax(dim=-1, keepdim=True)
        if eos_id is not None and bool((idx_next == eos_id).all()):
            break
        idx = torch.cat([idx, idx_next], dim=1)
    return idx
    ### END SOLUTION


# %% id="d8ad6bf8" nbgrader={"grade": true, "grade_id": "test_gpt2_gen_text_visible", "locked": true, "points": 8, "schema_version": 3, "solution": false, "task": false}
# Self-check: `gen_text` (greedy, crop, top-k, eos, temperature) against the reference (8 points).
from gptedu.grading import check

check("gpt2_gen_text", globals())

# %% id="ae2836e9" nbgrader={"grade": true, "grade_id": "test_gpt2_gen_text_hidden", "locked": true, "points": 7, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds (7 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("gpt2_gen_text", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="951c65ce"
# ## Training
#
# The loop of notebook 08, written with your functions: for each batch, zero the gradients, compute the loss,
# back-propagate, step; every `eval_freq` steps, estimate the train and validation losses on a few batches (in
# eval mode, without gradients). The optimizer is AdamW (Loshchilov and Hutter 2019) with a weight decay of 0.1,
# the value of GPT-3's recipe (Brown et al. 2020) and of nanoGPT. The full run is 200 steps; the cell prints the
# seconds elapsed at each estimate. In the run saved in `solutions/`, on 2 CPU cores shared with other jobs (load
# average 20 to 40), the 200 steps took 33 minutes and the whole notebook 34; the last 50 steps, once the load
# had dropped, took 56 seconds. Under the autograder (or with `GPTEDU_QUICK=1`) it stops after 10 steps.

# %% id="3885bede"
def evaluate(model, eval_iter=2 if QUICK else 5):
    model.eval()
    with torch.no_grad():
        train_loss = calc_loss_loader(train_loader, model, "cpu", num_batches=eval_iter)
        val_loss = calc_loss_loader(val_loader, model, "cpu", num_batches=eval_iter)
    model.train()
    return train_loss, val_loss


max_steps, eval_freq = (10, 5) if QUICK else (200, 50)
print(f"{max_steps} steps of {len(train_loader)} batches per epoch: {max_steps / len(train_loader):.2f} epochs")
torch.manual_seed(0)
model = GPT2Model(cfg)
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.1)
history, step, start = [], 0, time.perf_counter()
model.train()
while step < max_steps:
    for input_batch, target_batch in train_loader:
        optimizer.zero_grad()
        loss = calc_loss_batch(input_batch, target_batch, model, "cpu")
        loss.backward()
        optimizer.step()
        step += 1
        if step % eval_freq == 0:
            history.append((step, *evaluate(model)))
            print(f"step {step:4d}: train {history[-1][1]:.3f}  val {history[-1][2]:.3f}  "
                  f"({time.perf_counter() - start:.0f} s)")
        if step >= max_steps:
            break

# %% id="93dd3151"
steps, train_losses, val_losses = zip(*history)
plt.figure(figsize=(5, 3))
plt.plot(steps, train_losses, label="train")
plt.plot(steps, val_losses, label="validation")
plt.xlabel("step")
plt.ylabel("cross-entropy")
plt.legend()
plt.title("Training a small BPE GPT on TinyShakespeare")
plt.show()

# %% [markdown] id="e14009d7"
# ## Sampling
#
# After the full 200 steps (about half an epoch, as printed above) the validation loss has come down from about
# $\ln 1257 \approx 7.1$, the uniform guess over the vocabulary, to the last value printed: a start, far from
# trained. Read the samples with that in mind: at this stage expect frequent words, line breaks and name-like
# capitals rather than sentences; raise `max_steps` to go further. Greedy decoding gets stuck in the single most
# likely continuation (often blank lines at this stage); a temperature and a top-k cut give more varied text
# while keeping unlikely tokens out. (`<|endoftext|>` never occurs in TinyShakespeare, so `eos_id` would not stop this model; notebook 14
# uses it.)

# %% id="5eaabcac"
model.eval()
prompt = torch.tensor([tokenizer.encode("ROMEO:")])
for temperature, top_k in [(0.0, None), (0.8, 40), (1.5, None)]:
    torch.manual_seed(1)
    out = gen_text(model, prompt, 40, context_size=CONTEXT, temperature=temperature, top_k=top_k)
    print(f"--- temperature {temperature}, top_k {top_k}")
    print(tokenizer.decode(out[0].tolist()))

# %% [markdown] id="07a26713"
# **Next:** notebook 13 makes generation fast with a KV cache.
