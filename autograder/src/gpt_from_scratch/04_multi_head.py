# %% [markdown] id="c00"
# # 04 · Multi-head attention
#
# *Part 1 of "Building a GPT from scratch" (assignment `gpt_from_scratch`, notebooks 01–09).*
#
# **Points in this notebook: 10** (self-check 5 + hidden tests 5). **Series total: 145 points.**
#
# One head computes one pattern of "who looks at whom". A character may need several kinds of context at
# once: the letters just before it, the word it belongs to, where its line began. Multi-head attention
# (Vaswani et al. 2017) runs several smaller heads side by side and mixes their results; notebook 08 shows
# what the heads of a trained model look at.
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
import matplotlib.pyplot as plt

from gptedu import Head  # notebook 03, from the reference package


# %% [markdown] id="c02"
# ## Several heads, then a projection
#
# With $h$ heads, each of size $d_\text{head} = d_\text{model} / h$:
#
# $$\text{MHA}(X) = \big[\,\text{head}_1(X)\;\|\;\text{head}_2(X)\;\|\;\dots\;\|\;\text{head}_h(X)\,\big]\,
#   W_O^\top + b_O$$
#
# where $\|$ concatenates along the last axis and $W_O$ is a `nn.Linear(d_model, d_model)` (with bias).
#
# | tensor | shape |
# |---|---|
# | `x` | `(batch, seq, d_model)` |
# | each `head(x)` | `(batch, seq, d_model / num_heads)` |
# | concatenation | `(batch, seq, d_model)` |
# | `proj(...)` | `(batch, seq, d_model)` |
#
# Splitting $d_\text{model}$ across heads keeps the cost of $h$ heads about that of one full-width head; the
# projection lets the heads' results interact.

# %% [markdown] id="c03"
# ## Exercise: `MultiHeadAttention` (10 points)
#
# Write `MultiHeadAttention(d_model, num_heads=8, context_len=100)` with
#
# * `self.heads`: an `nn.ModuleList` of `num_heads` `Head(d_model, head_size, head_size, context_len)` with
#   `head_size = d_model // num_heads` (`Head` is imported above from `gptedu`; raise a `ValueError` when
#   `d_model` is not divisible by `num_heads`);
# * `self.proj`: `nn.Linear(d_model, d_model)`;
# * `forward(x)`: run every head on `x`, concatenate in the order of `self.heads` along the last axis, project.
#
# Build it from `Head`: `nn.MultiheadAttention` and `F.scaled_dot_product_attention` are not accepted here.

# %% id="c04" nbgrader={"grade": false, "grade_id": "multi_head_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
class MultiHeadAttention(nn.Module):
    """num_heads causal heads side by side, concatenated, then projected: (batch, seq, d_model) -> same."""

    def __init__(self, d_model: int, num_heads: int = 8, context_len: int = 100):
        super().__init__()
        ### BEGIN SOLUTION
        if d_model % num_heads != 0:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
        head_size = d_model // num_heads
        self.heads = nn.ModuleList([Head(d_model, head_size, head_size, context_len) for _ in range(num_heads)])
        self.proj = nn.Linear(d_model, d_model)
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        return self.proj(torch.cat([head(x) for head in self.heads], dim=-1))
        ### END SOLUTION


# %% id="c05"
mha = MultiHeadAttention(d_model=32, num_heads=4, context_len=16)
x = torch.randn(2, 10, 32)
print(tuple(mha(x).shape), "parameters:", sum(p.numel() for p in mha.parameters()))

# %% id="c06" nbgrader={"grade": true, "grade_id": "test_multi_head_visible", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Self-check: `MultiHeadAttention` (causality) against the reference with the same weights (5 points).
from gptedu.grading import check

check("multi_head", globals())

# %% id="c07" nbgrader={"grade": true, "grade_id": "test_multi_head_hidden", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds, and no shortcuts (5 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("multi_head", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="c08"
# ## Each head has its own pattern
#
# The heads of one layer see the same input but, with different weights, attend differently. Here are the
# four heads of your module on one random input (untrained, so the patterns are arbitrary — but they
# differ, and all are lower-triangular).

# %% id="c09"
torch.manual_seed(3)
mha = MultiHeadAttention(d_model=32, num_heads=4, context_len=16)
x = torch.randn(1, 12, 32)
fig, axes = plt.subplots(1, 4, figsize=(13, 3.2))
with torch.no_grad():
    for i, (ax, head) in enumerate(zip(axes, mha.heads)):
        ax.imshow(head.attention_weights(x)[0], cmap="viridis", vmin=0, vmax=1)
        ax.set_title(f"head {i}")
        ax.set_xlabel("key s")
axes[0].set_ylabel("query t")
plt.tight_layout()
plt.show()

# %% [markdown] id="c10"
# **Next:** notebook 05 adds the position-wise feed-forward network.
