"""generate(): one model call more than needed (the logits of the finished sequence, computed after the loop, unused).

Not a mistake: ``self(idx[:, -self.context_len:])`` once more after the loop costs a forward pass and changes no
token, and the exercise asks for the tokens, the cropping, eval mode and no_grad, not for a number of calls.
Component: gpt_generate (notebook 07).
Expected effect: full points (the check of the cropping used to fail it with "unexpected outputs (StopIteration)").
"""

# ruff: noqa: F821, F841, B905, E501  (the names come from the notebook's earlier cells)


import torch
from torch import nn

COMPONENT = "gpt_generate"
EXPECT = "full"
HINTS = ()

# --- answer cell ---

class GPTModel(nn.Module):
    """Character-level GPT: token ids (batch, seq) -> logits (batch, seq, vocab_size)."""

    def __init__(self, vocab_size: int, d_model: int, num_heads: int = 8, d_ff: int = 2048,
                 context_len: int = 100, num_layers: int = 6):
        super().__init__()
        self.context_len = context_len
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.pos_encoding = PositionalEncoding(d_model, num_range=max(5000, context_len))
        self.decoder = ReferenceDecoder(d_model, num_heads, d_ff, context_len, num_layers)
        self.fc_out = nn.Linear(d_model, vocab_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pos_encoding(self.embedding(x))  # (batch, seq, d_model)
        return self.fc_out(self.decoder(h))  # (batch, seq, vocab_size)

    @torch.no_grad()
    def generate(self, start_tokens: torch.Tensor, max_new_tokens: int = 50, temperature: float = 1.0):
        """Append max_new_tokens sampled tokens to start_tokens (batch, seq)."""
        was_training = self.training
        self.eval()
        idx = start_tokens
        for _ in range(max_new_tokens):
            logits = self(idx[:, -self.context_len :])[:, -1, :]  # (batch, vocab_size)
            probs = torch.softmax(logits / temperature, dim=-1)
            next_token = torch.multinomial(probs, num_samples=1)  # (batch, 1)
            idx = torch.cat([idx, next_token], dim=1)
        final_logits = self(idx[:, -self.context_len :])  # computed, never used
        self.train(was_training)
        return idx
