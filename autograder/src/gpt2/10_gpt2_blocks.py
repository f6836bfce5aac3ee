# %% [markdown] id="f8bba799"
# # 10 · GPT-2, block by block
#
# *Part 2 of "Building a GPT from scratch" (assignment `gpt2`, notebooks 10–14): GPT-2, built and trained.*
#
# **Points in this notebook: 70** (self-checks 37 + hidden tests 33). **Part 2 total: 180 points.**
#
# Part 1 built a small character-level GPT with the names of the Transformer paper (`d_model`, `d_k`, `d_ff`;
# Vaswani et al. 2017). GPT-2 (Radford et al. 2019, "Language Models are Unsupervised Multitask Learners") is
# the same idea with a few changes that matter at scale, and you now write each of them yourself:
#
# | part 1 | GPT-2 |
# |---|---|
# | fixed sinusoidal positions | **learned** position embeddings `pos_emb` |
# | `nn.LayerNorm`, `nn.GELU` | your own `LayerNorm` and `GELU` (tanh approximation) |
# | a list of single heads | one **batched** `MultiHeadAttention`, heads as a tensor dimension |
# | no dropout | dropout on embeddings, attention weights and both residual branches |
# | separate output layer | optional **weight tying**: the output head reuses the token embedding |
#
# How to work: fill in every cell that says `raise NotImplementedError()`, run it, then run the check cell below
# it. A check prints a report; when something is wrong it names the check, the tensor and position, expected and
# found values, and the most likely cause. Hidden tests run the same checks on sizes you have not seen. The block's
# and the model's checks run with correct stand-ins for your earlier classes, so a mistake costs points in its own
# exercise only; a check says when an earlier class of yours failed.

# %% id="09214552"
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

import matplotlib.pyplot as plt
import torch.nn.functional as F

# %% [markdown] id="a51942b9"
# ## The configuration
#
# Every size of the model lives in one dictionary, `cfg`. The classes below read it as `cfg["emb_dim"]`
# (`gptedu.gpt2.GPTConfig` is the same thing as a dataclass and also accepts `cfg["emb_dim"]`). The keys, and the
# names of the modules and functions of part 2 (`trf_blocks`, `out_head`, `calc_loss_batch`, ...), follow
# Sebastian Raschka's book *Build a Large Language Model (From Scratch)* (2024), which writes `context_length`
# where we write `context_len`: its chapters can be read alongside.
#
# | key | meaning | GPT-2 124M |
# |---|---|---|
# | `vocab_size` | number of token ids (the BPE vocabulary of notebook 11) | 50257 |
# | `context_len` | most tokens seen at once = number of learned positions | 1024 |
# | `emb_dim` | width of the residual stream | 768 |
# | `n_heads` | attention heads per block (`emb_dim` divisible by it) | 12 |
# | `n_layers` | transformer blocks | 12 |
# | `drop_rate` | dropout probability | 0.1 |
# | `qkv_bias` | bias in the query/key/value projections | False here (True in OpenAI's weights) |
# | `tie_weights` | output head shares the token-embedding matrix | False |

# %% id="c9078eb9"
GPT_CONFIG_124M = {
    "vocab_size": 50257,
    "context_len": 1024,
    "emb_dim": 768,
    "n_heads": 12,
    "n_layers": 12,
    "drop_rate": 0.1,
    "qkv_bias": False,
    "tie_weights": False,
}
# A tiny model to try things on: same structure, a few thousand parameters.
TINY = {**GPT_CONFIG_124M, "vocab_size": 50, "context_len": 16, "emb_dim": 32, "n_heads": 4, "n_layers": 2}


# %% [markdown] id="7f187c49"
# ## Exercise 1: `LayerNorm` (10 points)
#
# Layer normalisation rescales each position's vector to mean 0 and variance 1, then lets the model choose its own
# scale and offset:
#
# $$\text{LN}(x) = \text{scale} \odot \frac{x - \mu}{\sqrt{\sigma^2 + \varepsilon}} + \text{shift},\qquad
# \mu = \tfrac1d \sum_i x_i,\quad \sigma^2 = \tfrac1d \sum_i (x_i - \mu)^2 .$$
#
# The statistics are over the **last** axis (each token on its own), the variance is the *biased* one (divide by
# $d$, i.e. `unbiased=False`, as GPT-2 and `torch.nn.LayerNorm` do) and $\varepsilon = 10^{-5}$ sits **inside**
# the square root.
#
# Write `LayerNorm(emb_dim)` with parameters `self.scale` (ones) and `self.shift` (zeros), both `nn.Parameter`
# of shape `(emb_dim,)`; `forward(x)` maps `(..., emb_dim)` to the same shape.

# %% id="316ed8f8" nbgrader={"grade": false, "grade_id": "gpt2_layer_norm_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
class LayerNorm(nn.Module):
    """scale * (x - mean) / sqrt(var + eps) + shift over the last axis; (..., emb_dim) -> same shape."""

    def __init__(self, emb_dim: int):
        super().__init__()
        self.eps = 1e-5
        ### BEGIN SOLUTION
        self.scale = nn.Parameter(torch.ones(emb_dim))
        self.shift = nn.Parameter(torch.zeros(emb_dim))
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        return self.scale * (x - mean) / torch.sqrt(var + self.eps) + self.shift
        ### END SOLUTION


# %% id="7b29a87e"
x = torch.randn(2, 3, 6) * 5 + 2
ln = LayerNorm(6)
y = ln(x)
print("mean ~ 0:", y.mean(-1).abs().max().item() < 1e-5, "  variance ~ 1:", y.var(-1, unbiased=False).mean().item())
print("equals torch.nn.LayerNorm:", torch.allclose(y, F.layer_norm(x, (6,), eps=1e-5), atol=1e-5))

# %% id="349417f6" nbgrader={"grade": true, "grade_id": "test_gpt2_layer_norm_visible", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Self-check: `LayerNorm` against the reference with the same weights (5 points).
from gptedu.grading import check

check("gpt2_layer_norm", globals())

# %% id="42ab9ddd" nbgrader={"grade": true, "grade_id": "test_gpt2_layer_norm_hidden", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds (5 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("gpt2_layer_norm", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="73c0ae09"
# ## Exercise 2: `GELU` (5 points)
#
# GPT-2's activation is GELU, $x\,\Phi(x)$ with $\Phi$ the standard normal CDF, in the tanh approximation the
# original code used:
#
# $$\text{GELU}(x) \approx \tfrac12\, x \left(1 + \tanh\!\left(\sqrt{2/\pi}\,\left(x + 0.044715\, x^3\right)\right)\right).$$
#
# Unlike ReLU it is smooth and lets small negative values through. Write `GELU` (no parameters) with this formula.

# %% id="0a64d0a2" nbgrader={"grade": false, "grade_id": "gpt2_gelu_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
class GELU(nn.Module):
    """GELU, tanh approximation; any shape -> same shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
        ### END SOLUTION


# %% id="9087b839"
x = torch.linspace(-4, 4, 200)
plt.figure(figsize=(6, 3))
plt.plot(x, GELU()(x), label="GELU (tanh approximation)")
plt.plot(x, F.relu(x), "--", label="ReLU")
plt.legend()
plt.title("GELU vs ReLU")
plt.show()

# %% id="baa64ea2" nbgrader={"grade": true, "grade_id": "test_gpt2_gelu_visible", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Self-check: `GELU` against the reference (3 points).
from gptedu.grading import check

check("gpt2_gelu", globals())

# %% id="695556f8" nbgrader={"grade": true, "grade_id": "test_gpt2_gelu_hidden", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds (2 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("gpt2_gelu", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="bf8e9fba"
# ## Exercise 3: `FeedForward(cfg)` (5 points)
#
# The position-wise MLP widens each vector four times, applies GELU and projects back:
# `Linear(emb_dim, 4*emb_dim) → GELU → Linear(4*emb_dim, emb_dim)`, both linear layers with bias.
# Store it as `self.layers = nn.Sequential(...)` (the checks load weights into `layers.0` and `layers.2`) and use
# **your** `GELU` from above.

# %% id="cc98d3ec" nbgrader={"grade": false, "grade_id": "gpt2_feed_forward_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
class FeedForward(nn.Module):
    """(batch, seq, emb_dim) -> (batch, seq, emb_dim) through a 4x wider hidden layer."""

    def __init__(self, cfg: dict):
        super().__init__()
        ### BEGIN SOLUTION
        self.layers = nn.Sequential(
            nn.Linear(cfg["emb_dim"], 4 * cfg["emb_dim"]),
            GELU(),
            nn.Linear(4 * cfg["emb_dim"], cfg["emb_dim"]),
        )
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        return self.layers(x)
        ### END SOLUTION


# %% id="0124acac" nbgrader={"grade": true, "grade_id": "test_gpt2_feed_forward_visible", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Self-check: `FeedForward` against the reference with the same weights (3 points).
from gptedu.grading import check

check("gpt2_feed_forward", globals())

# %% id="33637201" nbgrader={"grade": true, "grade_id": "test_gpt2_feed_forward_hidden", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds (2 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("gpt2_feed_forward", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="e13ea7f3"
# ## Exercise 4: batched causal `MultiHeadAttention` (20 points)
#
# In part 1 every head was its own module and the heads ran one after the other. Here one linear layer computes the
# queries of *all* heads at once (likewise keys and values), and the heads become a tensor dimension:
#
# | step | shape |
# |---|---|
# | `x` | `(batch, seq, d_in)` |
# | `W_query(x)` (and keys, values) | `(batch, seq, d_out)` |
# | split into heads: `.view(batch, seq, n_heads, head_dim).transpose(1, 2)` | `(batch, n_heads, seq, head_dim)` |
# | scores `q @ k.transpose(2, 3) / sqrt(head_dim)` | `(batch, n_heads, seq, seq)` |
# | mask the future with `-inf`, softmax over the last axis, dropout | `(batch, n_heads, seq, seq)` |
# | `weights @ v`, then `.transpose(1, 2).reshape(batch, seq, d_out)` | `(batch, seq, d_out)` |
# | `out_proj` | `(batch, seq, d_out)` |
#
# with `head_dim = d_out // n_heads`. The `transpose(1, 2)` matters: a plain `.view(batch, n_heads, seq, head_dim)`
# would mix positions and heads.
#
# Write `MultiHeadAttention(d_in, d_out, context_len, drop_rate, n_heads, qkv_bias=False)`:
#
# * `self.W_query`, `self.W_key`, `self.W_value`: `nn.Linear(d_in, d_out, bias=qkv_bias)`;
# * `self.out_proj`: `nn.Linear(d_out, d_out)` (with bias); `self.dropout = nn.Dropout(drop_rate)` on the attention
#   weights;
# * a causal mask of shape `(context_len, context_len)` registered as a buffer
#   (`self.register_buffer("mask", torch.triu(torch.ones(context_len, context_len), diagonal=1))`: ones mark the
#   future); use its top-left `seq × seq` corner;
# * `forward(x)` for any `seq <= context_len`.
#
# Write the attention with tensor operations (`F.scaled_dot_product_attention` and `nn.MultiheadAttention` are not
# accepted here).

# %% id="961ceb6d" nbgrader={"grade": false, "grade_id": "gpt2_attention_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
class MultiHeadAttention(nn.Module):
    """Causal self-attention with n_heads heads computed in one batch: (batch, seq, d_in) -> (batch, seq, d_out)."""

    def __init__(self, d_in, d_out, context_len, drop_rate, n_heads, qkv_bias=False):
        super().__init__()
        assert d_out % n_heads == 0, "d_out must be divisible by n_heads"
        self.d_out = d_out
        self.n_heads = n_heads
        self.head_dim = d_out // n_heads
        ### BEGIN SOLUTION
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(drop_rate)
        self.register_buffer("mask", torch.triu(torch.ones(context_len, context_len), diagonal=1))
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        b, seq, _ = x.shape

        def split(t):  # (b, seq, d_out) -> (b, n_heads, seq, head_dim)
            return t.view(b, seq, self.n_heads, self.head_dim).transpose(1, 2)

        q, k, v = split(self.W_query(x)), split(self.W_key(x)), split(self.W_value(x))
        scores = q @ k.transpose(2, 3) / math.sqrt(self.head_dim)
        scores = scores.masked_fill(self.mask.bool()[:seq, :seq], float("-inf"))
        weights = self.dropout(torch.softmax(scores, dim=-1))
        context = (weights @ v).transpose(1, 2).reshape(b, seq, self.d_out)
        return self.out_proj(context)
        ### END SOLUTION


# %% id="2dfd7aeb"
mha = MultiHeadAttention(d_in=32, d_out=32, context_len=16, drop_rate=0.0, n_heads=4)
x = torch.randn(2, 10, 32)
print("output:", tuple(mha(x).shape))
changed = x.clone()
changed[:, 6:] = torch.randn(2, 4, 32)  # change the future of position 5
print("positions 0..5 unchanged:", torch.allclose(mha(x)[:, :6], mha(changed)[:, :6], atol=1e-6))

# %% id="951d8c71" nbgrader={"grade": true, "grade_id": "test_gpt2_attention_visible", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Self-check: `MultiHeadAttention` (outputs, causality, no shortcuts) against the reference with the same weights (10 points).
from gptedu.grading import check

check("gpt2_attention", globals())

# %% id="343319d5" nbgrader={"grade": true, "grade_id": "test_gpt2_attention_hidden", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds (10 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("gpt2_attention", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="caab471f"
# ## Exercise 5: `GPTEmbedding` (5 points)
#
# GPT-2 *learns* one vector per position instead of using sines and cosines. The input of the first block is
# `tok_emb(idx) + pos_emb(positions)` with `positions = torch.arange(seq)`, followed by dropout.
#
# Write `GPTEmbedding(context_len, vocab_size, emb_dim, drop_rate)` with `self.tok_emb =
# nn.Embedding(vocab_size, emb_dim)`, `self.pos_emb = nn.Embedding(context_len, emb_dim)` and `self.drop =
# nn.Dropout(drop_rate)`; `forward(idx)`: token ids `(batch, seq)` → `(batch, seq, emb_dim)`. Create the positions
# on the same device as `idx`.

# %% id="67189794" nbgrader={"grade": false, "grade_id": "gpt2_embedding_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
class GPTEmbedding(nn.Module):
    """Token + learned position embeddings, then dropout: (batch, seq) ids -> (batch, seq, emb_dim)."""

    def __init__(self, context_len, vocab_size, emb_dim, drop_rate):
        super().__init__()
        ### BEGIN SOLUTION
        self.tok_emb = nn.Embedding(vocab_size, emb_dim)
        self.pos_emb = nn.Embedding(context_len, emb_dim)
        self.drop = nn.Dropout(drop_rate)
        ### END SOLUTION

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        positions = torch.arange(idx.size(1), device=idx.device)
        return self.drop(self.tok_emb(idx) + self.pos_emb(positions))
        ### END SOLUTION


# %% id="2f8e5801" nbgrader={"grade": true, "grade_id": "test_gpt2_embedding_visible", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Self-check: `GPTEmbedding` against the reference with the same weights (3 points).
from gptedu.grading import check

check("gpt2_embedding", globals())

# %% id="bf4770b7" nbgrader={"grade": true, "grade_id": "test_gpt2_embedding_hidden", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds (2 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("gpt2_embedding", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="b3d64f3d"
# ## Exercise 6: `TransformerBlock(cfg)` (10 points)
#
# GPT-2 normalises *before* each sub-layer (pre-LN) and adds the result back to the residual stream, with dropout
# on each branch:
#
# ```
# x = x + drop_shortcut(att(norm1(x)))
# x = x + drop_shortcut(ff(norm2(x)))
# ```
#
# Write `TransformerBlock(cfg)` with `self.att` (your `MultiHeadAttention(emb_dim, emb_dim, context_len,
# drop_rate, n_heads, qkv_bias)`), `self.ff` (your `FeedForward(cfg)`), `self.norm1`, `self.norm2` (your
# `LayerNorm(emb_dim)`) and `self.drop_shortcut = nn.Dropout(drop_rate)`.

# %% id="ba5f2b66" nbgrader={"grade": false, "grade_id": "gpt2_block_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
class TransformerBlock(nn.Module):
    """Pre-LN block: (batch, seq, emb_dim) -> (batch, seq, emb_dim)."""

    def __init__(self, cfg: dict):
        super().__init__()
        ### BEGIN SOLUTION
        self.att = MultiHeadAttention(
            d_in=cfg["emb_dim"],
            d_out=cfg["emb_dim"],
            context_len=cfg["context_len"],
            drop_rate=cfg["drop_rate"],
            n_heads=cfg["n_heads"],
            qkv_bias=cfg["qkv_bias"],
        )
        self.ff = FeedForward(cfg)
        self.norm1 = LayerNorm(cfg["emb_dim"])
        self.norm2 = LayerNorm(cfg["emb_dim"])
        self.drop_shortcut = nn.Dropout(cfg["drop_rate"])
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        x = x + self.drop_shortcut(self.att(self.norm1(x)))
        x = x + self.drop_shortcut(self.ff(self.norm2(x)))
        return x
        ### END SOLUTION


# %% id="422878cc" nbgrader={"grade": true, "grade_id": "test_gpt2_block_visible", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Self-check: `TransformerBlock` against the reference with the same weights (5 points).
from gptedu.grading import check

check("gpt2_block", globals())

# %% id="6374ddd1" nbgrader={"grade": true, "grade_id": "test_gpt2_block_hidden", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds (5 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("gpt2_block", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="74ed92bc"
# ## Exercise 7: `GPTModel(cfg)` with weight tying (10 points)
#
# The whole model: `emb` (your `GPTEmbedding`) → `trf_blocks` (`nn.Sequential` of `n_layers` blocks) →
# `final_norm` (`LayerNorm`) → `out_head` (`nn.Linear(emb_dim, vocab_size, bias=False)`), returning the logits
# `(batch, seq, vocab_size)` (no softmax).
#
# **Weight tying.** The token embedding maps an id to a vector (`vocab_size × emb_dim`); the output head maps a
# vector to a score per id (`vocab_size × emb_dim` as well). GPT-2 uses *one* matrix for both. With
# `cfg.get("tie_weights")` true, make them the same parameter: `self.out_head.weight = self.emb.tok_emb.weight`.
# PyTorch then counts it once in `model.parameters()`.

# %% id="670533ab" nbgrader={"grade": false, "grade_id": "gpt2_model_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
class GPTModel(nn.Module):
    """GPT-2: (batch, seq) token ids -> (batch, seq, vocab_size) logits."""

    def __init__(self, cfg: dict):
        super().__init__()
        ### BEGIN SOLUTION
        self.emb = GPTEmbedding(cfg["context_len"], cfg["vocab_size"], cfg["emb_dim"], cfg["drop_rate"])
        self.trf_blocks = nn.Sequential(*[TransformerBlock(cfg) for _ in range(cfg["n_layers"])])
        self.final_norm = LayerNorm(cfg["emb_dim"])
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)
        if cfg.get("tie_weights", False):
            self.out_head.weight = self.emb.tok_emb.weight
        ### END SOLUTION

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        return self.out_head(self.final_norm(self.trf_blocks(self.emb(idx))))
        ### END SOLUTION


# %% id="cd8d6322"
model = GPTModel(TINY).eval()
idx = torch.randint(0, TINY["vocab_size"], (2, 8))
print("logits:", tuple(model(idx).shape))
tied = GPTModel({**TINY, "tie_weights": True})
print("tied: one tensor?", tied.out_head.weight is tied.emb.tok_emb.weight)

# %% id="6b231f49" nbgrader={"grade": true, "grade_id": "test_gpt2_model_visible", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Self-check: `GPTModel` (untied and tied) against the reference with the same weights (5 points).
from gptedu.grading import check

check("gpt2_model", globals())

# %% id="8fc3637f" nbgrader={"grade": true, "grade_id": "test_gpt2_model_hidden", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds (5 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("gpt2_model", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="17f2a3c1"
# ## Exercise 8: counting the parameters (5 points)
#
# How many numbers does GPT-2 "124M" hold? Write `gpt_param_count(cfg)`: the number of parameters of
# `GPTModel(cfg)`, as an `int`, computed from the config alone (without building the model). Derive it module
# by module from the shapes you wrote above, with $d$ = `emb_dim`, $V$ = `vocab_size`, $C$ = `context_len`,
# $L$ = `n_layers`:
#
# * the two embedding tables;
# * in each of the $L$ blocks: two `LayerNorm`s, the query, key and value projections (with a bias only when
#   `qkv_bias` is true), `out_proj` (which has a bias), and the two linear layers of the feed-forward network;
# * the final `LayerNorm`;
# * the output head, which adds nothing when it is tied to the token embedding.
#
# A weight matrix of `nn.Linear(a, b)` holds $a b$ numbers and its bias $b$. When a term is in doubt, count a
# module of the tiny model with `sum(p.numel() for p in module.parameters())`. And before you run the cell
# after the checks, **predict**: which single matrix of GPT-2 124M is the largest, and what share of the
# untied model is it?

# %% id="48e2c5b7" nbgrader={"grade": false, "grade_id": "gpt2_param_count_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def gpt_param_count(cfg: dict) -> int:
    """Number of parameters of GPTModel(cfg), from the config alone."""
    ### BEGIN SOLUTION
    d, vocab, n = cfg["emb_dim"], cfg["vocab_size"], cfg["n_layers"]
    per_block = 2 * 2 * d + 3 * d * d + (3 * d if cfg["qkv_bias"] else 0) + d * d + d + 8 * d * d + 5 * d
    total = vocab * d + cfg["context_len"] * d + n * per_block + 2 * d
    if not cfg.get("tie_weights", False):
        total += vocab * d
    return total
    ### END SOLUTION


# %% [markdown] id="6a1f5176"
# The modules agree. Building GPT-2 124M on PyTorch's `meta` device allocates no memory, so this is instant:

# %% id="f0675257"
def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # a tied matrix is listed once


with torch.device("meta"):
    untied = GPTModel(GPT_CONFIG_124M)
    tied = GPTModel({**GPT_CONFIG_124M, "tie_weights": True})
print(f"untied: {count_parameters(untied):,}   formula: {gpt_param_count(GPT_CONFIG_124M):,}")
print(f"tied:   {count_parameters(tied):,}   formula: {gpt_param_count({**GPT_CONFIG_124M, 'tie_weights': True}):,}")
print(f"the output head alone: {GPT_CONFIG_124M['vocab_size'] * GPT_CONFIG_124M['emb_dim']:,}")

# %% [markdown] id="8fdda00b"
# Untied, the model has 163,009,536 parameters; tied, 124,412,160: the "124M" of the name. (OpenAI's released
# checkpoint also has the QKV biases: 124,439,808.) Almost a quarter of the untied model is the output head.

# %% id="9b53352d" nbgrader={"grade": true, "grade_id": "test_gpt2_param_count_visible", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Self-check: `gpt_param_count` against the reference (3 points).
from gptedu.grading import check

check("gpt2_param_count", globals())

# %% id="cb7a6d95" nbgrader={"grade": true, "grade_id": "test_gpt2_param_count_hidden", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds (2 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("gpt2_param_count", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="303f5649"
# **Next:** notebook 11 builds the tokenizer that turns text into these 50,257 token ids: byte-level BPE.
