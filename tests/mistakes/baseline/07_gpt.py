"""Correct answers of notebook 07: TransformerDecoder and GPTModel (GPTModel uses *this* TransformerDecoder)."""

import torch
from torch import nn

from gptedu import PositionalEncoding, TransformerDecoderLayer


class TransformerDecoder(nn.Module):
    def __init__(self, d_model, num_heads=8, d_ff=2048, context_len=100, num_layers=6):
        super().__init__()
        self.layers = nn.ModuleList(
            [TransformerDecoderLayer(d_model, num_heads, d_ff, context_len) for _ in range(num_layers)]
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


class GPTModel(nn.Module):
    def __init__(self, vocab_size, d_model, num_heads=8, d_ff=2048, context_len=100, num_layers=6):
        super().__init__()
        self.context_len = context_len
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.pos_encoding = PositionalEncoding(d_model, num_range=max(5000, context_len))
        self.decoder = TransformerDecoder(d_model, num_heads, d_ff, context_len, num_layers)
        self.fc_out = nn.Linear(d_model, vocab_size)

    def forward(self, x):
        h = self.embedding(x)
        h = self.pos_encoding(h)
        h = self.decoder(h)
        return self.fc_out(h)

    @torch.no_grad()
    def generate(
        self, start_tokens, max_new_tokens=50, temperature=1.0, top_k=None, top_p=None, eos_id=None, generator=None
    ):
        squeeze = start_tokens.dim() == 1
        idx = start_tokens.unsqueeze(0) if squeeze else start_tokens
        self.eval()
        done = torch.zeros(idx.size(0), 1, dtype=torch.bool)
        for _ in range(max_new_tokens):
            idx_cond = idx[:, -self.context_len :]
            logits = self(idx_cond)[:, -1, :]
            if temperature == 0:
                next_token = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None:
                    kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]
                    logits[logits < kth] = float("-inf")
                if top_p is not None:
                    sorted_logits, order = torch.sort(logits, descending=True)
                    probs_sorted = torch.softmax(sorted_logits, dim=-1)
                    remove = probs_sorted.cumsum(dim=-1) - probs_sorted >= top_p
                    logits[remove.scatter(-1, order, remove)] = float("-inf")
                probs = torch.softmax(logits, dim=-1)
                next_token = torch.multinomial(probs, num_samples=1, generator=generator)
            if eos_id is not None:
                next_token[done] = eos_id
                done = done | (next_token == eos_id)
            idx = torch.cat([idx, next_token], dim=1)
            if eos_id is not None and done.all():
                break
        return idx[0] if squeeze else idx
