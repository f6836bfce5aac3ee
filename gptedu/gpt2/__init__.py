"""Part 2 — GPT-2 (Radford et al. 2019): the GPT-2 family, one module per notebook.

=========================  =============================================================  ==============
notebook                   classes / functions                                            module
=========================  =============================================================  ==============
10 GPT-2 blocks            ``GPTConfig``, ``LayerNorm``, ``GELU``, ``FeedForward``,         ``config``,
                           ``MultiHeadAttention``, ``GPTEmbedding``, ``TransformerBlock``,  ``layers``,
                           ``GPTModel``, ``count_parameters``, ``gpt_param_count``          ``attention``,
                                                                                          ``model``
11 tokenizer               ``BPETokenizer``, ``TiktokenBPE``, ``load_gpt2_tokenizer``       ``bpe``
12 pretraining/sampling    ``calc_loss_batch``, ``calc_loss_loader``, ``train_simple``,     ``train``,
                           ``gen_text``, ``text_to_token_ids``, ``token_ids_to_text``       ``generate``
13 fast generation         ``KVCache``, ``gen_text_cached``                                 ``kvcache``
14 instruction tuning      prompt template, examples, collate with prompt masking           ``finetune``
(real weights)             ``load_hf_gpt2``; ``python -m gptedu.gpt2.hf CHECKPOINT --prompt``  ``hf``
=========================  =============================================================  ==============

The names clash with part 1 on purpose only inside this subpackage (``gptedu.GPTModel`` is the character model;
``gptedu.gpt2.GPTModel`` is GPT-2).
"""

from gptedu.gpt2.attention import MultiHeadAttention
from gptedu.gpt2.bpe import BPETokenizer, TiktokenBPE, load_gpt2_tokenizer
from gptedu.gpt2.config import GPT2_124M, GPT2_355M, GPT2_774M, GPT2_1558M, GPT2_PRESETS, GPTConfig
from gptedu.gpt2.generate import gen_text, text_to_token_ids, token_ids_to_text
from gptedu.gpt2.kvcache import KVCache, LayerKVCache, gen_text_cached
from gptedu.gpt2.layers import GELU, FeedForward, LayerNorm
from gptedu.gpt2.model import GPTEmbedding, GPTModel, TransformerBlock, count_parameters, gpt_param_count
from gptedu.gpt2.train import GPTDataset, calc_loss_batch, calc_loss_loader, create_dataloader, train_simple

__all__ = [
    "GELU",
    "GPT2_124M",
    "GPT2_355M",
    "GPT2_774M",
    "GPT2_1558M",
    "GPT2_PRESETS",
    "BPETokenizer",
    "FeedForward",
    "GPTConfig",
    "GPTDataset",
    "GPTEmbedding",
    "GPTModel",
    "KVCache",
    "LayerKVCache",
    "LayerNorm",
    "MultiHeadAttention",
    "TiktokenBPE",
    "TransformerBlock",
    "calc_loss_batch",
    "calc_loss_loader",
    "count_parameters",
    "create_dataloader",
    "gen_text",
    "gen_text_cached",
    "gpt_param_count",
    "load_gpt2_tokenizer",
    "text_to_token_ids",
    "token_ids_to_text",
    "train_simple",
]
