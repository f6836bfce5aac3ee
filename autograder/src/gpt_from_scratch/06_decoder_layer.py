# %% [markdown] id="c00"
# # 06 · The decoder layer
#
# *Part 1 of "Building a GPT from scratch" (assignment `gpt_from_scratch`, notebooks 01–09).*
#
# **Points in this notebook: 10** (self-check 5 + hidden tests 5). **Series total: 145 points.**
#
# A decoder layer is attention followed by the feed-forward network, each wrapped in a residual connection
# and a layer normalisation. Where the normalisation goes — before or after each sub-layer — decides how
# easily a deep stack trains.
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

from gptedu import FeedForward, MultiHeadAttention  # notebooks 04 and 05


# %% [markdown] id="c02"
# ## Residual connections and LayerNorm
#
# * A **residual connection** adds a sub-layer's output to its input, $x \leftarrow x + f(x)$: each layer
#   writes a correction into a running "residual stream", and gradients flow straight back through the sum.
# * **LayerNorm** rescales each position's vector to mean 0 and variance 1 over its $d_\text{model}$ features,
#   then applies a learned scale and shift: it keeps the scale of activations under control.
#
# ## Post-norm vs pre-norm
#
# The original Transformer (Vaswani et al. 2017) normalises *after* adding the residual (post-norm):
#
# $$x \leftarrow \text{LN}_1\big(x + \text{Attn}(x)\big), \qquad x \leftarrow \text{LN}_2\big(x + \text{FFN}(x)\big)$$
#
# GPT-2 (Radford et al. 2019) and most models since normalise the *input of each sub-layer* and leave the
# residual path untouched (pre-norm):
#
# $$x \leftarrow x + \text{Attn}\big(\text{LN}_1(x)\big), \qquad x \leftarrow x + \text{FFN}\big(\text{LN}_2(x)\big)$$
#
# ```
#    post-norm                         pre-norm
# x ──┬──────────┐                  x ──┬────────────────┐
#     └─ Attn ──(+)── LN ── ...         └─ LN ── Attn ──(+)── ...
# ```
#
# In pre-norm there is an identity path from the first layer's input to the last layer's output. Xiong et al.
# (2020, "On Layer Normalization in the Transformer Architecture") show that pre-norm stacks train stably
# without the learning-rate warm-up that post-norm needs. The price: the stream is never normalised on its
# way, so a final LayerNorm is needed after the last layer (notebook 07).

# %% [markdown] id="c03"
# ## Exercise: `TransformerDecoderLayer` (10 points)
#
# Write the **pre-norm** layer `TransformerDecoderLayer(d_model, num_heads=8, d_ff=2048, context_len=100)` with
# `self.norm1`, `self.norm2` (`nn.LayerNorm(d_model)`), `self.attn` (`MultiHeadAttention(d_model, num_heads,
# context_len)`) and `self.ffn` (`FeedForward(d_model, d_ff)`), both imported from `gptedu` above, and
# `forward(x)`: `(batch, seq, d_model)` → same shape.

# %% id="c04" nbgrader={"grade": false, "grade_id": "decoder_layer_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
class TransformerDecoderLayer(nn.Module):
    """Pre-norm decoder layer: x = x + attn(norm1(x)); x = x + ffn(norm2(x))."""

    def __init__(self, d_model: int, num_heads: int = 8, d_ff: int = 2048, context_len: int = 100):
        super().__init__()
        ### BEGIN SOLUTION
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, num_heads, context_len)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, d_ff)
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        x = x + self.attn(self.norm1(x))
        x = x + self.ffn(self.norm2(x))
        return x
        ### END SOLUTION


# %% id="c05" nbgrader={"grade": true, "grade_id": "test_decoder_layer_visible", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Self-check: `TransformerDecoderLayer` (pre-norm, residuals, causality) against the reference with the same weights (5 points).
from gptedu.grading import check

check("decoder_layer", globals())

# %% id="c06" nbgrader={"grade": true, "grade_id": "test_decoder_layer_hidden", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds, and no shortcuts (5 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("decoder_layer", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="c07"
# ## Gradients through a deep stack
#
# Stack up to 24 of your layers, and the same layers wired post-norm, and measure the gradient that reaches
# the input. Both stacks end in a LayerNorm (pre-norm with its final one, as in notebook 07), so the loss must
# be one that a LayerNorm cannot flatten: a fixed random projection of the output, $\sum h \cdot r$.
#
# A warning about the tempting loss `h.pow(2).mean()`: a LayerNorm (with its initial scale 1 and shift 0)
# makes the mean of the squares of its output 1, whatever its input. That loss is then a constant, its
# gradient is zero up to rounding at every depth, and a plot of it would say nothing about depth. The cell
# prints it next to the real measurement.

# %% id="c08"
def input_gradient_norm(layers, post_norm: bool, loss_fn) -> float:
    x = torch.randn(4, 16, 32, generator=torch.Generator().manual_seed(1), requires_grad=True)
    h = x
    for layer in layers:
        if post_norm:
            h = layer.norm1(h + layer.attn(h))
            h = layer.norm2(h + layer.ffn(h))
        else:
            h = layer(h)
    if not post_norm:
        h = nn.functional.layer_norm(h, h.shape[-1:])  # the final LayerNorm of a pre-norm stack
    loss_fn(h).backward()
    return x.grad.norm().item()


torch.manual_seed(0)
depths = [1, 2, 4] if QUICK else [1, 2, 4, 8, 16, 24]
layers = [TransformerDecoderLayer(32, num_heads=4, d_ff=64, context_len=16) for _ in range(max(depths))]
r = torch.randn(4, 16, 32, generator=torch.Generator().manual_seed(2))  # the fixed random projection
projection = lambda h: (h * r).sum()  # noqa: E731
mean_square = lambda h: h.pow(2).mean()  # noqa: E731
pre = [input_gradient_norm(layers[:d], False, projection) for d in depths]
post = [input_gradient_norm(layers[:d], True, projection) for d in depths]
for d, a, b in zip(depths, pre, post):
    print(f"{d:2d} layers: |grad| pre-norm {a:6.2f}, post-norm {b:6.2f}   "
          f"(with h.pow(2).mean(): {input_gradient_norm(layers[:d], False, mean_square):.1e}, "
          f"{input_gradient_norm(layers[:d], True, mean_square):.1e})")
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(depths, pre, "o-", label="pre-norm")
ax.plot(depths, post, "s-", label="post-norm")
ax.set_ylim(0, 1.2 * max(pre + post))
ax.set_xlabel("number of layers")
ax.set_ylabel("|d loss / d input|")
ax.set_title("Gradient at the input, at initialisation")
ax.legend()
plt.show()

# %% [markdown] id="h13d"
# What the measurement shows: at initialisation the two wirings pass gradients of about the same size to the
# input, at every depth. Their sub-layers start with small outputs next to the residual stream, so both stacks
# begin close to "identity, then LayerNorm". The difference appears once training makes the sub-layers
# matter: Xiong et al. (2020) show that with post-norm the gradients of the parameters near the output are
# large, which makes training unstable without a learning-rate warm-up, while pre-norm trains well without
# one. An experiment to try: train a 12-layer stack both ways with and without a warm-up.

# %% [markdown] id="c09"
# **Next:** notebook 07 stacks the layers into a GPT.
