"""Byte-level BPE: training, round trips (property test), special tokens, save/load, GPT-2's ids, tiktoken."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptedu.gpt2.bpe import ENDOFTEXT, BPETokenizer, TiktokenBPE, bytes_to_unicode, load_gpt2_tokenizer

GPT2_DIR = Path(os.environ.get("GPTEDU_GPT2_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "gpt2"))
needs_gpt2 = pytest.mark.skipif(
    not (GPT2_DIR / "encoder.json").is_file() and not os.environ.get("CI"),  # CI has the files: never skip there
    reason=f"GPT-2 vocabulary not found at {GPT2_DIR}",
)


@pytest.fixture(scope="module")
def shakespeare_bpe(corpus_text) -> BPETokenizer:
    return BPETokenizer.train(corpus_text[:200_000], vocab_size=256 + 300 + 1)


@pytest.fixture(scope="module")
def gpt2_tok() -> BPETokenizer:
    return BPETokenizer.from_gpt2_files(GPT2_DIR)


unicode_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200)  # Cs: lone surrogates


def test_first_merge_is_the_most_frequent_pair():
    tok = BPETokenizer.train("aaab aaab aaab xy", vocab_size=256 + 2, special_tokens=())
    assert tok.merges[0] == (b"a", b"a")  # "aa" occurs 6 times (2 per "aaab", overlapping counted)
    # then "aaab" is [aa, a, b]: (aa, a) and (a, b) both occur 3 times; ties go to the smaller ids: (97, 98)
    assert tok.vocab[256] == b"aa" and tok.merges[1] == (b"a", b"b") and tok.vocab[257] == b"ab"
    assert tok.encode("aaab") == tok.encode_ordinary("aaab") and len(tok.encode("aaab")) < 4


def test_training_counts_match_a_naive_recount(corpus_text):
    """The incremental pair counts pick the same pairs as recounting everything after every merge."""
    text = corpus_text[:3000]
    tok = BPETokenizer.train(text, vocab_size=256 + 30, special_tokens=())
    words = Counter(tok._regex.findall(text))
    seqs = {w: [bytes([b]) for b in w.encode()] for w in words}
    for a, b in tok.merges:
        counts = Counter()
        for w, seq in seqs.items():
            for pair in zip(seq, seq[1:], strict=False):
                counts[pair] += words[w]
        best = max(counts.values())
        assert counts[(a, b)] == best, f"merged {(a, b)} with count {counts[(a, b)]}, but the best count is {best}"
        for w, seq in seqs.items():
            out, i = [], 0
            while i < len(seq):
                if i + 1 < len(seq) and (seq[i], seq[i + 1]) == (a, b):
                    out.append(a + b)
                    i += 2
                else:
                    out.append(seq[i])
                    i += 1
            seqs[w] = out


def test_vocab_layout_and_compression(shakespeare_bpe, corpus_text):
    tok = shakespeare_bpe
    assert tok.vocab_size == 557 and tok.eos_id == 556
    assert all(tok.vocab[i] == bytes([i]) for i in range(256))
    sample = corpus_text[200_000:220_000]
    ids = tok.encode(sample)
    assert tok.decode(ids) == sample
    assert len(sample) / len(ids) > 1.9  # 300 merges already about halve the length vs characters


@settings(max_examples=150, deadline=None)
@given(text=unicode_text)
def test_round_trip_on_random_unicode(shakespeare_bpe, text):
    assert shakespeare_bpe.decode(shakespeare_bpe.encode(text)) == text


@settings(max_examples=50, deadline=None)
@given(parts=st.lists(st.one_of(unicode_text, st.just(ENDOFTEXT)), max_size=5))
def test_special_tokens_are_single_ids_and_round_trip(shakespeare_bpe, parts):
    text = "".join(parts)
    ids = shakespeare_bpe.encode(text)
    assert shakespeare_bpe.decode(ids) == text
    assert ids.count(shakespeare_bpe.eos_id) == text.count(ENDOFTEXT)
    plain = shakespeare_bpe.encode(text, allowed_special="none")
    assert shakespeare_bpe.eos_id not in plain and shakespeare_bpe.decode(plain) == text


def test_special_tokens_are_not_learned_as_merges():
    text = "ab<|endoftext|>ab<|endoftext|>ab<|endoftext|>"
    tok = BPETokenizer.train(text, vocab_size=256 + 10 + 1)
    assert all(b"|" not in tok.vocab[i] or len(tok.vocab[i]) == 1 for i in tok.vocab)
    assert tok.encode(text) == [tok.token_to_id[b"ab"], tok.eos_id] * 3


def test_training_is_deterministic_and_validates_size(corpus_text):
    a = BPETokenizer.train(corpus_text[:5000], vocab_size=300)
    b = BPETokenizer.train(corpus_text[:5000], vocab_size=300)
    assert a.merges == b.merges
    with pytest.raises(ValueError, match="too small"):
        BPETokenizer.train("abc", vocab_size=100)


def test_decode_errors_and_partial_characters(shakespeare_bpe):
    with pytest.raises(ValueError, match="not in this tokenizer's vocabulary"):
        shakespeare_bpe.decode([99_999])
    euro = shakespeare_bpe.encode("€")  # three bytes, no merge for them
    assert shakespeare_bpe.decode(euro[:1]) == "\ufffd"
    with pytest.raises(TypeError, match="takes a str"):
        shakespeare_bpe.encode(b"bytes")


def test_save_load_round_trip(shakespeare_bpe, tmp_path):
    path = shakespeare_bpe.save(tmp_path / "tok.json")
    loaded = BPETokenizer.load(path)
    assert loaded.merges == shakespeare_bpe.merges and loaded.special_tokens == shakespeare_bpe.special_tokens
    text = "Thou art\n\tmore lovely — ünïcødé 🎭 <|endoftext|>"
    assert loaded.encode(text) == shakespeare_bpe.encode(text)
    (tmp_path / "bad.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(ValueError, match="not written by BPETokenizer.save"):
        BPETokenizer.load(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError):
        BPETokenizer.load(tmp_path / "missing.json")


def test_bytes_to_unicode_is_a_bijection_onto_printable_characters():
    table = bytes_to_unicode()
    assert len(set(table.values())) == 256
    assert table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ" and table[ord("A")] == "A"
    assert all(c.isprintable() and not c.isspace() for c in table.values())


@needs_gpt2
def test_gpt2_vocabulary_gives_gpt2_ids(gpt2_tok):
    assert gpt2_tok.vocab_size == 50257 and gpt2_tok.eos_id == 50256
    # Well-known GPT-2 ids: "Hello" 15496, "," 11, " world" 995, "!" 0, "\n" 198.
    assert gpt2_tok.encode("Hello, world!\n") == [15496, 11, 995, 0, 198]
    assert gpt2_tok.encode("<|endoftext|>") == [50256]


@needs_gpt2
def test_gpt2_ids_equal_tiktoken(gpt2_tok, corpus_text):
    tik = TiktokenBPE.gpt2(GPT2_DIR)
    assert tik.vocab_size == 50257 and tik.eos_id == 50256
    text = corpus_text[:30_000] + " naïve café 東京 🎭 it's   spaced\n\n 12345 <|endoftext|> über"
    ids = gpt2_tok.encode(text)
    assert ids == tik.encode(text)
    assert tik.decode(ids) == gpt2_tok.decode(ids) == text
    assert gpt2_tok.encode(text, allowed_special="none") == tik.encode(text, allowed_special="none")
    assert load_gpt2_tokenizer(GPT2_DIR, backend="tiktoken").encode("Hi there") == gpt2_tok.encode("Hi there")


@needs_gpt2
@settings(max_examples=60, deadline=None)
@given(text=unicode_text)
def test_gpt2_round_trip_and_tiktoken_agree_on_random_text(gpt2_tok, text):
    ids = gpt2_tok.encode(text)
    assert gpt2_tok.decode(ids) == text
    assert ids == _tiktoken_gpt2().encode(text)


_TIK = {}


def _tiktoken_gpt2() -> TiktokenBPE:
    if "gpt2" not in _TIK:
        _TIK["gpt2"] = TiktokenBPE.gpt2(GPT2_DIR)
    return _TIK["gpt2"]


def test_trained_tokenizer_wrapped_by_tiktoken_gives_the_same_ids(shakespeare_bpe, corpus_text):
    tik = TiktokenBPE.from_bpe(shakespeare_bpe)
    text = corpus_text[300_000:310_000] + " <|endoftext|> ünïcødé"
    assert tik.encode(text) == shakespeare_bpe.encode(text)
