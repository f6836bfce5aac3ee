"""The character-level GPT: embedding → positional encoding → decoder → output projection."""

from __future__ import annotations

import torch
from torch import nn

from gptedu.char.decoder import TransformerDecoder
from gptedu.char.positional import PositionalEncoding
from gptedu.configs import CharGPTConfig  # the sizes; defined without torch so the CLI can read them early
from gptedu.sampling import sample_loop


class GPTModel(nn.Module):
    """A decoder-only transformer over characters.

    Parameters: ``embedding`` (``nn.Embedding(vocab_size, d_model)``), ``pos_encoding`` (``PositionalEncoding``,
    no parameters), ``decoder`` (``TransformerDecoder``), ``fc_out`` (``nn.Linear(d_model, vocab_size)``).

    ``forward(x)``: token ids ``(batch, seq)`` with ``seq <= context_len`` → logits ``(batch, seq, vocab_size)``.
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        num_heads: int = 8,
        d_ff: int = 2048,
        context_len: int = 100,
        num_layers: int = 6,
    ):
        super().__init__()
        self.config = CharGPTConfig(vocab_size, d_model, num_heads, d_ff, context_len, num_layers)
        self.context_len = context_len
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.pos_encoding = PositionalEncoding(d_model, num_range=max(5000, context_len))
        self.decoder = TransformerDecoder(d_model, num_heads, d_ff, context_len, num_layers)
        self.fc_out = nn.Linear(d_model, vocab_size)

    @classmethod
    def from_config(cls, cfg: CharGPTConfig) -> GPTModel:
        return cls(cfg.vocab_size, cfg.d_model, cfg.num_heads, cfg.d_ff, cfg.context_len, cfg.num_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:
            raise ValueError(f"GPTModel expects token ids of shape (batch, seq), got {tuple(x.shape)}.")
        if x.size(1) > self.context_len:
            raise ValueError(
                f"Sequence length {x.size(1)} exceeds context_len {self.context_len}; crop to the last "
                f"{self.context_len} tokens (generate() does this for you)."
            )
        return self.fc_out(self.decoder(self.pos_encoding(self.embedding(x))))

    @torch.no_grad()
    def generate(
        self,
        start_tokens: torch.Tensor,
        max_new_tokens: int = 50,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        eos_id: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Append ``max_new_tokens`` sampled tokens to ``start_tokens`` ``(batch, seq)`` (or ``(seq,)``).

        Each step feeds only the last ``context_len`` tokens, takes the last position's logits, divides them by
        ``temperature`` (0 = greedy argmax), keeps the ``top_k`` / ``top_p`` candidates and samples with
        ``torch.multinomial`` (``gptedu.sampling.sample_loop``). With ``eos_id``, generation stops when the model
        picks it, without appending it; in a batch, a row that produced it is padded with it until every row has.
        Returns the prompt followed by the new tokens, same number of dims as given.
        """
        squeeze = start_tokens.dim() == 1
        idx = start_tokens[None] if squeeze else start_tokens
        if idx.size(1) == 0:
            raise ValueError("generate() needs at least one start token; got an empty prompt.")
        was_training = self.training
        self.eval()

        def next_logits(idx: torch.Tensor) -> torch.Tensor:
            """``(batch, vocab)`` logits for the next token; the model sees at most the last ``context_len``."""
            logits = self(idx[:, -self.context_len :])[:, -1, :]
            return logits

        try:
            idx = sample_loop(next_logits, idx, max_new_tokens, temperature, top_k, top_p, eos_id, generator)
        finally:
            self.train(was_training)
        return idx[0] if squeeze else idx
