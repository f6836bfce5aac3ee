"""calc_loss_loader: num_batches ignored.

Mistake: the early ``break`` removed.
Component: gpt2_calc_loss_loader (notebook 12).
Expected effect: the mean over every batch; the message names num_batches.
"""

# ruff: noqa: F821, F841, B905, B007, E501  (the names come from the notebook's earlier cells)



COMPONENT = "gpt2_calc_loss_loader"
EXPECT = "caught"
HINTS = ('num_batches is ignored',)

# --- answer cell ---

def calc_loss_loader(data_loader, model, device, num_batches=None):
    """Mean loss over the first num_batches batches of data_loader (a float)."""
    if len(data_loader) == 0:
        return float("nan")
    n = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    total = 0.0
    for i, (input_batch, target_batch) in enumerate(data_loader):
        total += calc_loss_batch(input_batch, target_batch, model, device).item()
    return total / n
