"""calc_loss_batch: softmax before cross_entropy.

Mistake: ``F.cross_entropy(torch.softmax(logits, -1)...)``.
Component: gpt2_calc_loss_batch (notebook 12).
Expected effect: a wrong loss; the message names the softmax.
"""


import torch
import torch.nn.functional as F  # noqa: N812

COMPONENT = "gpt2_calc_loss_batch"
EXPECT = "caught"
HINTS = ('softmax',)

# --- answer cell ---

def calc_loss_batch(input_batch, target_batch, model, device):
    """Mean next-token cross-entropy of model on one batch; a scalar tensor."""
    input_batch, target_batch = input_batch.to(device), target_batch.to(device)
    logits = model(input_batch)  # (batch, seq, vocab)
    return F.cross_entropy(torch.softmax(logits, -1).flatten(0, 1), target_batch.flatten())
