"""generate(): the whole sequence is fed to the model, never cropped to the last context_len tokens.

Mistake: ``logits = self(idx)[:, -1, :]`` instead of ``self(idx[:, -self.context_len:])``.
Component: GPT model (generate).
Expected effect: fine until the sequence exceeds context_len, then the mask/positional code runs out (error) — or,
on a forward without a length check, silently wrong. Caught by a case that generates past context_len.
"""

import torch
from torch import nn

from gptedu import PositionalEncoding
from gptedu import TransformerDecoder as ReferenceDecoder

COMPONENT = "gpt_generate"
EXPECT = "caught"
HINTS = ('crop', 'context_len', 'last')

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
        h = self.decoder(h)
        return self.fc_out(h)

    @torch.no_grad()
    def generate(self, start_tokens, max_new_tokens=50, temperature=1.0):
        self.eval()
        idx = start_tokens
        for _ in range(max_new_tokens):
            idx_cond = idx
            logits = self(idx_cond)[:, -1, :]
            logits = logits / temperature
            probs = torch.softmax(logits, dim=-1)
            next_token = torch.multinomial(probs, num_samples=1)
            idx = torch.cat([idx, next_token], dim=1)
        return idx
