"""train(): accumulates the loss tensors and returns a tensor with its graph.

Mistake: ``total = total + loss`` (no .item()).
Component: train (notebook 08).
Expected effect: the mean is right but it is a tensor holding every batch's graph; the check says to return a float.
"""


import torch

COMPONENT = "train"
EXPECT = "caught"
HINTS = ('float',)

# --- answer cell ---

def train(model, dataloader, criterion, optimizer, device) -> float:
    """One pass over dataloader; returns the mean loss of its batches."""
    model.train()
    total, batches = 0.0, 0
    for src, tgt in dataloader:
        src, tgt = src.to(device), tgt.to(device)
        optimizer.zero_grad()
        logits = model(src)  # (batch, seq, vocab)
        loss = criterion(logits.reshape(-1, logits.size(-1)), tgt.reshape(-1))
        loss.backward()
        optimizer.step()
        total = total + loss
        batches += 1
    return total / batches


def evaluate(model, dataloader, criterion, device) -> float:
    """Mean loss over dataloader, without training."""
    model.eval()
    total, batches = 0.0, 0
    with torch.no_grad():
        for src, tgt in dataloader:
            src, tgt = src.to(device), tgt.to(device)
            logits = model(src)
            total += criterion(logits.reshape(-1, logits.size(-1)), tgt.reshape(-1)).item()
            batches += 1
    return total / batches
