# %% [markdown] id="c00"
# # 05 · The feed-forward network
#
# *Part 1 of "Building a GPT from scratch" (assignment `gpt_from_scratch`, notebooks 01–09).*
#
# **Points in this notebook: 10** (self-check 5 + hidden tests 5). **Series total: 145 points.**
#
# Attention moves information *between* positions. The feed-forward network then *transforms* it, at each
# position separately, with a non-linearity. This notebook shows why the second step is needed and builds it.
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
import matplotlib.pyplot as plt

from gptedu import Head

# %% [markdown] id="c02"
# ## Attention alone is linear in the values
#
# The output of a head at position $t$ is $\sum_s w_{ts}\, v_s$: a weighted average of value vectors, with
# weights $w_{ts} \ge 0$ summing to 1. Once the weights are fixed, doubling the values doubles the output,
# adding two sets of values adds the outputs. Whatever the model computes *from the content* of a position
# goes through linear maps and averages only; stacking more attention layers keeps it that way. The check
# below mixes two value tensors with the same weights:

# %% id="c03"
torch.manual_seed(0)
weights = torch.softmax(torch.randn(6, 6).masked_fill(torch.tril(torch.ones(6, 6)) == 0, float("-inf")), -1)
v1, v2 = torch.randn(6, 4), torch.randn(6, 4)
print("w(2 v1 + 3 v2) == 2 w v1 + 3 w v2:", torch.allclose(weights @ (2 * v1 + 3 * v2),
                                                          2 * (weights @ v1) + 3 * (weights @ v2), atol=1e-6))

# %% [markdown] id="c04"
# ## Linear → GELU → Linear
#
# The feed-forward network applies the same two-layer MLP to every position:
#
# $$\text{FFN}(x) = W_2\,\text{GELU}(W_1 x + b_1) + b_2, \qquad W_1: d_\text{model} \to d_\text{ff},\;
#   W_2: d_\text{ff} \to d_\text{model}$$
#
# with $d_\text{ff}$ usually $4\,d_\text{model}$. GELU, $x\,\Phi(x)$ with $\Phi$ the standard normal CDF, is a
# smooth ReLU: it lets small negative values through a little, and has a gradient everywhere.

# %% id="c05"
z = torch.linspace(-4, 4, 200)
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(z, torch.relu(z), label="ReLU")
ax.plot(z, nn.GELU()(z), label="GELU")
ax.axhline(0, color="grey", lw=0.5)
ax.legend()
ax.set_title("GELU is a smooth ReLU")
plt.show()


# %% [markdown] id="c06"
# ## Exercise: `FeedForward` (10 points)
#
# Write `FeedForward(d_model, d_ff=256)` whose `self.ffn` is
# `nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))` (the checks load weights into
# `ffn.0` and `ffn.2`), and `forward(x)`: `(batch, seq, d_model)` → same shape. No residual here: the decoder
# layer (notebook 06) adds it.

# %% id="c07" nbgrader={"grade": false, "grade_id": "feed_forward_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
class FeedForward(nn.Module):
    """Position-wise MLP: (batch, seq, d_model) -> (batch, seq, d_model)."""

    def __init__(self, d_model: int, d_ff: int = 256):
        super().__init__()
        ### BEGIN SOLUTION
        self.ffn = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        return self.ffn(x)
        ### END SOLUTION


# %% id="c08" nbgrader={"grade": true, "grade_id": "test_feed_forward_visible", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Self-check: `FeedForward` (same weights) against the reference with the same weights (5 points).
from gptedu.grading import check

check("feed_forward", globals())

# %% id="c09" nbgrader={"grade": true, "grade_id": "test_feed_forward_hidden", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds, and no shortcuts (5 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("feed_forward", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="c10"
# ## Position-wise means position-wise
#
# Changing the input at one position changes the output at that position only:

# %% id="c11"
ffn = FeedForward(16, 64)
x = torch.randn(1, 5, 16)
x2 = x.clone()
x2[0, 2] += 1.0
with torch.no_grad():
    changed = (ffn(x) - ffn(x2)).abs().amax(-1)[0]
print("max change per position:", changed)

# %% [markdown] id="c12"
# **Next:** notebook 06 assembles attention and feed-forward into a decoder layer.
