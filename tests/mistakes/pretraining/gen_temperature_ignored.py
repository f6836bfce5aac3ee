"""gen_text: temperature not applied.

Mistake: ``torch.softmax(logits, dim=-1)``.
Component: gpt2_gen_text (notebook 12).
Expected effect: samples follow temperature 1; the message names the temperature.
"""


import torch

COMPONENT = "gpt2_gen_text"
EXPECT = "caught"
HINTS = ('temperature is not applied',)

# --- answer cell ---

def gen_text(model, idx, max_new_tokens, context_size, temperature=0.0, top_k=None, eos_id=None):
    """Generate up to max_new_tokens tokens after idx (batch, seq); returns (batch, seq + generated)."""
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = model(idx[:, -context_size:])[:, -1, :]
        if top_k is not None:
            kth = torch.topk(logits, top_k).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if temperature > 0:
            probs = torch.softmax(logits, dim=-1)
            idx_next = torch.multinomial(probs, num_samples=1)
        else:
            idx_next = logits.argmax(dim=-1, keepdim=True)
        if eos_id is not None and bool((idx_next == eos_id).all()):
            break
        idx = torch.cat([idx, idx_next], dim=1)
    return idx
