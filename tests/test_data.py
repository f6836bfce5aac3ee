"""The corpus, the character vocabulary, the contiguous split and the lazy windows."""

from __future__ import annotations

import hashlib

import pytest
import torch

from gptedu import corpus, data
from gptedu.data import (
    CharTokenizer,
    CorpusNotFoundError,
    TextDataset,
    TokenWindows,
    find_tinyshakespeare,
    get_batch,
    make_dataloaders,
    split_contiguous,
)


def test_corpus_is_the_real_tinyshakespeare(corpus_text):
    raw = find_tinyshakespeare().read_bytes()
    assert len(raw) == data.TINYSHAKESPEARE_BYTES
    assert hashlib.sha256(raw).hexdigest() == data.TINYSHAKESPEARE_SHA256
    assert corpus_text.startswith("First Citizen:")


def test_vocab_size_and_split_sizes(corpus_text):
    tok = CharTokenizer.from_text(corpus_text)
    assert tok.vocab_size == 65
    assert tok.chars == sorted(set(corpus_text))
    ids = torch.tensor(tok.encode(corpus_text))
    train, val = split_contiguous(ids, 0.9)
    assert (len(train), len(val)) == (1_003_854, 111_540)
    # Contiguous: val is exactly the tail of the text, so no val character sits inside a training window.
    assert tok.decode(val[:20]) == corpus_text[1_003_854 : 1_003_874]


def test_encode_decode_round_trip_and_unknown_character():
    tok = CharTokenizer.from_text("hello world")
    assert tok.decode(tok.encode("hello")) == "hello"
    assert tok.s2i["d"] == 1 and tok.i2s[1] == "d"
    with pytest.raises(ValueError, match=r"outside the vocabulary: 'Z'"):
        tok.encode("hello Zed")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([99])


def test_explicit_path_env_var_and_directory(tmp_path, monkeypatch):
    corpus = tmp_path / "tinyshakespeare" / "input.txt"
    corpus.parent.mkdir()
    corpus.write_text("abc")
    assert find_tinyshakespeare(corpus) == corpus
    assert find_tinyshakespeare(tmp_path) == corpus  # a directory holding tinyshakespeare/input.txt
    monkeypatch.setenv("GPTEDU_DATA", str(corpus))
    assert find_tinyshakespeare() == corpus
    monkeypatch.setenv("GPTEDU_DATA", str(tmp_path / "nope.txt"))
    with pytest.raises(CorpusNotFoundError, match="does not exist"):
        find_tinyshakespeare()


def test_cache_then_offline_error_names_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv("GPTEDU_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise corpus.urllib.error.URLError("no network")

    monkeypatch.setattr(corpus.urllib.request, "urlopen", offline)
    with pytest.raises(CorpusNotFoundError) as err:
        find_tinyshakespeare()
    expected = tmp_path / "gptedu" / "tinyshakespeare" / "input.txt"
    assert str(expected) in str(err.value) and "GPTEDU_DATA" in str(err.value)
    assert not expected.exists() and not expected.with_suffix(".part").exists()
    expected.write_text("cached")
    assert find_tinyshakespeare() == expected


def test_download_rejects_a_wrong_checksum(tmp_path, monkeypatch):
    class FakeResponse:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            return b"not shakespeare"

    monkeypatch.setattr(corpus.urllib.request, "urlopen", lambda *a, **k: FakeResponse())
    dest = tmp_path / "input.txt"
    with pytest.raises(CorpusNotFoundError, match="SHA-256"):
        corpus._download(dest)
    assert not dest.exists()


def test_download_keeps_a_verified_file(tmp_path, monkeypatch):
    payload = b"To be, or not to be"
    monkeypatch.setattr(corpus, "TINYSHAKESPEARE_SHA256", hashlib.sha256(payload).hexdigest())

    class FakeResponse:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            return payload

    monkeypatch.setattr(corpus.urllib.request, "urlopen", lambda *a, **k: FakeResponse())
    dest = tmp_path / "sub" / "input.txt"
    assert corpus._download(dest) == dest and dest.read_bytes() == payload


def test_text_dataset_pairs_sources_and_targets():
    ds = TextDataset([[1, 2, 3], [4, 5, 6]], [[2, 3, 4], [5, 6, 7]])
    assert len(ds) == 2
    src, tgt = ds[1]
    assert src.dtype == torch.long and src.tolist() == [4, 5, 6] and tgt.tolist() == [5, 6, 7]
    with pytest.raises(ValueError, match="pair up"):
        TextDataset([[1]], [])


def test_token_windows_are_lazy_shifted_views():
    tokens = torch.arange(100)
    ds = TokenWindows(tokens, seq_len=8)
    assert len(ds) == 92
    x, y = ds[5]
    assert x.tolist() == list(range(5, 13)) and y.tolist() == list(range(6, 14))
    assert x.untyped_storage().data_ptr() == tokens.untyped_storage().data_ptr()  # a view, no copy
    x_last, y_last = ds[-1]
    assert y_last[-1].item() == 99
    with pytest.raises(IndexError):
        ds[92]


def test_get_batch_is_shifted_and_reproducible():
    tokens = torch.arange(1000)
    x1, y1 = get_batch(tokens, 4, 16, torch.Generator().manual_seed(3))
    x2, y2 = get_batch(tokens, 4, 16, torch.Generator().manual_seed(3))
    assert x1.shape == (4, 16) and torch.equal(y1, x1 + 1)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_make_dataloaders_split_without_overlap():
    text = "".join(chr(ord("a") + i % 26) for i in range(2000))
    train_loader, val_loader, tok = make_dataloaders(text, seq_len=10, batch_size=8)
    assert tok.vocab_size == 26
    assert len(train_loader.dataset) == 1800 - 10 and len(val_loader.dataset) == 200 - 10
    xb, yb = next(iter(train_loader))
    assert xb.shape == (8, 10) and yb.shape == (8, 10)


def test_env_var_may_point_to_a_directory(monkeypatch, corpus_text):
    path = find_tinyshakespeare()
    monkeypatch.setenv("GPTEDU_DATA", str(path.parent))
    assert find_tinyshakespeare() == path
