"""gptedu — build a GPT from scratch, one idea at a time.

``gptedu.char`` is part 1 (a character-level GPT, notebooks 01-09), ``gptedu.gpt2`` is part 2 (GPT-2, notebooks 10-14).
The part-1 classes are re-exported here: ``from gptedu import GPTModel``.

The re-exports are loaded on first use (PEP 562 module ``__getattr__``): ``import gptedu`` and
``import gptedu.grading.sandbox_nbgrader`` (which nbgrader loads with the course configuration, for every command)
do not import torch; ``from gptedu import GPTModel`` does, as before.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# name -> module that defines it
_EXPORTS = {
    "CharGPTConfig": "gptedu.char",
    "FeedForward": "gptedu.char",
    "GPTModel": "gptedu.char",
    "Head": "gptedu.char",
    "MultiHeadAttention": "gptedu.char",
    "PositionalEncoding": "gptedu.char",
    "TransformerDecoder": "gptedu.char",
    "TransformerDecoderLayer": "gptedu.char",
    "evaluate": "gptedu.char",
    "train": "gptedu.char",
    "CharTokenizer": "gptedu.data",
    "TextDataset": "gptedu.data",
    "TokenWindows": "gptedu.data",
    "load_tinyshakespeare": "gptedu.data",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    else:
        try:  # a submodule used as an attribute (``import gptedu; gptedu.char.Head``)
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
