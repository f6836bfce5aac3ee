"""Correct but unusual GPT model: other attribute and local names, helper methods, Categorical sampling.

forward: the embedding, positional encoding, decoder and output layer are applied through a helper.
generate: a ``while`` loop, a ``block_size`` attribute instead of ``context_len``, the last position picked with
``select``, ``torch.distributions.Categorical(logits=...)`` instead of softmax + ``torch.multinomial``, and the
prompt accepted as ``(seq,)`` as well as ``(batch, seq)``.
Component: GPT model (forward and generate). Must get full points.
"""

import torch
from torch import nn

from gptedu import PositionalEncoding
from gptedu import TransformerDecoder as ReferenceDecoder

COMPONENT = "gpt_forward"
ALSO = ("gpt_generate",)
EXPECT = "full"
HINTS = ()

# --- answer cell ---


class GPTModel(nn.Module):
    def __init__(self, vocab_size, d_model, num_heads=8, d_ff=2048, context_len=100, num_layers=6):
        super().__init__()
        self.block_size = context_len
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.pos_encoding = PositionalEncoding(d_model, max(5000, context_len))
        self.decoder = ReferenceDecoder(d_model, num_heads, d_ff, context_len, num_layers)
        self.fc_out = nn.Linear(d_model, vocab_size)

    def hidden_states(self, tokens):
        return self.decoder(self.pos_encoding(self.embedding(tokens)))

    def forward(self, x):
        return self.fc_out(self.hidden_states(x))

    def _next_token(self, seq, temperature):
        window = seq[:, -self.block_size :]
        last = self.forward(window).select(1, -1)  # (batch, vocab)
        return torch.distributions.Categorical(logits=last / temperature).sample().unsqueeze(-1)

    def generate(self, start_tokens, max_new_tokens=50, temperature=1.0):
        single = start_tokens.ndim == 1
        seq = start_tokens.view(1, -1) if single else start_tokens
        self.eval()
        produced = 0
        with torch.no_grad():
            while produced < max_new_tokens:
                seq = torch.cat((seq, self._next_token(seq, temperature)), dim=1)
                produced += 1
        return seq.view(-1) if single else seq
