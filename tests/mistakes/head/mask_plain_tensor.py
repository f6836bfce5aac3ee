"""Single head: the causal mask kept as a plain tensor attribute, not a registered buffer.

Mistake: ``self.mask = torch.tril(torch.ones(context_len, context_len))`` instead of ``register_buffer``.
Component: single head.
Expected effect: none on the CPU: the outputs are exactly right. Only ``model.to("cuda")`` (the mask stays on the
CPU: a device error) or ``state_dict()`` would show it, and nothing in the course moves a student's Head to a GPU
(notebook 08 trains the reference model). Known undetectable by the output checks and deliberately not penalised:
a test cell is all-or-nothing, so a check would cost all 20 points of a numerically perfect Head. (It could be
found, e.g. as a warning, by looking for a tensor attribute that is neither a parameter nor a buffer; an answer
that builds the mask inside forward stores no tensor and would not be flagged.)
"""

import math

import torch
from torch import nn

COMPONENT = "head"
EXPECT = "undetectable"
HINTS = ("buffer",)

# --- answer cell ---


class Head(nn.Module):
    def __init__(self, d_model, d_k, d_v, context_len=100):
        super().__init__()
        self.query = nn.Linear(d_model, d_k, bias=False)
        self.key = nn.Linear(d_model, d_k, bias=False)
        self.value = nn.Linear(d_model, d_v, bias=False)
        self.mask = torch.tril(torch.ones(context_len, context_len))

    def attention_weights(self, x):
        seq = x.size(1)
        q, k = self.query(x), self.key(x)
        scores = q @ k.transpose(-2, -1) / math.sqrt(k.size(-1))
        scores = scores.masked_fill(self.mask[:seq, :seq] == 0, float("-inf"))
        return torch.softmax(scores, dim=-1)

    def forward(self, x):
        return self.attention_weights(x) @ self.value(x)
