# %% [markdown] id="c00"
# # 02 · Positional encoding
#
# *Part 1 of "Building a GPT from scratch" (assignment `gpt_from_scratch`, notebooks 01–09).*
#
# **Points in this notebook: 10** (self-check 5 + hidden tests 5). **Series total: 145 points.**
#
# Attention compares every position with every other by dot products; nothing in it knows *where* a
# character is. Shuffle the input and each output is just shuffled along. Yet "dog bites man" is not "man
# bites dog". The fix of the original Transformer (Vaswani et al. 2017, "Attention Is All You Need"): add to
# each embedding a fixed vector that encodes its
# position.
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
# ## Sines and cosines at geometric frequencies
#
# For position $pos$ and dimension pair $i = 0, 1, \dots, d_\text{model}/2 - 1$:
#
# $$PE_{pos,\,2i} = \sin\!\left(\frac{pos}{10000^{2i/d_\text{model}}}\right), \qquad
#   PE_{pos,\,2i+1} = \cos\!\left(\frac{pos}{10000^{2i/d_\text{model}}}\right).$$
#
# Pair $i$ is a clock hand turning at angular speed $\omega_i = 10000^{-2i/d_\text{model}}$: the first pair
# turns once every $2\pi \approx 6$ positions, the last one almost as slowly as once every $2\pi \cdot 10000$
# positions (exactly $2\pi \cdot 10000^{(d_\text{model}-2)/d_\text{model}}$). Read
# together, the hands give every position a distinct code — like the digits of a **binary counter**, where
# the lowest bit flips at every step and each higher bit twice as slowly. The sinusoids are the smooth,
# continuous version of those bits (see the two pictures after the exercise).
#
# Two more properties make it a good code:
#
# * values stay in $[-1, 1]$ whatever the position (a raw index $pos$ would swamp the embeddings);
# * $PE_{pos+k}$ is a fixed rotation of $PE_{pos}$ (pair by pair, by the angle $k\,\omega_i$), so "$k$
#   positions back" looks the same everywhere, and the model can learn relative offsets.
#
# Computing $10000^{-2i/d}$ as `torch.exp(-math.log(10000.0) * two_i / d_model)` is the usual, numerically
# friendly form.

# %% [markdown] id="c03"
# ## Exercise: `PositionalEncoding` (10 points)
#
# Write `PositionalEncoding(d_model, num_range=5000)`:
#
# * build the table `pe` of shape `(num_range, d_model)` from the formula (even columns sin, odd columns cos),
#   add a batch dimension → `(1, num_range, d_model)`, and store it with `self.register_buffer("pe", pe)`
#   (a buffer: saved and moved with the model, but not a learnable parameter);
# * `forward(x)`: `x` of shape `(batch, seq, d_model)` → `x + pe[:, :seq]`, same shape.
#
# You may assume `d_model` is even.

# %% id="c04" nbgrader={"grade": false, "grade_id": "positional_encoding_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
class PositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal code of each position: (batch, seq, d_model) -> same shape."""

    def __init__(self, d_model: int, num_range: int = 5000):
        super().__init__()
        ### BEGIN SOLUTION
        position = torch.arange(num_range, dtype=torch.float32).unsqueeze(1)  # (num_range, 1)
        two_i = torch.arange(0, d_model, 2, dtype=torch.float32)  # (d_model/2,)
        div_term = torch.exp(-math.log(10000.0) * two_i / d_model)  # 1 / 10000^(2i/d_model)
        pe = torch.zeros(num_range, d_model)
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe.unsqueeze(0))  # (1, num_range, d_model)
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        return x + self.pe[:, : x.size(1)]
        ### END SOLUTION


# %% id="c05" nbgrader={"grade": true, "grade_id": "test_positional_encoding_visible", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Self-check: `PositionalEncoding` (closed form, buffer, forward) against the reference (5 points).
from gptedu.grading import check

check("positional_encoding", globals())

# %% id="c06" nbgrader={"grade": true, "grade_id": "test_positional_encoding_hidden", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds, and no shortcuts (5 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("positional_encoding", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="c07"
# ## Two pictures of counting
#
# Left: the bits of the numbers 0–63 (bit 0 flips at every step, bit 5 once in 64). Right: your encoding for
# the first 64 positions and 32 dimensions. The left columns of the encoding oscillate fast, the right ones
# slowly — the same pattern, made smooth.

# %% id="c08"
positions, d_model = 64, 32
bits = torch.tensor([[(n >> b) & 1 for b in range(6)] for n in range(positions)], dtype=torch.float32)
table = PositionalEncoding(d_model, num_range=positions).pe[0]

fig, (ax_bits, ax_pe) = plt.subplots(1, 2, figsize=(11, 4.5), gridspec_kw={"width_ratios": [1, 3]})
ax_bits.imshow(bits, aspect="auto", cmap="Greys", interpolation="nearest")
ax_bits.set_title("binary counter")
ax_bits.set_xlabel("bit (0 = fastest)")
ax_bits.set_ylabel("number / position")
image = ax_pe.imshow(table, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
ax_pe.set_title("sinusoidal positional encoding")
ax_pe.set_xlabel("dimension (0 = fastest pair)")
fig.colorbar(image, ax=ax_pe)
plt.tight_layout()
plt.show()

# %% [markdown] id="c09"
# ## Nearby positions look alike
#
# The dot product $PE_{p} \cdot PE_{q} = \sum_i \cos\big((p-q)\,\omega_i\big)$ depends only on the distance
# $p - q$: it peaks at $p = q$ and, with ripples, falls off with distance, the same around every position.

# %% id="c10"
table = PositionalEncoding(64, num_range=200).pe[0]
fig, ax = plt.subplots(figsize=(7, 3))
for p in (40, 100, 160):
    ax.plot(table @ table[p], label=f"position {p}")
ax.set_xlabel("position q")
ax.set_ylabel("PE[p] · PE[q]")
ax.legend()
plt.show()

# %% [markdown] id="c11"
# **Next:** notebook 03 writes one head of attention.
