"""The training text: find TinyShakespeare (or your own file), read it, and check it is text a model can learn from.

The corpus is looked up, in order, from an explicit path, the ``GPTEDU_DATA`` environment variable, the user cache
(``$XDG_CACHE_HOME/gptedu`` or ``~/.cache/gptedu``), and finally downloaded from its canonical URL and checked
against its SHA-256.

``read_corpus`` refuses, naming the file and the fix, what would otherwise fail deep inside training or train
silently on nothing: a file that is not UTF-8 text (the byte offset of the first bad byte is given), NUL bytes (a
binary file), and a text with fewer than two distinct characters (nothing to predict: the loss is 0 from the start).

This module needs only the standard library, so the command line checks ``--data`` before PyTorch loads;
``gptedu.data`` re-exports everything here.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

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
    """The whole TinyShakespeare text (1,115,394 characters), or the text at ``path``, checked by ``read_corpus``."""
    return read_corpus(find_tinyshakespeare(path))


MIN_DISTINCT_CHARACTERS = 2


class CorpusError(ValueError):
    """A corpus file that exists but cannot be trained on (not UTF-8 text, binary, no vocabulary)."""


def read_corpus(path: str | os.PathLike[str], origin: str = "The training text") -> str:
    """Read ``path`` as UTF-8 text and check it can be trained on; ``CorpusError`` naming the file otherwise."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"{origin} {path} cannot be read ({exc.strerror or exc}); check its permissions.") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"{origin} {path} is not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start} cannot be decoded "
            "(a binary file, or text saved in another encoding?). Pass a plain-text file, or convert it to UTF-8 "
            "(e.g. iconv -f latin1 -t utf-8)."
        ) from None
    check_corpus_text(text, f"{origin} {path}")
    return text


def check_corpus_text(text: str, origin: str = "The training text") -> None:
    """``CorpusError`` when ``text`` cannot teach a character model anything (see the module docstring)."""
    if "\x00" in text:
        raise CorpusError(
            f"{origin} contains NUL bytes (the first at character {text.index(chr(0))}): it is a binary file, not "
            "text. Pass a plain-text file."
        )
    distinct = sorted(set(text))
    if len(distinct) < MIN_DISTINCT_CHARACTERS:
        what = "is empty" if not text else f"has a single distinct character ({distinct[0]!r})"
        raise CorpusError(
            f"{origin} {what}: there is nothing to predict, so training would learn nothing. Pass a real text "
            "(TinyShakespeare has 65 distinct characters)."
        )


