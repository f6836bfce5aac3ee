"""Data: find the TinyShakespeare corpus, a character vocabulary, datasets and loaders.

The corpus is looked up, in order, from an explicit path, the ``GPTEDU_DATA`` environment variable, the
user cache (``$XDG_CACHE_HOME/gptedu`` or ``~/.cache/gptedu``), and finally downloaded from its canonical URL
and checked against its SHA-256.

Batches come from one token tensor indexed lazily (``TokenWindows``), never from a Python list of every
overlapping window, and the train/val split is contiguous so no validation text leaks into training.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

TINYSHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
TINYSHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
TINYSHAKESPEARE_BYTES = 1_115_394
ENV_VAR = "GPTEDU_DATA"


class CorpusNotFoundError(FileNotFoundError):
    """Raised when TinyShakespeare is nowhere to be found and cannot be downloaded."""


def cache_dir() -> Path:
    """The directory where gptedu caches downloads: ``$XDG_CACHE_HOME/gptedu`` or ``~/.cache/gptedu``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gptedu"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _resolve(candidate: str | os.PathLike[str], origin: str) -> Path:
    """Accept a file, or a directory holding ``input.txt`` or ``tinyshakespeare/input.txt``."""
    path = Path(candidate).expanduser()
    if path.is_dir():
        for inner in (path / "input.txt", path / "tinyshakespeare" / "input.txt"):
            if inner.is_file():
                return inner
        raise CorpusNotFoundError(
            f"{origin} points to the directory {path}, which holds neither input.txt nor tinyshakespeare/input.txt. "
            "Point it at the TinyShakespeare file itself."
        )
    if not path.is_file():
        raise CorpusNotFoundError(f"{origin} points to {path}, which does not exist. Fix the path or unset it.")
    return path


def _download(dest: Path, url: str = TINYSHAKESPEARE_URL) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".part")
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(tmp, "wb") as fh:
            fh.write(response.read())
    except (urllib.error.URLError, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise CorpusNotFoundError(
            f"TinyShakespeare is not on this machine and the download from {url} failed ({exc}).\n"
            f"Fix: download input.txt by hand and either put it at {dest}, or set {ENV_VAR}=/path/to/input.txt, "
            "or pass the path explicitly (find_tinyshakespeare(path=...) / --data on the command line)."
        ) from exc
    got = _sha256(tmp)
    if got != TINYSHAKESPEARE_SHA256:
        tmp.unlink(missing_ok=True)
        raise CorpusNotFoundError(
            f"The file downloaded from {url} has SHA-256 {got}, expected {TINYSHAKESPEARE_SHA256}; it was discarded."
        )
    tmp.replace(dest)
    return dest


def find_tinyshakespeare(path: str | os.PathLike[str] | None = None, download: bool = True) -> Path:
    """Return the path of TinyShakespeare's ``input.txt``.

    Looks at ``path``, then ``$GPTEDU_DATA``, then the cache, then downloads (verifying the SHA-256).
    """
    if path is not None:
        return _resolve(path, "The path you passed")
    if os.environ.get(ENV_VAR):
        return _resolve(os.environ[ENV_VAR], f"${ENV_VAR}")
    cached = cache_dir() / "tinyshakespeare" / "input.txt"
    if cached.is_file():
        return cached
    if not download:
        raise CorpusNotFoundError(
            f"TinyShakespeare not found. Put input.txt at {cached}, or set {ENV_VAR}=/path/to/input.txt."
        )
    return _download(cached)


def load_tinyshakespeare(path: str | os.PathLike[str] | None = None) -> str:
    """The whole TinyShakespeare text (1,115,394 characters)."""
    return find_tinyshakespeare(path).read_text(encoding="utf-8")


class CharTokenizer:
    """A character-level vocabulary: ``chars = sorted(set(text))``, ``s2i``, ``i2s``, ``encode``, ``decode``.

    TinyShakespeare gives ``vocab_size == 65``.
    """

    def __init__(self, chars: Sequence[str]):
        chars = list(chars)
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise ValueError("CharTokenizer needs a list of distinct single characters, e.g. sorted(set(text)).")
        self.chars: list[str] = chars
        self.s2i: dict[str, int] = {ch: i for i, ch in enumerate(chars)}
        self.i2s: dict[int, str] = dict(enumerate(chars))

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        """Map a string to a list of token ids; unknown characters raise ``ValueError`` naming them."""
        try:
            return [self.s2i[ch] for ch in text]
        except KeyError:
            unknown = sorted({ch for ch in text if ch not in self.s2i})
            shown = ", ".join(repr(ch) for ch in unknown[:10])
            raise ValueError(
                f"The text contains {len(unknown)} character(s) outside the vocabulary: {shown}. "
                f"The vocabulary has {self.vocab_size} characters from the training text; "
                "remove or replace those characters."
            ) from None

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Map token ids back to a string."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        try:
            return "".join(self.i2s[int(i)] for i in ids)
        except KeyError as exc:
            raise ValueError(f"Token id {exc.args[0]} is outside the vocabulary (0..{self.vocab_size - 1}).") from None

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


def split_contiguous(data: torch.Tensor, train_fraction: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a 1-D token tensor into a contiguous head (train) and tail (val).

    For TinyShakespeare at 0.9 this gives 1,003,854 / 111,540 characters. Splitting *windows* at random
    instead would put almost every validation character inside some training window too.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be between 0 and 1 (exclusive), got {train_fraction}.")
    n = int(train_fraction * len(data))
    return data[:n], data[n:]


class TextDataset(Dataset):
    """The homework's dataset: parallel lists of source and target sequences.

    ``__getitem__(i)`` returns ``(src, tgt)`` as ``torch.long`` tensors of shape ``(seq,)``.
    """

    def __init__(self, src_seqs: Sequence[Sequence[int]], tgt_seqs: Sequence[Sequence[int]]):
        if len(src_seqs) != len(tgt_seqs):
            raise ValueError(
                f"TextDataset got {len(src_seqs)} source and {len(tgt_seqs)} target sequences; they must pair up."
            )
        self.src_seqs = src_seqs
        self.tgt_seqs = tgt_seqs

    def __len__(self) -> int:
        return len(self.src_seqs)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        return (
            torch.as_tensor(self.src_seqs[idx], dtype=torch.long),
            torch.as_tensor(self.tgt_seqs[idx], dtype=torch.long),
        )


class TokenWindows(Dataset):
    """Every overlapping window of one token tensor, indexed lazily.

    Item ``i`` is ``(data[i : i+seq_len], data[i+1 : i+seq_len+1])``: the target is the source shifted by one.
    Memory stays one tensor of the corpus, whatever the number of windows.
    """

    def __init__(self, data: torch.Tensor, seq_len: int):
        if data.dim() != 1:
            raise ValueError(f"TokenWindows expects a 1-D tensor of token ids, got shape {tuple(data.shape)}.")
        if len(data) <= seq_len:
            raise ValueError(f"The data has {len(data)} tokens: too short for windows of seq_len={seq_len} + 1.")
        self.data = data.long()
        self.seq_len = seq_len

    def __len__(self) -> int:
        return len(self.data) - self.seq_len

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        if idx < 0:
            idx += len(self)
        if not 0 <= idx < len(self):
            raise IndexError(f"window {idx} out of range for {len(self)} windows")
        chunk = self.data[idx : idx + self.seq_len + 1]
        return chunk[:-1], chunk[1:]


def get_batch(
    data: torch.Tensor, batch_size: int, seq_len: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``batch_size`` random windows: ``x, y`` of shape ``(batch, seq)``, ``y`` shifted by one."""
    starts = torch.randint(len(data) - seq_len, (batch_size,), generator=generator)
    offsets = torch.arange(seq_len + 1)
    chunks = data[starts[:, None] + offsets]
    return chunks[:, :-1].long(), chunks[:, 1:].long()


def make_dataloaders(
    text: str,
    seq_len: int,
    batch_size: int,
    train_fraction: float = 0.9,
    tokenizer: CharTokenizer | None = None,
    seed: int = 0,
) -> tuple[DataLoader, DataLoader, CharTokenizer]:
    """Train/val ``DataLoader``s over lazy windows of a contiguous split, and the tokenizer.

    Returns ``(train_loader, val_loader, tokenizer)``; batches are ``(x, y)`` of shape ``(batch, seq_len)``.
    """
    tokenizer = tokenizer or CharTokenizer.from_text(text)
    data = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    train_data, val_data = split_contiguous(data, train_fraction)
    gen = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(TokenWindows(train_data, seq_len), batch_size=batch_size, shuffle=True, generator=gen)
    val_loader = DataLoader(TokenWindows(val_data, seq_len), batch_size=batch_size, shuffle=False)
    return train_loader, val_loader, tokenizer
