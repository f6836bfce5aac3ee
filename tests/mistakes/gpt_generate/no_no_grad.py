"""generate(): no torch.no_grad().

Mistake: the ``@torch.no_grad()`` decorator is missing: every step builds an autograd graph (memory grows with the
number of new tokens).
Component: GPT model (generate).
Expected effect: the same token ids, but every step builds an autograd graph: the check records
torch.is_grad_enabled() in every forward call and names torch.no_grad().
"""

import torch
from torch import nn

from gptedu import PositionalEncoding
from gptedu import TransformerDecoder as ReferenceDecoder

COMPONENT = "gpt_generate"
EXPECT = "caught"
HINTS = ("no_grad",)

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
