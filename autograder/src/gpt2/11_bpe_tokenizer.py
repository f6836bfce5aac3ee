# %% [markdown] id="d721283b"
# # 11 · A byte-level BPE tokenizer
#
# *Part 2 of "Building a GPT from scratch" (assignment `gpt2`, notebooks 10–14): GPT-2, built and trained.*
#
# **Points in this notebook: 35** (self-checks 19 + hidden tests 16). **Part 2 total: 180 points.**
#
# Part 1 gave every character its own id: 65 ids for TinyShakespeare, but a character carries little meaning and a
# paragraph becomes a long sequence. GPT-2 reads **subword tokens** learned with *byte-pair encoding* (BPE): frequent
# fragments such as `" the"`, `"ing"` or `"ROMEO"` become single tokens. GPT-2's own vocabulary packs about 3.3
# characters of Shakespeare into a token (338,025 tokens for the corpus's 1,115,394 characters, counted with
# `gptedu.gpt2.load_gpt2_tokenizer`), so the same context window holds over three times more text. The
# byte-level BPE below follows GPT-2's (Radford et al. 2019), which adapted the BPE of Sennrich et al. (2016).
#
# Byte-level BPE in four steps:
#
# 1. text → UTF-8 **bytes**: the 256 possible bytes are the first 256 tokens, so any text can be encoded, emoji
#    included — there is no "unknown character";
# 2. a **pre-tokenizer** (a regular expression) cuts the text into chunks: words with their leading space, numbers,
#    punctuation, whitespace; merges never cross a chunk boundary;
# 3. **training**: count adjacent pairs, merge the most frequent pair into a new token, repeat;
# 4. **encoding** a new text: apply the learned merges, in the order they were learned.
#
# You write the small functions; `gptedu.gpt2.BPETokenizer` is the same algorithm made fast, with special tokens and
# files, and can load OpenAI's own GPT-2 vocabulary.

# %% id="9ca16a2b"
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
from collections import Counter

import regex  # like `re`, plus the Unicode classes \p{L} (letters) and \p{N} (numbers)

from gptedu.data import load_tinyshakespeare

# GPT-2's pre-tokenizer: contractions, optional space + letters, optional space + digits,
# optional space + other symbols, then whitespace.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# %% [markdown] id="2bfcb59a"
# ## Text is bytes
#
# UTF-8 writes ASCII characters as one byte each and other characters as two to four bytes:

# %% id="2a60a5d6"
for s in ["A", "é", "東", "🎭"]:
    print(f"{s!r}: {list(s.encode('utf-8'))}")
print(list("café".encode("utf-8")))


# %% [markdown] id="f2a16862"
# ## Exercise 1: `get_pair_counts` (5 points)
#
# Write `get_pair_counts(ids)` that returns a dict mapping every pair of *adjacent* ids `(ids[i], ids[i+1])` (a
# tuple) to the number of times it occurs. Overlapping pairs count: `[5, 5, 5]` has the pair `(5, 5)` twice.

# %% id="c13809f1" nbgrader={"grade": false, "grade_id": "bpe_pair_counts_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def get_pair_counts(ids: list[int]) -> dict[tuple[int, int], int]:
    """{(a, b): how often b follows a in ids}."""
    ### BEGIN SOLUTION
    counts = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts
    ### END SOLUTION


# %% id="d9d7dd1f"
print(get_pair_counts([1, 2, 3, 1, 2]))  # {(1, 2): 2, (2, 3): 1, (3, 1): 1}

# %% id="7143caad" nbgrader={"grade": true, "grade_id": "test_bpe_pair_counts_visible", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Self-check: `get_pair_counts` against the reference (3 points).
from gptedu.grading import check

check("bpe_pair_counts", globals())

# %% id="b7aa8eb5" nbgrader={"grade": true, "grade_id": "test_bpe_pair_counts_hidden", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds (2 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("bpe_pair_counts", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="33ec3ff2"
# ## Exercise 2: `merge` (5 points)
#
# Write `merge(ids, pair, new_id)`: a new list where every occurrence of `pair`, scanning left to right, is replaced
# by `new_id`. Occurrences do not overlap: `merge([5, 5, 5], (5, 5), 256) == [256, 5]`.

# %% id="2a5e5514" nbgrader={"grade": false, "grade_id": "bpe_merge_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace each non-overlapping occurrence of pair (left to right) by new_id."""
    ### BEGIN SOLUTION
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out
    ### END SOLUTION


# %% id="6be463cf"
print(merge([1, 2, 3, 1, 2], (1, 2), 256))  # [256, 3, 256]
print(merge([5, 5, 5], (5, 5), 256))        # [256, 5]

# %% id="4e5135d2" nbgrader={"grade": true, "grade_id": "test_bpe_merge_visible", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Self-check: `merge` against the reference (3 points).
from gptedu.grading import check

check("bpe_merge", globals())

# %% id="a69eeb8d" nbgrader={"grade": true, "grade_id": "test_bpe_merge_hidden", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds (2 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("bpe_merge", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="4d9b426e"
# ## Pre-tokenization
#
# Without it, BPE would happily learn tokens such as `"e t"` or `"d."` that glue the end of one word to the next.
# GPT-2 first cuts the text with `GPT2_PATTERN`; a leading space stays attached to the word that follows:

# %% id="77073398"
print(regex.findall(GPT2_PATTERN, "ROMEO:\nBut soft! What light through yonder window breaks? It's 1595."))


# %% [markdown] id="741a6858"
# ## Exercise 3: `train_bpe` (10 points)
#
# Write `train_bpe(text, num_merges)` returning the merges as a dict `{(a, b): new_id}` in the order they were
# learned (a Python dict keeps insertion order):
#
# 1. cut `text` with `regex.findall(GPT2_PATTERN, text)`; each chunk becomes the list of its UTF-8 bytes. A chunk
#    that occurs `n` times contributes its pairs `n` times (tip: count identical chunks once with `Counter` and
#    weight them);
# 2. for `k = 0, 1, ..., num_merges - 1`: count the pairs over all chunks (never across two chunks), take the most
#    frequent pair — **ties go to the smallest pair** (compare the tuples: `min(counts, key=lambda p: (-counts[p], p))`)
#    — give it the id `256 + k`, and merge it in every chunk;
# 3. stop early if no pair is left.
#
# This simple version recounts everything after each merge. That is fine for a few hundred merges on a few
# thousand characters; `gptedu.gpt2.BPETokenizer.train` updates the counts incrementally to learn thousands of merges
# on the whole corpus in seconds.

# %% id="9f11436f" nbgrader={"grade": false, "grade_id": "bpe_train_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def train_bpe(text: str, num_merges: int) -> dict[tuple[int, int], int]:
    """Learn num_merges merges on text; returns {(a, b): new_id} in learning order (new ids 256, 257, ...)."""
    ### BEGIN SOLUTION
    chunk_counts = Counter(regex.findall(GPT2_PATTERN, text))
    words = {chunk: list(chunk.encode("utf-8")) for chunk in chunk_counts}
    merges = {}
    for k in range(num_merges):
        counts = {}
        for chunk, ids in words.items():
            for pair, c in get_pair_counts(ids).items():
                counts[pair] = counts.get(pair, 0) + c * chunk_counts[chunk]
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        merges[best] = 256 + k
        words = {chunk: merge(ids, best, 256 + k) for chunk, ids in words.items()}
    return merges
    ### END SOLUTION


# %% id="dddbda23"
text = load_tinyshakespeare()
sample = text[:20_000] if QUICK else text[:100_000]
merges = train_bpe(sample, 50)
vocab = {i: bytes([i]) for i in range(256)}
for (a, b), new_id in merges.items():
    vocab[new_id] = vocab[a] + vocab[b]
print("first 15 tokens learned:", [vocab[i].decode("utf-8", errors="replace") for i in range(256, 271)])

# %% id="130b213f" nbgrader={"grade": true, "grade_id": "test_bpe_train_visible", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Self-check: `train_bpe` against the reference (5 points).
from gptedu.grading import check

check("bpe_train", globals())

# %% id="7a383561" nbgrader={"grade": true, "grade_id": "test_bpe_train_hidden", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds (5 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("bpe_train", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="164071a0"
# ## Exercise 4: `encode` (10 points)
#
# To encode a new text, cut it with the same pattern; for each chunk start from its bytes and repeatedly apply the
# merge **learned earliest** among the pairs present (the pair with the smallest new id), until none of its pairs
# is a learned merge; then concatenate the ids of all chunks.
#
# Why the earliest? Training applied merges in that order, so later merges are built on earlier ones: `" th"` must
# exist before `" the"` can.

# %% id="5bfc1acb" nbgrader={"grade": false, "grade_id": "bpe_encode_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def encode(text: str, merges: dict[tuple[int, int], int]) -> list[int]:
    """Text -> token ids with the learned merges."""
    ### BEGIN SOLUTION
    ids = []
    for chunk in regex.findall(GPT2_PATTERN, text):
        chunk_ids = list(chunk.encode("utf-8"))
        while len(chunk_ids) >= 2:
            pairs = get_pair_counts(chunk_ids)
            pair = min(pairs, key=lambda p: merges.get(p, float("inf")))
            if pair not in merges:
                break
            chunk_ids = merge(chunk_ids, pair, merges[pair])
        ids.extend(chunk_ids)
    return ids
    ### END SOLUTION


# %% id="33b6515e" nbgrader={"grade": true, "grade_id": "test_bpe_encode_visible", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Self-check: `encode` against the reference (5 points).
from gptedu.grading import check

check("bpe_encode", globals())

# %% id="c2f42dec" nbgrader={"grade": true, "grade_id": "test_bpe_encode_hidden", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds (5 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("bpe_encode", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="93efa75e"
# ## Exercise 5: `decode` (5 points)
#
# Each token stands for a byte string: `vocab[i] = bytes([i])` for the 256 bytes, and `vocab[new] = vocab[a] +
# vocab[b]` for each merge, built in learning order. Write `decode(ids, merges)`: join the bytes of all tokens, then
# decode **once** with `.decode("utf-8", errors="replace")`. (Decoding token by token would break characters whose
# bytes landed in two tokens; `errors="replace"` turns an incomplete character at the end into `"�"` instead of
# raising.)

# %% id="1e7660cd" nbgrader={"grade": false, "grade_id": "bpe_decode_solution", "locked": false, "schema_version": 3, "solution": true, "task": false}
def decode(ids: list[int], merges: dict[tuple[int, int], int]) -> str:
    """Token ids -> text."""
    ### BEGIN SOLUTION
    vocab = {i: bytes([i]) for i in range(256)}
    for (a, b), new_id in sorted(merges.items(), key=lambda item: item[1]):
        vocab[new_id] = vocab[a] + vocab[b]
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")
    ### END SOLUTION


# %% id="b5c3eeb8"
probe = "JULIET:\nO Romeo, Romeo! wherefore art thou Romeo? 🌹 naïve"
ids = encode(probe, merges)
print(len(probe), "characters ->", len(ids), "tokens; round trip:", decode(ids, merges) == probe)

# %% id="47686655" nbgrader={"grade": true, "grade_id": "test_bpe_decode_visible", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Self-check: `decode` against the reference (3 points).
from gptedu.grading import check

check("bpe_decode", globals())

# %% id="a36c3aaa" nbgrader={"grade": true, "grade_id": "test_bpe_decode_hidden", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hidden tests: other sizes and seeds (2 points).
from gptedu.grading import check

### BEGIN HIDDEN TESTS
check("bpe_decode", globals(), hidden=True)
### END HIDDEN TESTS

# %% [markdown] id="33dfb4c0"
# ## The fast tokenizer, special tokens, and compression
#
# `gptedu.gpt2.BPETokenizer` learns merges with the same rule (same merges as your `train_bpe`) but keeps the pair
# counts up to date after each merge instead of recounting, so it learns thousands of merges on the whole corpus in
# seconds. It adds **special tokens**: `<|endoftext|>` gets its own id after the merges and marks the boundary
# between documents (GPT-2's is 50256 = 256 + 50,000 merges).

# %% id="2eb55303"
import time

from gptedu.gpt2 import BPETokenizer

fast = BPETokenizer.train(sample, vocab_size=256 + 50 + 1)
same = [(fast.token_to_id[a], fast.token_to_id[b]) for a, b in fast.merges] == list(merges)
print("same merges as train_bpe:", same)

corpus = text[:200_000] if QUICK else text  # the autograder measures on a sixth of the corpus
start = time.perf_counter()
tok = BPETokenizer.train(corpus, vocab_size=256 + (500 if QUICK else 2000) + 1)
print(f"{len(tok.merges)} merges on {len(corpus):,} characters in {time.perf_counter() - start:.1f} s")
ids = tok.encode("To be, or not to be<|endoftext|>That is the question")
print(ids[-8:], "eos id:", tok.eos_id)
print(repr(tok.decode(ids)))

# %% [markdown] id="32028b2a"
# How much shorter does the text get? Characters per token on the whole corpus, for the character vocabulary of
# part 1 and for BPE vocabularies of growing size (GPT-2's own 50,257-token vocabulary, trained on web text, gives
# 3.30 characters per token on this corpus):

# %% id="2ed484a5"
import matplotlib.pyplot as plt

sizes = [0, 100, 250, 500] if QUICK else [0, 250, 500, 1000, 2000]
ratios = []
for n in sizes:
    t = tok if n == len(tok.merges) else BPETokenizer.train(corpus, vocab_size=256 + n + 1) if n else None
    n_tokens = len(corpus) if t is None else len(t.encode(corpus))
    ratios.append(len(corpus) / n_tokens)
    print(f"{n:5d} merges: {n_tokens:9,} tokens, {ratios[-1]:.2f} characters per token")
plt.figure(figsize=(5, 3))
plt.plot(sizes, ratios, "o-")
plt.xlabel("merges")
plt.ylabel("characters per token")
plt.title("BPE compression on TinyShakespeare")
plt.show()

# %% [markdown] id="bfce8e9b"
# More merges → fewer, longer tokens, and a bigger embedding table and output head (notebook 10 showed that the
# output head alone holds 38.6M of GPT-2's parameters). The vocabulary size trades sequence length against model
# size.
#
# **Next:** notebook 12 trains a small GPT on TinyShakespeare with this tokenizer.
