# %% [markdown] id="c00"
# # 03 · One head of masked self-attention
#
# *Part 1 of "Building a GPT from scratch" (assignment `gpt_from_scratch`, notebooks 01–09).*
#
# **Points in this notebook: 20** (self-check 10 + hidden tests 10). **Series total: 145 points.**
#
# A transformer reads a sequence of vectors, one per character. Attention lets every position gather
# information from the positions before it, with weights it computes from the data. In this notebook you
# write **one head** of *causal* (masked) scaled dot-product attention, as defined in the Transformer paper
# (Vaswani et al. 2017, "Attention Is All You Need"): the core of GPT.
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

import matplotlib.pyplot as plt

# %% [markdown] id="c02"
# ## Queries, keys and values
#
# Each position $t$ with input vector $x_t \in \mathbb{R}^{d_\text{model}}$ produces three vectors with three
# learned linear maps (no bias):
#
# * a **query** $q_t = W_Q x_t \in \mathbb{R}^{d_k}$: what this position is looking for;
# * a **key** $k_s = W_K x_s \in \mathbb{R}^{d_k}$: what position $s$ offers;
# * a **value** $v_s = W_V x_s \in \mathbb{R}^{d_v}$: what position $s$ hands over when it is chosen.
#
# The score of position $s$ for position $t$ is the dot product $q_t \cdot k_s$. Stacking all positions,
# with $X$ of shape `(batch, seq, d_model)`:
#
# $$\text{Attention}(X) = \text{softmax}\!\left(\text{mask}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right)\right) V,
# \qquad Q = X W_Q^\top,\; K = X W_K^\top,\; V = X W_V^\top.$$
#
# | tensor | shape |
# |---|---|
# | `x` | `(batch, seq, d_model)` |
# | `q`, `k` | `(batch, seq, d_k)` |
# | `v` | `(batch, seq, d_v)` |
# | scores `q @ k.transpose(-2, -1)` | `(batch, seq, seq)` — row $t$, column $s$ |
# | weights (softmax over the last axis) | `(batch, seq, seq)`, each row sums to 1 |
# | output `weights @ v` | `(batch, seq, d_v)` |

# %% [markdown] id="c03"
# ### Why divide by $\sqrt{d_k}$?
#
# If the entries of $q$ and $k$ are independent with mean 0 and variance 1, their dot product is a sum of
# $d_k$ such products: its variance is $d_k$. Large scores push the softmax into a nearly one-hot corner where
# its gradients vanish. Dividing by $\sqrt{d_k}$ brings the variance back to 1, whatever the head size:

# %% id="c04"
for d_k in (4, 64, 1024):
    q, k = torch.randn(10_000, d_k), torch.randn(10_000, d_k)
    dots = (q * k).sum(-1)
    print(f"d_k={d_k:5d}  std of q.k = {dots.std():6.2f}   std of q.k/sqrt(d_k) = {(dots / math.sqrt(d_k)).std():.2f}")

# %% [markdown] id="c05"
# ### The causal mask
#
# GPT predicts the *next* character, so position $t$ may only look at positions $s \le t$; otherwise it could
# read the answer. Before the softmax we set the scores of every later position to $-\infty$, so their weight
# becomes exactly $0$ and each row still sums to 1. The allowed pairs form a lower-triangular matrix,
# `torch.tril(torch.ones(T, T))`:

# %% id="c06"
T = 6
mask = torch.tril(torch.ones(T, T))
print(mask)
scores = torch.randn(T, T)
print(torch.softmax(scores.masked_fill(mask == 0, float("-inf")), dim=-1).round(decimals=2))


# %% [markdown] id="c07"
# ## Exercise: `Head` (20 points)
#
# Write `Head(d_model, d_k, d_v, context_len=100)`:
#
# * `self.query`, `self.key`: `nn.Linear(d_model, d_k, bias=False)`; `self.value`: `nn.Linear(d_model, d_v, bias=False)`
#   (the checks load known weights by these names);
# * the causal mask: lower-triangular ones of shape `(context_len, context_len)`. Keep it as a buffer,
#   `self.register_buffer("mask", ...)`: it then follows the module to the GPU and is not trained (the checks run
#   on the CPU, where a plain tensor attribute would work too);
# * `attention_weights(x)`: `x` of shape `(batch, seq, d_model)` with `seq <= context_len` → the softmax weights
#   `(batch, seq, seq)`; use the top-left `seq × seq` corner of the mask;
# * `forward(x)` → `(batch, seq, d_v)`.
#
# Write the attention yourself with tensor operations: `F.scaled_dot_product_attention` and
# `nn.MultiheadAttention` are not accepted here.

# %% id="c08" nbgrader={"grade": false, "grade_id": "head_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Head(nn.Module):
    """One head of causal self-attention: (batch, seq, d_model) -> (batch, seq, d_v)."""

    def __init__(self, d_model: int, d_k: int, d_v: int, context_len: int = 100):
        super().__init__()
        ### BEGIN SOLUTION
        self.query = nn.Linear(d_model, d_k, bias=False)
        self.key = nn.Linear(d_model, d_k, bias=False)
        self.value = nn.Linear(d_model, d_v, bias=False)
        self.register_buffer("mask", torch.tril(torch.ones(context_len, context_len)))
        ### END SOLUTION

    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax attention weights (batch, seq, seq); row t is zero after column t."""
        ### BEGIN SOLUTION
        seq = x.size(1)
        q, k = self.query(x), self.key(x)  # (batch, seq, d_k)
        scores = q @ k.transpose(-2, -1) / math.sqrt(k.size(-1))  # (batch, seq, seq)
        scores = scores.masked_fill(self.mask[:seq, :seq] == 0, float("-inf"))
        return torch.softmax(scores, dim=-1)
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        return self.attention_weights(x) @ self.value(x)  # (batch, seq, d_v)
        ### END SOLUTION


# %% [markdown] id="c09"
# Try it on a small input before running the checks:

# %% id="c10"
head = Head(d_model=16, d_k=8, d_v=4, context_len=10)
x = torch.randn(2, 7, 16)
print("output:", tuple(head(x).shape), " weights:", tuple(head.attention_weights(x).shape))
print("rows sum to 1:", torch.allclose(head.attention_weights(x).sum(-1), torch.ones(2, 7)))

# %% id="c11" nbgrader={"grade": true, "grade_id": "test_head_visible", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Self-check: `Head` (outputs, weights, rows summing to 1, causality) against the reference with the same weights (10 points).
from gptedu.grading import check

check("head", globals())

# %% id="c12" nbgrader={"grade": true, "grade_id": "test_head_hidden", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds, and no shortcuts (10 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("head", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="c13"
# ## Looking at the weights
#
# Row $t$ of the weight matrix says how much position $t$ draws from each earlier position. Here is one head
# with random weights reading the characters of a prompt (each character embedded at random). The upper
# triangle is exactly zero: no position looks ahead. The first row puts all its weight on the first
# character, the only one it may see; later rows spread theirs. These patterns mean nothing yet. Notebook 08
# draws every head of the model it trains, with a prompt's characters on the axes, and measures where each
# head looks: after training, heads specialise (some on the character just before, one on the start of the
# line...), and you will see which ones your run produced.

# %% id="c14"
prompt = "ROMEO: But soft!"
torch.manual_seed(1)
embed = nn.Embedding(128, 32)
head = Head(d_model=32, d_k=16, d_v=16, context_len=64)
with torch.no_grad():
    ids = torch.tensor([[ord(c) for c in prompt]])
    weights = head.attention_weights(embed(ids))[0]

fig, ax = plt.subplots(figsize=(6, 5))
image = ax.imshow(weights, cmap="viridis")
ax.set_xticks(range(len(prompt)), list(prompt))
ax.set_yticks(range(len(prompt)), list(prompt))
ax.set_xlabel("key position s (attended to)")
ax.set_ylabel("query position t")
ax.set_title("Attention weights of one head (untrained)")
fig.colorbar(image, ax=ax)
plt.show()

# %% [markdown] id="c15"
# **Next:** notebook 04 runs several heads side by side (`MultiHeadAttention`).
