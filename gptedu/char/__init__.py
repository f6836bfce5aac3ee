"""Part 1 — a character-level GPT, one module per notebook step.

=====================  ==========================================  ==========
notebook               classes / functions                         module
=====================  ==========================================  ==========
01 data                ``CharTokenizer``, ``TextDataset``           ``gptedu.data``
02 positional encoding ``PositionalEncoding``                       ``positional``
03 single head         ``Head``                                     ``attention``
04 multi-head          ``MultiHeadAttention``                       ``attention``
05 feed-forward        ``FeedForward``                              ``feedforward``
06 decoder layer       ``TransformerDecoderLayer``                  ``decoder``
07 GPT                 ``TransformerDecoder``, ``GPTModel``         ``decoder``, ``model``
08 training            ``train``, ``evaluate``                      ``loop``
09 generation          ``GPTModel.generate``                        ``model``
=====================  ==========================================  ==========
"""

from gptedu.char.attention import Head, MultiHeadAttention
from gptedu.char.decoder import TransformerDecoder, TransformerDecoderLayer
from gptedu.char.feedforward import FeedForward
from gptedu.char.loop import evaluate, train
from gptedu.char.model import CharGPTConfig, GPTModel
from gptedu.char.positional import PositionalEncoding

__all__ = [
    "CharGPTConfig",
    "FeedForward",
    "GPTModel",
    "Head",
    "MultiHeadAttention",
    "PositionalEncoding",
    "TransformerDecoder",
    "TransformerDecoderLayer",
    "evaluate",
    "train",
]
