# %% [markdown] id="5f39121b"
# # 13 · Fast generation with a KV cache
#
# *Part 2 of "Building a GPT from scratch" (assignment `gpt2`, notebooks 10–14): GPT-2, built and trained.*
#
# **Points in this notebook: 30** (self-checks 15 + hidden tests 15). **Part 2 total: 180 points.**
#
# `gen_text` (notebook 12) runs the whole context through the model for every new token: to write token 500 it
# recomputes the keys and values of the 499 tokens before it, although they have not changed since the previous
# step — attention is causal, so a position never looks at what comes after it. A **KV cache** keeps each layer's
# keys and values; each new token then costs one position's worth of work (plus attending over the cache).
#
# 1. `CachedMultiHeadAttention`: your attention of notebook 10 with a cache (20 points);
# 2. `CachedGPT.generate`: the generation loop that fills the cache once with the prompt, then feeds one token at a
#    time — and handles the end of the context honestly (10 points);
# 3. a measured speed-up.

# %% id="1622e33b"
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

from gptedu.gpt2 import GPTModel as GPT2Model  # part 2's GPT-2 (gptedu.GPTModel is part 1's character model)
from gptedu.gpt2 import KVCache, gen_text
from gptedu.sampling import sample_next_token


# %% [markdown] id="0678999b"
# ## Exercise 1: attention with a cache (20 points)
#
# `forward(x, use_cache=False)` without the cache is the attention of notebook 10. With `use_cache=True`, `x`
# holds only the **new** positions `(batch, new, d_in)`:
#
# 1. compute the queries, keys and values of the new positions, split into heads: `(batch, n_heads, new, head_dim)`;
# 2. `start` = the number of positions already cached (0 after `reset_cache()`); append the new keys and values to
#    `self.cache_k` / `self.cache_v` along the sequence axis (`dim=2`), and attend with *all* of them;
# 3. the new queries sit at positions `start, ..., start + new - 1`: the causal mask rows they need are
#    `mask[start:start + new, :start + new]` — not the top-left corner;
# 4. softmax, dropout, combine the heads, `out_proj`, as before.
#
# The constructor, `reset_cache()` and two drivers are given: `step_by_step(x)` feeds `x` one position at a time,
# `prefill_then_steps(x)` feeds the first half at once and then one position at a time. Both must return exactly
# `forward(x)`.

# %% id="ac7f3d7a" nbgrader={"grade": false, "grade_id": "kv_cached_attention_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
class CachedMultiHeadAttention(nn.Module):
    """Causal multi-head attention with a KV cache: (batch, new, d_in) -> (batch, new, d_out)."""

    def __init__(self, d_in, d_out, context_len, drop_rate, n_heads, qkv_bias=False):
        super().__init__()
        assert d_out % n_heads == 0, "d_out must be divisible by n_heads"
        self.d_out, self.n_heads, self.head_dim = d_out, n_heads, d_out // n_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(drop_rate)
        self.register_buffer("mask", torch.triu(torch.ones(context_len, context_len), diagonal=1))
        self.reset_cache()

    def reset_cache(self):
        self.cache_k = None  # (batch, n_heads, cached, head_dim) once filled
        self.cache_v = None

    def forward(self, x: torch.Tensor, use_cache: bool = False) -> torch.Tensor:
        ### BEGIN SOLUTION
        b, new, _ = x.shape

        def split(t):
            return t.view(b, new, self.n_heads, self.head_dim).transpose(1, 2)

        q, k, v = split(self.W_query(x)), split(self.W_key(x)), split(self.W_value(x))
        start = 0
        if use_cache:
            if self.cache_k is not None:
                start = self.cache_k.size(2)
                k = torch.cat([self.cache_k, k], dim=2)
                v = torch.cat([self.cache_v, v], dim=2)
            self.cache_k, self.cache_v = k, v
        end = start + new
        scores = q @ k.transpose(2, 3) / math.sqrt(self.head_dim)
        scores = scores.masked_fill(self.mask.bool()[start:end, :end], float("-inf"))
        weights = self.dropout(torch.softmax(scores, dim=-1))
        return self.out_proj((weights @ v).transpose(1, 2).reshape(b, new, self.d_out))
        ### END SOLUTION

    def step_by_step(self, x: torch.Tensor) -> torch.Tensor:
        self.reset_cache()
        return torch.cat([self(x[:, t : t + 1], use_cache=True) for t in range(x.size(1))], dim=1)

    def prefill_then_steps(self, x: torch.Tensor) -> torch.Tensor:
        self.reset_cache()
        half = max(1, x.size(1) // 2)
        outs = [self(x[:, :half], use_cache=True)]
        outs += [self(x[:, t : t + 1], use_cache=True) for t in range(half, x.size(1))]
        return torch.cat(outs, dim=1)


# %% id="29aacecd"
att = CachedMultiHeadAttention(d_in=32, d_out=32, context_len=16, drop_rate=0.0, n_heads=4).eval()
x = torch.randn(2, 12, 32)
with torch.no_grad():
    full = att(x)
    print("step by step == full:", torch.allclose(att.step_by_step(x), full, atol=1e-6))
    print("prefill + steps == full:", torch.allclose(att.prefill_then_steps(x), full, atol=1e-6))
    print("cached keys:", tuple(att.cache_k.shape))

# %% id="7bb90384" nbgrader={"grade": true, "grade_id": "test_kv_cached_attention_visible", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Self-check: `CachedMultiHeadAttention` (uncached, step by step, prefill + steps) against the reference with the same weights (10 points).
from gptedu.grading import check

check("kv_cached_attention", globals())

# %% id="87dbd425" nbgrader={"grade": true, "grade_id": "test_kv_cached_attention_hidden", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds (10 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("kv_cached_attention", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="abe8e0f2"
# ## Exercise 2: the generation loop (10 points)
#
# `GPT2Model` (`gptedu.gpt2.GPTModel`) already accepts a cache, built the same way as yours: `logits = model(idx, kv_cache=cache)`
# with `cache = KVCache()` runs `idx` as the positions that follow the cached ones (`cache.length` of them).
#
# Write `CachedGPT.generate(idx, max_new_tokens, temperature=0.0)`, equal token for token to
# `gen_text(model, idx, max_new_tokens, context_size=cfg.context_len)` under greedy decoding:
#
# 1. **prefill**: crop the prompt to its last `context_len` tokens and run it once through the model with a fresh
#    cache; the last position's logits give the first new token;
# 2. **decode**: append the token and feed *only that token* with the cache to get the next logits;
# 3. **the end of the context.** GPT-2's positions are *learned and absolute*. Once the text is longer than
#    `context_len`, `gen_text` feeds the last `context_len` tokens at positions `0 ... context_len - 1`: every
#    token moves one position per step, so every cached key is stale. When the next token would not fit
#    (`cache.length == context_len`), start a fresh cache and run the last `context_len` tokens again. (Past the
#    context the cache no longer saves time with absolute positions; models with relative positions, such as RoPE,
#    can keep a sliding cache instead.)
#
# Pick tokens with `sample_next_token(logits, temperature)` (temperature 0 = greedy argmax).

# %% id="299f8a22" nbgrader={"grade": false, "grade_id": "kv_cached_generate_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
class CachedGPT(GPT2Model):
    """gptedu's GPT-2 model with a generate() that uses a KV cache."""

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 0.0) -> torch.Tensor:
        ctx = self.cfg.context_len
        ### BEGIN SOLUTION
        cache = KVCache()
        logits = self(idx[:, -ctx:], kv_cache=cache)[:, -1, :]
        for _ in range(max_new_tokens):
            idx_next = sample_next_token(logits, temperature)
            idx = torch.cat([idx, idx_next], dim=1)
            if cache.length < ctx:
                logits = self(idx_next, kv_cache=cache)[:, -1, :]
            else:  # positions shift from here on: rebuild the cache from the last ctx tokens
                cache = KVCache()
                logits = self(idx[:, -ctx:], kv_cache=cache)[:, -1, :]
        return idx
        ### END SOLUTION


# %% id="49a69c9b" nbgrader={"grade": true, "grade_id": "test_kv_cached_generate_visible", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Self-check: `CachedGPT.generate` (inside and past the context) against the reference with the same weights (5 points).
from gptedu.grading import check

check("kv_cached_generate", globals())

# %% id="dd9c2466" nbgrader={"grade": true, "grade_id": "test_kv_cached_generate_hidden", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds (5 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("kv_cached_generate", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="7217ac0d"
# ## How much faster?
#
# A GPT-2-shaped model (50,257-token vocabulary, 1,024 positions; narrower and shallower so that it runs on a
# laptop CPU), 12 prompt tokens, greedy decoding. Both loops produce the same tokens. The cached one runs one
# position through the model per token (plus attention over the cache, which grows by one key and value per
# token); the uncached one runs the whole text so far, a growing amount. The speed-up printed is this machine's.

# %% id="02f80177"
torch.manual_seed(0)
cfg = {"vocab_size": 50257, "context_len": 1024, "emb_dim": 128, "n_heads": 4, "n_layers": 4, "drop_rate": 0.0,
       "qkv_bias": True, "tie_weights": True}
model = CachedGPT(cfg).eval()
prompt = torch.randint(0, cfg["vocab_size"], (1, 12))
n_new = 40 if QUICK else 300

start = time.perf_counter()
plain = gen_text(model, prompt, n_new, context_size=cfg["context_len"])
t_plain = time.perf_counter() - start
start = time.perf_counter()
cached = model.generate(prompt, n_new)
t_cached = time.perf_counter() - start
print(f"without cache: {n_new / t_plain:7.1f} tokens/s")
print(f"with cache:    {n_new / t_cached:7.1f} tokens/s  ->  {t_plain / t_cached:.1f}x faster")
print("same tokens:", torch.equal(plain, cached))

# %% [markdown] id="f8b05583"
# The gap grows with the length: without a cache step $t$ costs $O(t)$ full forward positions (and the output head
# on each), with it one position. `benchmarks/bench_gpt2_generation.py` measures 500 new tokens.
#
# **What the cache costs:** memory, $2 \times n_\text{layers} \times \text{context} \times \text{emb\_dim}$ numbers
# per sequence (keys and values of every layer) — for GPT-2 124M and 1,024 tokens, 18.9M floats (75 MB in float32).
