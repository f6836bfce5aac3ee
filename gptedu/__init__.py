"""gptedu — build a GPT from scratch, one idea at a time.

``gptedu.char`` is part 1 (the homework's character-level GPT), ``gptedu.gpt2`` is part 2 ("Let's build GPT-2").
The part-1 classes are re-exported here: ``from gptedu import GPTModel``.
"""

from gptedu.char import (
    CharGPTConfig,
    FeedForward,
    GPTModel,
    Head,
    MultiHeadAttention,
    PositionalEncoding,
    TransformerDecoder,
    TransformerDecoderLayer,
    evaluate,
    train,
)
from gptedu.data import CharTokenizer, TextDataset, TokenWindows, load_tinyshakespeare

__version__ = "0.1.0"

__all__ = [
    "CharGPTConfig",
    "CharTokenizer",
    "FeedForward",
    "GPTModel",
    "Head",
    "MultiHeadAttention",
    "PositionalEncoding",
    "TextDataset",
    "TokenWindows",
    "TransformerDecoder",
    "TransformerDecoderLayer",
    "evaluate",
    "load_tinyshakespeare",
    "train",
]
