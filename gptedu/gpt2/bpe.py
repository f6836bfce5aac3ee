"""A byte-level BPE tokenizer written from scratch (GPT-2's scheme), and a ``tiktoken`` wrapper with its interface.

Byte-level BPE in four ideas:

1. Text → UTF-8 bytes, so *any* text is representable with the 256 byte tokens (ids 0–255): nothing is unknown.
2. A regex pre-tokenizer cuts the text into chunks ("words" with their leading space, numbers, punctuation runs,
   whitespace); merges never cross a chunk boundary.
3. Training: count every adjacent pair of tokens inside the chunks, merge the most frequent pair into a new token,
   repeat. The ordered list of merges *is* the tokenizer.
4. Encoding a chunk: start from its bytes and apply the learned merges in the order they were learned (rank).

Special tokens such as ``<|endoftext|>`` are matched in the text before pre-tokenization and get their own ids
after the merges (for GPT-2: ``50256 = 256 + 50000``).

``BPETokenizer.train`` keeps pair counts incrementally over the *unique* chunks (a word that occurs 500 times is
stored once with its count) and picks the best pair from a heap, so a merge costs time proportional to the words
that contain the pair, not to the corpus.
"""

from __future__ import annotations

import heapq
import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from itertools import pairwise
from pathlib import Path

import regex

# GPT-2's pre-tokenizer (from its released encoder.py): contractions, optional space + letters, optional space +
# digits, optional space + other symbols, whitespace not followed by a non-space, remaining whitespace.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
ENDOFTEXT = "<|endoftext|>"
FORMAT = "gptedu-bpe/1"


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable character table, used in its ``encoder.json`` / ``merges.txt`` files.

    Printable Latin-1 bytes stand for themselves; the other 68 bytes (controls, space, ...) are shifted to
    code points 256, 257, ... (so the space byte 32 is written ``Ġ``, newline ``Ċ``).
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    shift = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shift)
            shift += 1
    return table


_BYTE_TO_CHAR = bytes_to_unicode()
_CHAR_TO_BYTE = {c: b for b, c in _BYTE_TO_CHAR.items()}


def _to_printable(token: bytes) -> str:
    return "".join(_BYTE_TO_CHAR[b] for b in token)


def _from_printable(text: str) -> bytes:
    try:
        return bytes(_CHAR_TO_BYTE[c] for c in text)
    except KeyError as err:
        raise ValueError(f"{text!r} is not written in GPT-2's byte alphabet (bad character {err.args[0]!r}).") from None


def _merge_pair(word: list[int], a: int, b: int, new_id: int) -> list[int]:
    """Replace every non-overlapping ``a, b`` in ``word`` (left to right) by ``new_id``."""
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def get_pair_counts(ids: Sequence[int]) -> dict[tuple[int, int], int]:
    """How often each adjacent pair of ``ids`` occurs, overlapping pairs included (notebook 11's exercise)."""
    return dict(Counter(pairwise(ids)))


def merge(ids: Sequence[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """``ids`` with every non-overlapping ``pair``, left to right, replaced by ``new_id`` (notebook 11's exercise)."""
    return _merge_pair(list(ids), pair[0], pair[1], new_id)


def gpt2_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """Folder holding GPT-2's ``encoder.json`` and ``merges.txt``: ``path``, else ``$GPTEDU_GPT2_DIR``."""
    chosen = path if path is not None else os.environ.get("GPTEDU_GPT2_DIR")
    if chosen is None:
        raise FileNotFoundError(
            "Where are GPT-2's tokenizer files? Pass the folder holding encoder.json and merges.txt (Hugging "
            "Face's gpt2 tokenizer calls the first vocab.json), or set GPTEDU_GPT2_DIR to it."
        )
    folder = Path(chosen).expanduser()
    for name in ("encoder.json", "merges.txt"):
        if not (folder / name).is_file() and not (name == "encoder.json" and (folder / "vocab.json").is_file()):
            raise FileNotFoundError(f"{folder / name} not found: GPT-2's tokenizer needs encoder.json and merges.txt.")
    return folder


class BPETokenizer:
    """Byte-level BPE: ``vocab`` (id → bytes), ordered ``merges`` (pairs of byte strings), ``special_tokens``.

    Build one with ``BPETokenizer.train(text, vocab_size)``, ``BPETokenizer.load(path)`` or
    ``BPETokenizer.from_gpt2_files(folder)`` (OpenAI's own vocabulary → GPT-2's ids).
    ``encode(text) -> list[int]``, ``decode(ids) -> str``; ``decode(encode(t)) == t`` for every string ``t``.
    """

    def __init__(
        self,
        vocab: dict[int, bytes],
        merges: Sequence[tuple[bytes, bytes]],
        special_tokens: dict[str, int] | None = None,
        pattern: str = GPT2_PATTERN,
    ):
        self.vocab = dict(vocab)
        self.merges = [tuple(m) for m in merges]
        self.special_tokens = dict(special_tokens or {})
        self.pattern = pattern
        self.token_to_id = {token: i for i, token in self.vocab.items()}
        self.ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        self.id_to_special = {i: s for s, i in self.special_tokens.items()}
        clash = set(self.id_to_special) & set(self.vocab)
        if clash:
            raise ValueError(f"Special token ids {sorted(clash)} are also ordinary token ids; give them new ids.")
        missing = [bytes([b]) for b in range(256) if bytes([b]) not in self.token_to_id]
        if missing:
            raise ValueError(f"A byte-level vocabulary needs all 256 single bytes; missing {missing[:5]}...")
        for a, b in self.merges:
            if a + b not in self.token_to_id:
                raise ValueError(f"Merge {a!r} + {b!r} produces a token that is not in the vocabulary.")
        self._regex = regex.compile(pattern)
        specials = sorted(self.special_tokens, key=len, reverse=True)  # longest first, so overlaps pick the longest
        self._special_regex = regex.compile("|".join(regex.escape(s) for s in specials)) if specials else None
        self._cache: dict[bytes, list[int]] = {}

    # ---------------------------------------------------------------- training
    @classmethod
    def train(
        cls,
        text: str,
        vocab_size: int,
        special_tokens: Iterable[str] = (ENDOFTEXT,),
        pattern: str = GPT2_PATTERN,
    ) -> BPETokenizer:
        """Learn ``vocab_size - 256 - len(special_tokens)`` merges from ``text``.

        Ids: bytes are ``0..255``, merge ``k`` creates id ``256 + k``, special tokens come last. Ties between
        equally frequent pairs go to the smallest ``(id, id)`` pair, so training is deterministic. Stops early
        (with a smaller vocabulary) when no pair occurs anymore.
        """
        special_tokens = list(dict.fromkeys(special_tokens))
        num_merges = vocab_size - 256 - len(special_tokens)
        if num_merges < 0:
            raise ValueError(
                f"vocab_size={vocab_size} is too small: the 256 bytes and {len(special_tokens)} special tokens "
                f"already need {256 + len(special_tokens)} ids."
            )
        compiled = regex.compile(pattern)
        # Special tokens are not learned from: cut the text at them.
        pieces = regex.split("|".join(regex.escape(s) for s in special_tokens), text) if special_tokens else [text]
        chunk_counts = Counter(chunk for piece in pieces for chunk in compiled.findall(piece))

        words = [list(chunk.encode("utf-8")) for chunk in chunk_counts]
        freqs = list(chunk_counts.values())
        pair_counts: dict[tuple[int, int], int] = defaultdict(int)
        where: dict[tuple[int, int], set[int]] = defaultdict(set)  # pair → words that (may) contain it
        for wi, word in enumerate(words):
            for pair in pairwise(word):
                pair_counts[pair] += freqs[wi]
                where[pair].add(wi)
        heap = [(-count, pair) for pair, count in pair_counts.items()]
        heapq.heapify(heap)

        vocab = {i: bytes([i]) for i in range(256)}
        merges: list[tuple[bytes, bytes]] = []
        for k in range(num_merges):
            # Pop until an entry is current (counts change; old heap entries are skipped, not removed).
            while heap:
                neg_count, pair = heapq.heappop(heap)
                if pair_counts.get(pair, 0) == -neg_count:
                    break
            else:
                break  # nothing left to merge
            new_id = 256 + k
            a, b = pair
            vocab[new_id] = vocab[a] + vocab[b]
            merges.append((vocab[a], vocab[b]))
            touched: set[tuple[int, int]] = set()
            for wi in where.pop(pair):
                word, freq = words[wi], freqs[wi]
                new_word = _merge_pair(word, a, b, new_id)
                if len(new_word) == len(word):
                    continue  # stale entry: this word lost the pair to an earlier merge
                for p in pairwise(word):
                    pair_counts[p] -= freq
                    touched.add(p)
                for p in pairwise(new_word):
                    pair_counts[p] += freq
                    where[p].add(wi)
                    touched.add(p)
                words[wi] = new_word
            for p in touched:
                if pair_counts[p] > 0:
                    heapq.heappush(heap, (-pair_counts[p], p))
                else:
                    del pair_counts[p]
        specials = {s: len(vocab) + i for i, s in enumerate(special_tokens)}
        return cls(vocab, merges, specials, pattern)

    # ---------------------------------------------------------------- encoding / decoding
    @property
    def vocab_size(self) -> int:
        """Number of ids (ordinary + special): one more than the largest id."""
        return max([*self.vocab, *self.id_to_special]) + 1

    @property
    def eos_id(self) -> int | None:
        """Id of ``<|endoftext|>`` if this tokenizer has it."""
        return self.special_tokens.get(ENDOFTEXT)

    def _encode_chunk(self, chunk: bytes) -> list[int]:
        """Apply the merges to one pre-tokenized chunk, lowest rank first (every occurrence at once)."""
        cached = self._cache.get(chunk)
        if cached is not None:
            return cached
        parts = [bytes([b]) for b in chunk]
        while len(parts) > 1:
            pair = min(pairwise(parts), key=lambda p: self.ranks.get(p, len(self.ranks)))
            if pair not in self.ranks:
                break
            merged, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == pair[0] and parts[i + 1] == pair[1]:
                    merged.append(pair[0] + pair[1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        ids = [self.token_to_id[p] for p in parts]
        if len(self._cache) < 100_000:
            self._cache[chunk] = ids
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode ``text`` treating special-token strings as plain text."""
        ids: list[int] = []
        for chunk in self._regex.findall(text):
            ids.extend(self._encode_chunk(chunk.encode("utf-8")))
        return ids

    def encode(self, text: str, allowed_special: str | Iterable[str] = "all") -> list[int]:
        """Text → token ids. Special tokens in ``allowed_special`` (``"all"``, ``"none"`` or a set) get their own
        ids; any other special-token string is encoded as ordinary text."""
        if not isinstance(text, str):
            raise TypeError(f"encode() takes a str, got {type(text).__name__}; decode bytes with .decode('utf-8').")
        if allowed_special == "all":
            allowed = set(self.special_tokens)
        elif allowed_special == "none":
            allowed = set()
        else:
            allowed = set(allowed_special) & set(self.special_tokens)
        if not allowed or self._special_regex is None:
            return self.encode_ordinary(text)
        pattern = regex.compile("|".join(regex.escape(s) for s in sorted(allowed, key=len, reverse=True)))
        ids: list[int] = []
        start = 0
        for match in pattern.finditer(text):
            ids.extend(self.encode_ordinary(text[start : match.start()]))
            ids.append(self.special_tokens[match.group()])
            start = match.end()
        ids.extend(self.encode_ordinary(text[start:]))
        return ids

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        out = []
        for i in ids:
            i = int(i)
            if i in self.vocab:
                out.append(self.vocab[i])
            elif i in self.id_to_special:
                out.append(self.id_to_special[i].encode("utf-8"))
            else:
                raise ValueError(f"Token id {i} is not in this tokenizer's vocabulary (ids 0..{self.vocab_size - 1}).")
        return b"".join(out)

    def decode(self, ids: Iterable[int]) -> str:
        """Token ids → text. A sequence cut in the middle of a multi-byte character decodes that character as
        U+FFFD (``errors="replace"``) instead of failing."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        specials = list(self.special_tokens)
        return f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, special={specials})"

    # ---------------------------------------------------------------- files
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write one JSON file: vocabulary and merges in GPT-2's printable byte alphabet, plus specials and regex."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "format": FORMAT,
            "pattern": self.pattern,
            "special_tokens": self.special_tokens,
            "vocab": {_to_printable(token): i for i, token in sorted(self.vocab.items())},
            "merges": [f"{_to_printable(a)} {_to_printable(b)}" for a, b in self.merges],
        }
        path.write_text(json.dumps(data, ensure_ascii=False, indent=0), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BPETokenizer:
        """Read a file written by ``save``."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"No tokenizer file at {path}; BPETokenizer.save(path) writes one.")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path} is not a tokenizer JSON file ({err}).") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(
                f"{path} was not written by BPETokenizer.save (expected format {FORMAT!r}). For GPT-2's "
                "encoder.json + merges.txt use BPETokenizer.from_gpt2_files(folder)."
            )
        vocab = {i: _from_printable(s) for s, i in data["vocab"].items()}
        merges = [tuple(_from_printable(s) for s in line.split(" ")) for line in data["merges"]]
        return cls(vocab, merges, data["special_tokens"], data["pattern"])

    @classmethod
    def from_gpt2_files(cls, folder: str | os.PathLike[str] | None = None) -> BPETokenizer:
        """OpenAI's GPT-2 tokenizer from ``encoder.json`` (or ``vocab.json``) and ``merges.txt`` (or ``vocab.bpe``)
        in ``folder`` (default ``$GPTEDU_GPT2_DIR``); produces GPT-2's ids (``<|endoftext|>`` = 50256)."""
        folder = gpt2_dir(folder)
        encoder_path = folder / "encoder.json" if (folder / "encoder.json").is_file() else folder / "vocab.json"
        encoder = json.loads(encoder_path.read_text(encoding="utf-8"))
        lines = (folder / "merges.txt").read_text(encoding="utf-8").split("\n")
        merges = []
        for line in lines:
            if not line or line.startswith("#version"):
                continue
            a, b = line.split(" ")
            merges.append((_from_printable(a), _from_printable(b)))
        specials = {s: i for s, i in encoder.items() if s == ENDOFTEXT}
        vocab = {i: _from_printable(s) for s, i in encoder.items() if s not in specials}
        return cls(vocab, merges, specials, GPT2_PATTERN)


class TiktokenBPE:
    """The same interface (``encode``, ``decode``, ``vocab_size``, ``eos_id``, ``special_tokens``) over a
    ``tiktoken.Encoding`` — OpenAI's fast Rust implementation.

    ``TiktokenBPE.gpt2(folder)`` builds GPT-2's encoding from the local ``encoder.json`` + ``merges.txt`` (no
    download); ``TiktokenBPE.from_bpe(tok)`` converts a trained ``BPETokenizer`` (its ids are its merge ranks).
    """

    def __init__(self, encoding):
        self.encoding = encoding
        self.special_tokens = {s: encoding.encode_single_token(s) for s in encoding.special_tokens_set}

    @classmethod
    def from_bpe(cls, tok: BPETokenizer, name: str = "gptedu-bpe") -> TiktokenBPE:
        import tiktoken

        return cls(
            tiktoken.Encoding(
                name=name,
                pat_str=tok.pattern,
                mergeable_ranks={token: i for i, token in tok.vocab.items()},
                special_tokens=dict(tok.special_tokens),
            )
        )

    @classmethod
    def gpt2(cls, folder: str | os.PathLike[str] | None = None) -> TiktokenBPE:
        return cls.from_bpe(BPETokenizer.from_gpt2_files(folder), name="gpt2-local")

    @property
    def vocab_size(self) -> int:
        return self.encoding.n_vocab

    @property
    def eos_id(self) -> int | None:
        return self.special_tokens.get(ENDOFTEXT)

    def encode(self, text: str, allowed_special: str | Iterable[str] = "all") -> list[int]:
        if allowed_special == "none":
            allowed_special = set()
        elif allowed_special != "all":
            allowed_special = set(allowed_special) & set(self.special_tokens)
        return self.encoding.encode(text, allowed_special=allowed_special, disallowed_special=())

    def decode(self, ids: Iterable[int]) -> str:
        return self.encoding.decode([int(i) for i in ids])

    def __len__(self) -> int:
        return self.vocab_size


def load_gpt2_tokenizer(folder: str | os.PathLike[str] | None = None, backend: str = "gptedu"):
    """GPT-2's tokenizer from local files: ``backend="gptedu"`` (``BPETokenizer``) or ``"tiktoken"``."""
    if backend == "gptedu":
        return BPETokenizer.from_gpt2_files(folder)
    if backend == "tiktoken":
        return TiktokenBPE.gpt2(folder)
    raise ValueError(f"backend must be 'gptedu' or 'tiktoken', got {backend!r}.")
