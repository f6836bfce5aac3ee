"""generate(): the model is not switched to eval mode.

Mistake: ``self.eval()`` is missing, so generation runs in whatever mode the model was left in.
Component: GPT model (generate).
Expected effect: the same logits on this model (no dropout), but the exercise asks for eval mode while generating:
the check records the mode of every forward call (generate is called on a model left in training mode) and names
self.eval().
"""

import torch
from torch import nn

from gptedu import PositionalEncoding
from gptedu import TransformerDecoder as ReferenceDecoder

COMPONENT = "gpt_generate"
EXPECT = "caught"
HINTS = ("self.eval()",)

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
        idx = start_tokens
        for _ in range(max_new_tokens):
            idx_cond = idx[:, -self.context_len :]
            logits = self(idx_cond)[:, -1, :]
            logits = logits / temperature
            probs = torch.softmax(logits, dim=-1)
            next_token = torch.multinomial(probs, num_samples=1)
            idx = torch.cat([idx, next_token], dim=1)
        return idx
