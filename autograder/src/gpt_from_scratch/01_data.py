# %% [markdown] id="c00"
# # 01 · Data: from Shakespeare to batches of token ids
#
# *Part 1 of "Building a GPT from scratch" (assignment `gpt_from_scratch`, notebooks 01–09).*
#
# **Points in this notebook: 15** (`CharTokenizer` 3 + 2, `TextDataset` 3 + 2, `get_batch` 3 + 2; self-checks + hidden tests). **Series total: 145 points.**
#
# A language model learns from examples of "given these characters, what comes next?". This notebook turns
# the TinyShakespeare corpus (about 1.1 million characters of plays) into such examples: a character
# vocabulary, `encode`/`decode`, a dataset of (input, target) pairs, data loaders, and random batches. It
# also shows a trap: splitting overlapping windows at random leaks the validation text into training.
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
from torch.utils.data import DataLoader, Dataset

from gptedu.data import load_tinyshakespeare, split_contiguous

# %% [markdown] id="c02"
# ## The corpus
#
# `load_tinyshakespeare()` finds the file (from `$GPTEDU_DATA`, the cache, or a download checked against its
# SHA-256) and returns it as one string.

# %% id="c03"
text = load_tinyshakespeare()
print(f"{len(text):,} characters")
print(text[:250])

# %% [markdown] id="c04"
# ## A character vocabulary
#
# The simplest tokenizer maps each distinct character to an integer id. Sorting the set of characters gives a
# fixed order: `chars = sorted(set(text))`. For TinyShakespeare that is 65 characters: the 52 letters, 10
# punctuation marks (`$` and `&` among them), space, newline, and one digit, `3`: the plays write numbers in
# words, and the `3` only appears in a speaker's name. The cell below prints the vocabulary and finds it.

# %% id="c05"
chars = sorted(set(text))
print(len(chars), repr("".join(chars)))
digit = next(c for c in chars if c.isdigit())
print(f"digits: {[c for c in chars if c.isdigit()]}, seen {text.count(digit)} times, e.g. "
      f"{text[text.index(digit) - 20 : text.index(digit) + 10]!r}")


# %% [markdown] id="c06"
# ### Exercise: `CharTokenizer` (5 points)
#
# Write `CharTokenizer(chars)` with
#
# * `self.chars` (the list), `self.s2i` (dict character → id, the position in `chars`) and `self.i2s`
#   (dict id → character);
# * `vocab_size`: the number of characters (a property or an attribute — a number, not a method);
# * `encode(text)` → list of ids; a character that is not in the vocabulary raises `ValueError` with a message
#   that **names the character** (a student at 2 a.m. wants to know which one);
# * `decode(ids)` → string (accept a list or a 1-D tensor of ids).

# %% id="c07" nbgrader={"grade": false, "grade_id": "tokenizer_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
class CharTokenizer:
    """Character-level vocabulary: encode text to ids and decode ids to text."""

    def __init__(self, chars):
        ### BEGIN SOLUTION
        self.chars = list(chars)
        self.s2i = {ch: i for i, ch in enumerate(self.chars)}
        self.i2s = {i: ch for i, ch in enumerate(self.chars)}
        ### END SOLUTION

    @property
    def vocab_size(self) -> int:
        ### BEGIN SOLUTION
        return len(self.chars)
        ### END SOLUTION

    def encode(self, text: str) -> list[int]:
        ### BEGIN SOLUTION
        unknown = sorted({ch for ch in text if ch not in self.s2i})
        if unknown:
            raise ValueError(f"characters not in the vocabulary: {unknown}")
        return [self.s2i[ch] for ch in text]
        ### END SOLUTION

    def decode(self, ids) -> str:
        ### BEGIN SOLUTION
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return "".join(self.i2s[int(i)] for i in ids)
        ### END SOLUTION


# %% id="c08"
tokenizer = CharTokenizer(chars)
ids = tokenizer.encode("ROMEO:")
print(ids, "->", repr(tokenizer.decode(ids)), "| vocab_size =", tokenizer.vocab_size)

# %% id="c09" nbgrader={"grade": true, "grade_id": "test_tokenizer_visible", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Self-check: `CharTokenizer` (s2i, i2s, encode, decode, unknown characters) against the reference (3 points).
from gptedu.grading import check

check("tokenizer", globals())

# %% id="c10" nbgrader={"grade": true, "grade_id": "test_tokenizer_hidden", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds, and no shortcuts (2 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("tokenizer", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="c11"
# ## Training pairs: the target is the input shifted by one
#
# With the whole text encoded as one sequence of ids $c_0, c_1, \dots$, a window of length $T$ starting at $i$
# gives an input $x = (c_i, \dots, c_{i+T-1})$ and a target $y = (c_{i+1}, \dots, c_{i+T})$. One window holds
# $T$ examples at once: from $c_i$ predict $c_{i+1}$, from $c_i c_{i+1}$ predict $c_{i+2}$, and so on.
#
# ```
# text:    F  i  r  s  t     C  i
# x:       F  i  r  s  t     C          (positions i .. i+T-1)
# y:          i  r  s  t     C  i       (positions i+1 .. i+T)
# ```
#
# ### Exercise: `TextDataset` (5 points)
#
# A PyTorch `Dataset` needs `__len__` and `__getitem__`. Write `TextDataset(src_seqs, tgt_seqs)` over two
# parallel lists of id sequences; item `idx` is the pair `(src, tgt)` as `torch.long` tensors of shape `(seq,)`.

# %% id="c12" nbgrader={"grade": false, "grade_id": "dataset_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
class TextDataset(Dataset):
    """Parallel lists of source and target id sequences; item i is (src, tgt) as long tensors."""

    def __init__(self, src_seqs, tgt_seqs):
        ### BEGIN SOLUTION
        if len(src_seqs) != len(tgt_seqs):
            raise ValueError(f"{len(src_seqs)} source but {len(tgt_seqs)} target sequences")
        self.src_seqs = src_seqs
        self.tgt_seqs = tgt_seqs
        ### END SOLUTION

    def __len__(self) -> int:
        ### BEGIN SOLUTION
        return len(self.src_seqs)
        ### END SOLUTION

    def __getitem__(self, idx: int):
        ### BEGIN SOLUTION
        src = torch.tensor(self.src_seqs[idx], dtype=torch.long)
        tgt = torch.tensor(self.tgt_seqs[idx], dtype=torch.long)
        return src, tgt
        ### END SOLUTION


# %% id="c13" nbgrader={"grade": true, "grade_id": "test_text_dataset_visible", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Self-check: `TextDataset` (length, items, dtype) against the reference (3 points).
from gptedu.grading import check

check("text_dataset", globals())

# %% id="c14" nbgrader={"grade": true, "grade_id": "test_text_dataset_hidden", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds, and no shortcuts (2 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("text_dataset", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="c15"
# A `DataLoader` batches and shuffles the pairs. Here on the windows of the first 2,000 characters only:
# building Python lists of *every* window of the training text would hold about a million lists of 100 ints:
# 1.76 GB more memory, measured by `benchmarks/bench_data_memory.py` (its results are in `benchmarks/README.md`),
# which is why `gptedu` indexes windows lazily from one tensor instead.

# %% id="c16"
seq_len = 8
ids = tokenizer.encode(text[:2000])
src_seqs = [ids[i : i + seq_len] for i in range(len(ids) - seq_len)]
tgt_seqs = [ids[i + 1 : i + seq_len + 1] for i in range(len(ids) - seq_len)]
loader = DataLoader(TextDataset(src_seqs, tgt_seqs), batch_size=4, shuffle=True,
                    generator=torch.Generator().manual_seed(0))
x, y = next(iter(loader))
print("x", tuple(x.shape), "y", tuple(y.shape))
for row_x, row_y in zip(x[:2], y[:2]):
    print(repr(tokenizer.decode(row_x)), "->", repr(tokenizer.decode(row_y)))

# %% [markdown] id="c17"
# ## Validation without leaks
#
# To know whether the model generalises we hold out text it never trains on. A tempting first idea —
# make every overlapping window, shuffle the windows, keep 10% for validation — leaks: window $i$ and window
# $i+1$ share $T-1$ characters, so almost every validation window is covered, character for character, by
# its training neighbours. The model can memorise its way to a good "validation" loss. Let us measure it:

# %% id="c18"
n_windows, T = 20_000, 100
is_val = torch.rand(n_windows, generator=torch.Generator().manual_seed(0)) < 0.1
covered = torch.zeros(n_windows + T, dtype=torch.bool)   # characters inside some training window
for i in torch.nonzero(~is_val).flatten().tolist():
    covered[i : i + T] = True
val_chars = torch.zeros(n_windows + T, dtype=torch.bool)
for i in torch.nonzero(is_val).flatten().tolist():
    val_chars[i : i + T] = True
leak = (covered & val_chars).sum() / val_chars.sum()
print(f"random split of windows: {leak:.1%} of the validation characters are also training characters")

data = torch.tensor(tokenizer.encode(text), dtype=torch.long)
train_data, val_data = split_contiguous(data, 0.9)
print(f"contiguous split: {len(train_data):,} train / {len(val_data):,} validation characters, "
      f"shared only at the boundary")


# %% [markdown] id="c19"
# ### Exercise: `get_batch` (5 points)
#
# Training samples windows at random positions of the *training* tensor. Write
# `get_batch(data, batch_size, seq_len, generator=None)`:
#
# * draw `batch_size` start positions with `torch.randint(len(data) - seq_len, (batch_size,), generator=generator)`
#   (the last start still leaves room for the shifted target);
# * `x[b] = data[s : s + seq_len]`, `y[b] = data[s + 1 : s + seq_len + 1]`;
# * return `x, y`, both `torch.long` of shape `(batch_size, seq_len)`.
#
# Passing `generator` on makes batches reproducible, which the checks rely on.

# %% id="c20" nbgrader={"grade": false, "grade_id": "get_batch_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def get_batch(data: torch.Tensor, batch_size: int, seq_len: int, generator=None):
    """Random windows of `data`: x and y = x shifted by one, both (batch_size, seq_len)."""
    ### BEGIN SOLUTION
    starts = torch.randint(len(data) - seq_len, (batch_size,), generator=generator)
    x = torch.stack([data[s : s + seq_len] for s in starts.tolist()])
    y = torch.stack([data[s + 1 : s + seq_len + 1] for s in starts.tolist()])
    return x.long(), y.long()
    ### END SOLUTION


# %% id="c21"
x, y = get_batch(train_data, batch_size=2, seq_len=32, generator=torch.Generator().manual_seed(1))
print(repr(tokenizer.decode(x[0])))
print(repr(tokenizer.decode(y[0])))

# %% id="c22" nbgrader={"grade": true, "grade_id": "test_get_batch_visible", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Self-check: `get_batch` (windows, shift by one, shapes, generator) against the reference (3 points).
from gptedu.grading import check

check("get_batch", globals())

# %% id="c23" nbgrader={"grade": true, "grade_id": "test_get_batch_hidden", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds, and no shortcuts (2 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("get_batch", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="c24"
# **Next:** notebook 02 gives the model a sense of position.
