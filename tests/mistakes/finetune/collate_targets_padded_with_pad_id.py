"""collate_instructions: collate targets padded with pad id.

Mistake: see the answer cell ('targets = torch.full((len(batch), length), ignore_index, dty' changed).
Component: collate_instructions (notebook 14).
Expected effect: loses points; the message names 'padding in the targets is pad_id'.
"""

# ruff: noqa: F821, F841, B905, E501  (the names come from the notebook's earlier cells)


import torch

COMPONENT = "collate_instructions"
EXPECT = "caught"
HINTS = ('padding in the targets is pad_id',)

# --- answer cell ---

def collate_instructions(batch, pad_id, ignore_index=-100, max_length=None):
    """(prompt_ids, response_ids) pairs -> inputs, targets (batch, L); targets -100 on prompt tokens and padding."""
    seqs = [list(prompt) + list(response) for prompt, response in batch]
    length = max(len(s) for s in seqs) - 1
    if max_length is not None:
        length = min(length, max_length)
    inputs = torch.full((len(batch), length), pad_id, dtype=torch.long)
    targets = torch.full((len(batch), length), pad_id, dtype=torch.long)
    for row, ((prompt, _), s) in enumerate(zip(batch, seqs)):
        x = s[:-1][:length]
        y = s[1:][:length]
        for j in range(min(len(prompt) - 1, len(y))):  # targets that are prompt tokens
            y[j] = ignore_index
        inputs[row, : len(x)] = torch.tensor(x, dtype=torch.long)
        targets[row, : len(y)] = torch.tensor(y, dtype=torch.long)
    return inputs, targets
