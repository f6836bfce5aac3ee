"""GPT model: forward returns the decoder output without the final projection to the vocabulary.

Mistake: ``return self.decoder(h)`` — ``fc_out`` is defined but never used, so the output has d_model columns.
Component: GPT model (forward).
Expected effect: wrong output shape ``(batch, seq, d_model)``; the message should state the expected
``(batch, seq, vocab_size)``.
"""

import torch
from torch import nn

from gptedu import PositionalEncoding
from gptedu import TransformerDecoder as ReferenceDecoder

COMPONENT = "gpt_forward"
EXPECT = "caught"
HINTS = ('fc_out', 'vocab', 'shape')

# --- answer cell ---


class GPTModel(nn.Module):
    def __init__(self, vocab_size, d_model, num_heads=8, d_ff=2048, context_len=100, num_layers=6):
        super().__init__()
        self.context_len = context_len
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.pos_encoding = PositionalEncoding(d_model, num_range=max(5000, context_len))
        self.decoder = ReferenceDecoder(d_model, num_heads, d_ff, context_len, num_layers)
        self.fc_out = nn.Linear(d_model, vocab_size)

    def forward(self, x):
        h = self.embedding(x)
        h = self.pos_encoding(h)
        return self.decoder(h)

    @torch.no_grad()
    def generate(self, start_tokens, max_new_tokens=50, temperature=1.0):
        self.eval()
        idx = start_tokens
        for _ in range(max_new_tokens):
            idx_cond = idx[:, -self.context_len :]
            logits = self(idx_cond)[:, -1, :]
            logits = logits / temperature
            probs = torch.softmax(logits, dim=-1)
            next_token = torch.multinomial(probs, num_samples=1)
            idx = torch.cat([idx, next_token], dim=1)
        return idx
