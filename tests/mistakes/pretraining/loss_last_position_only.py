"""calc_loss_batch: scores the last position only.

Mistake: ``logits[:, -1]``.
Component: gpt2_calc_loss_batch (notebook 12).
Expected effect: a wrong loss; the message names the last position.
"""


import torch.nn.functional as F  # noqa: N812

COMPONENT = "gpt2_calc_loss_batch"
EXPECT = "caught"
HINTS = ('last position',)

# --- answer cell ---

def calc_loss_batch(input_batch, target_batch, model, device):
    """Mean next-token cross-entropy of model on one batch; a scalar tensor."""
    input_batch, target_batch = input_batch.to(device), target_batch.to(device)
    logits = model(input_batch)  # (batch, seq, vocab)
    return F.cross_entropy(logits[:, -1], target_batch[:, -1])
