# %% [markdown] id="c00"
# # 07 · GPT: the decoder stack and the model
#
# *Part 1 of "Building a GPT from scratch" (assignment `gpt_from_scratch`, notebooks 01–09).*
#
# **Points in this notebook: 40** (`TransformerDecoder` 5 + 5, `GPTModel.forward` 8 + 7, `GPTModel.generate` 8 + 7; self-checks + hidden tests). **Series total: 145 points.**
#
# Everything is in place: stack decoder layers into a `TransformerDecoder`, then wrap it into `GPTModel` —
# token embedding, positional encoding, decoder, and a linear layer that scores every character of the
# vocabulary as the next one. Finally, `generate()` turns those scores into text.
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
from gptedu import PositionalEncoding, TransformerDecoderLayer  # notebooks 02 and 06
from gptedu import TransformerDecoder as ReferenceDecoder  # used by GPTModel below (see exercise 2)


# %% [markdown] id="c02"
# ## Exercise 1: `TransformerDecoder` (10 points)
#
# `TransformerDecoder(d_model, num_heads=8, d_ff=2048, context_len=100, num_layers=6)`:
#
# * `self.layers`: an `nn.ModuleList` of `num_layers` **separate** `TransformerDecoderLayer(d_model, num_heads,
#   d_ff, context_len)` (a list repeating one layer object would share its weights);
# * `self.norm`: `nn.LayerNorm(d_model)`, the final norm a pre-norm stack needs (notebook 06);
# * `forward(x)`: apply the layers in order, then the final norm. `(batch, seq, d_model)` → same shape.

# %% id="c03" nbgrader={"grade": false, "grade_id": "decoder_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
class TransformerDecoder(nn.Module):
    """num_layers pre-norm decoder layers, then a final LayerNorm: (batch, seq, d_model) -> same."""

    def __init__(self, d_model: int, num_heads: int = 8, d_ff: int = 2048, context_len: int = 100,
                 num_layers: int = 6):
        super().__init__()
        ### BEGIN SOLUTION
        self.layers = nn.ModuleList(
            [TransformerDecoderLayer(d_model, num_heads, d_ff, context_len) for _ in range(num_layers)]
        )
        self.norm = nn.LayerNorm(d_model)
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)
        ### END SOLUTION


# %% id="c04" nbgrader={"grade": true, "grade_id": "test_decoder_visible", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Self-check: `TransformerDecoder` (layers in order, final norm) against the reference with the same weights (5 points).
from gptedu.grading import check

check("decoder", globals())

# %% id="c05" nbgrader={"grade": true, "grade_id": "test_decoder_hidden", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds, and no shortcuts (5 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("decoder", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="c06"
# ## Exercise 2: `GPTModel` (30 points)
#
# ```
# token ids (batch, seq)
#   → embedding          nn.Embedding(vocab_size, d_model)      (batch, seq, d_model)
#   → pos_encoding       PositionalEncoding(d_model, num_range=max(5000, context_len))
#   → decoder            the decoder stack                      (batch, seq, d_model)
#   → fc_out             nn.Linear(d_model, vocab_size)         (batch, seq, vocab_size)  logits
# ```
#
# `GPTModel(vocab_size, d_model, num_heads=8, d_ff=2048, context_len=100, num_layers=6)` with attributes
# `embedding`, `pos_encoding`, `decoder`, `fc_out` (the checks load weights by these names) and
# `self.context_len`. So that a slip in exercise 1 cannot cost points here, build the stack with the
# reference decoder: `self.decoder = ReferenceDecoder(d_model, num_heads, d_ff, context_len, num_layers)`.
# `forward(x)` returns the **logits** (no softmax): the loss and the sampler apply it themselves.
#
# ### Generating text
#
# `generate(start_tokens, max_new_tokens=50, temperature=1.0)` continues every row of `start_tokens`
# `(batch, seq)` by `max_new_tokens` tokens, one at a time, each drawn from the model's prediction for the next
# token with probabilities $p = \text{softmax}(z / T)$ ($z$ the logits, $T$ the temperature), and returns the
# prompt followed by the new tokens, `(batch, seq + max_new_tokens)`. This is the loop of Karpathy's
# "Let's build GPT" lecture (and nanoGPT's `generate`); write it from three questions:
#
# 1. The model has `context_len` positions and no more. What do you feed it once the text is longer?
# 2. `forward` returns logits for *every* position, `(batch, seq, vocab_size)`. Which of them predict the
#    token that comes next?
# 3. Generating needs neither gradients nor training-mode behaviour. Which two PyTorch switches say so? (Give
#    the model back in the mode it was in.)
#
# `torch.multinomial` draws from a distribution; `torch.cat` appends. The checks use a temperature close to 0
# (the result must then be the greedy, argmax continuation), a prompt longer than `context_len`, and
# thousands of samples whose frequencies must match $\text{softmax}(z/T)$; they also record the tokens fed to
# the model at each step (the crop), and that it runs in eval mode under `torch.no_grad()`.

# %% id="c07" nbgrader={"grade": false, "grade_id": "gpt_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
class GPTModel(nn.Module):
    """Character-level GPT: token ids (batch, seq) -> logits (batch, seq, vocab_size)."""

    def __init__(self, vocab_size: int, d_model: int, num_heads: int = 8, d_ff: int = 2048,
                 context_len: int = 100, num_layers: int = 6):
        super().__init__()
        ### BEGIN SOLUTION
        self.context_len = context_len
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.pos_encoding = PositionalEncoding(d_model, num_range=max(5000, context_len))
        self.decoder = ReferenceDecoder(d_model, num_heads, d_ff, context_len, num_layers)
        self.fc_out = nn.Linear(d_model, vocab_size)
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        h = self.pos_encoding(self.embedding(x))  # (batch, seq, d_model)
        return self.fc_out(self.decoder(h))  # (batch, seq, vocab_size)
        ### END SOLUTION

    @torch.no_grad()
    def generate(self, start_tokens: torch.Tensor, max_new_tokens: int = 50, temperature: float = 1.0):
        """Append max_new_tokens sampled tokens to start_tokens (batch, seq)."""
        ### BEGIN SOLUTION
        was_training = self.training
        self.eval()
        idx = start_tokens
        for _ in range(max_new_tokens):
            logits = self(idx[:, -self.context_len :])[:, -1, :]  # (batch, vocab_size)
            probs = torch.softmax(logits / temperature, dim=-1)
            next_token = torch.multinomial(probs, num_samples=1)  # (batch, 1)
            idx = torch.cat([idx, next_token], dim=1)
        self.train(was_training)
        return idx
        ### END SOLUTION


# %% id="c08"
model = GPTModel(vocab_size=65, d_model=64, num_heads=4, d_ff=256, context_len=32, num_layers=2)
print(f"{sum(p.numel() for p in model.parameters()):,} parameters")
ids = torch.randint(65, (2, 10))
print("logits:", tuple(model(ids).shape))
print("generated:", tuple(model.generate(ids, max_new_tokens=40).shape))

# %% id="c09" nbgrader={"grade": true, "grade_id": "test_gpt_forward_visible", "locked": true, "points": 8, "schema_version": 3, "solution": false, "task": false}
# Self-check: `GPTModel.forward` (causality) against the reference with the same weights (8 points).
from gptedu.grading import check

check("gpt_forward", globals())

# %% id="c10" nbgrader={"grade": true, "grade_id": "test_gpt_forward_hidden", "locked": true, "points": 7, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds, and no shortcuts (7 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("gpt_forward", globals(), hidden=True)
### END HIDDEN TESTS

# %% id="c11" nbgrader={"grade": true, "grade_id": "test_gpt_generate_visible", "locked": true, "points": 8, "schema_version": 3, "solution": false, "task": false}
# Self-check: `GPTModel.generate` (greedy limit, cropping, sampling statistics) against the reference with the same weights (8 points).
from gptedu.grading import check

check("gpt_generate", globals())

# %% id="c12" nbgrader={"grade": true, "grade_id": "test_gpt_generate_hidden", "locked": true, "points": 7, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds, and no shortcuts (7 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("gpt_generate", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="c13"
# ## An untrained GPT writes noise
#
# Before training, the model has no idea which character comes next. **Predict** its loss before running the
# cell: the cross-entropy (notebook 08), in nats per character, of a model that spreads its bets evenly over
# the 65 characters is $\ln 65 \approx 4.17$. Is an untrained model exactly that even? The cell measures it on
# 64 windows of the corpus, and samples a line. Notebook 08 trains it.

# %% id="c14"
import math

from gptedu import CharTokenizer, load_tinyshakespeare

text = load_tinyshakespeare()
tokenizer = CharTokenizer.from_text(text)
torch.manual_seed(0)
model = GPTModel(tokenizer.vocab_size, d_model=64, num_heads=4, d_ff=256, context_len=32, num_layers=2)
windows = torch.tensor([tokenizer.encode(text[i : i + 33]) for i in range(0, 33 * 64, 33)])  # (64, 33)
with torch.no_grad():
    logits = model(windows[:, :-1])  # predict characters 1..32 of each window from those before them
loss = nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), windows[:, 1:].reshape(-1))
print(f"untrained loss {loss:.3f} nats; ln 65 = {math.log(65):.3f}")
prompt = torch.tensor([tokenizer.encode("ROMEO:")])
print(tokenizer.decode(model.generate(prompt, max_new_tokens=80)[0]))

# %% [markdown] id="c15"
# **Next:** notebook 08 trains the model on TinyShakespeare.
