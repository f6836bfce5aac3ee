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

from gptedu import Head

# %% [markdown] id="c02"
# ## What attention alone cannot compute
#
# The output of a head at position $t$ is $\sum_s w_{ts}\, v_s$ with $v_s = W_V x_s$: a weighted average of
# linearly mapped inputs. The weights $w_{ts}$ come from a softmax of the inputs, so attention as a whole is
# *not* a linear function of $x$: the softmax decides *where* to read. But *what* it reads is linear in the
# content: each value is $W_V x_s$, and the output projection of notebook 04 is linear too. Attention layers
# stacked with nothing in between can move features between positions and average them; they cannot compute
# a new feature from the features of one position (a product, a threshold, "this AND that").
#
# The cell shows both halves with two heads of notebook 03 stacked. On a **single** position the head can only
# attend to itself ($w_{00} = 1$), so the stack is exactly the product of the two value matrices: a linear
# map. On **six** positions the same stack is not linear in its input, because the weights move with it.

# %% id="c03"
torch.manual_seed(0)
head1, head2 = Head(16, 16, 16), Head(16, 16, 16)


def two_heads(x):  # two attention layers stacked, nothing in between
    return head2(head1(x))


with torch.no_grad():
    a, b = torch.randn(1, 1, 16), torch.randn(1, 1, 16)  # one position each
    print("one position:   f(2a + 3b) == 2 f(a) + 3 f(b):",
          torch.allclose(two_heads(2 * a + 3 * b), 2 * two_heads(a) + 3 * two_heads(b), atol=1e-5))
    print("                f(a) == a W_V1^T W_V2^T:      ",
          torch.allclose(two_heads(a), a @ head1.value.weight.T @ head2.value.weight.T, atol=1e-6))
    a, b = torch.randn(1, 6, 16), torch.randn(1, 6, 16)  # six positions each
    print("six positions:  f(2a + 3b) == 2 f(a) + 3 f(b):",
          torch.allclose(two_heads(2 * a + 3 * b), 2 * two_heads(a) + 3 * two_heads(b), atol=1e-5))

# %% [markdown] id="h13a"
# The feed-forward network supplies the missing piece: a non-linearity applied to the features of each
# position on its own.

# %% [markdown] id="c04"
# ## Linear → GELU → Linear
#
# The feed-forward network applies the same two-layer MLP to every position:
#
# $$\text{FFN}(x) = W_2\,\text{GELU}(W_1 x + b_1) + b_2, \qquad W_1: d_\text{model} \to d_\text{ff},\;
#   W_2: d_\text{ff} \to d_\text{model}$$
#
# with $d_\text{ff} = 4\,d_\text{model}$ in GPT-2 (the original Transformer used 2048 for $d_\text{model} = 512$,
# also 4x; the `default` preset in `gptedu/configs.py` uses 2x, for speed on a CPU). GELU (Hendrycks and Gimpel
# 2016, used by
# GPT-2), $x\,\Phi(x)$ with $\Phi$ the standard normal CDF, is a smooth ReLU: it lets small negative values
# through a little, and has a gradient everywhere.

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
# Write `FeedForward(d_model, d_ff=256)` that computes $\text{FFN}$ above at every position:
# `forward(x)`: `(batch, seq, d_model)` → same shape. Store the network as `self.ffn`, an `nn.Sequential` in
# which the two linear layers (with their biases) are modules `0` and `2` and PyTorch's `nn.GELU()` sits
# between them: the checks load known weights by the names `ffn.0.weight`, `ffn.0.bias`, `ffn.2.weight`,
# `ffn.2.bias`. Which sizes each linear layer needs, you read off the formula. No residual here: the decoder
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
# Self-check: `FeedForward` against the reference with the same weights (5 points).
from gptedu.grading import check

check("feed_forward", globals())

# %% id="c09" nbgrader={"grade": true, "grade_id": "test_feed_forward_hidden", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds, and no shortcuts (5 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("feed_forward", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="c10"
# ## Predict, then count
#
# Before running the next cell, work out on paper how many parameters `FeedForward(64, 256)` holds, and how
# many `MultiHeadAttention(64, num_heads=4)` of notebook 04 holds (its heads' query, key and value layers have
# no bias; its projection has one). Which is bigger, and by how much?

# %% id="h13b"
from gptedu import MultiHeadAttention  # notebook 04


def count(module):
    return sum(p.numel() for p in module.parameters())


print(f"FeedForward(64, 256):                 {count(FeedForward(64, 256)):,} parameters")
print(f"MultiHeadAttention(64, num_heads=4):  {count(MultiHeadAttention(64, num_heads=4)):,} parameters")

# %% [markdown] id="h13c"
# With $d = d_\text{model}$: the feed-forward network has $2\,d\,d_\text{ff} + d_\text{ff} + d$ parameters, the
# attention $4d^2 + d$ ($3d^2$ for the queries, keys and values of all heads together, whatever their number,
# and $d^2 + d$ for the projection). With $d_\text{ff} = 4d$ the feed-forward network is about twice the
# attention: most of a GPT's parameters sit in its feed-forward layers.
#
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
