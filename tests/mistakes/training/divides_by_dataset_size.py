"""Training loop: divides the summed batch losses by the number of *samples*.

Mistake: ``return total_loss / len(dataloader.dataset)`` — each batch loss is already a mean over its tokens.
Component: training loop (train).
Expected effect: returned value is batch_size times too small (or crashes when the loader is a plain list); the
message should say "mean over batches".
"""

import torch

COMPONENT = "train"
EXPECT = "caught"
HINTS = ('mean', 'average', 'batches')

# --- answer cell ---


def train(model, dataloader, criterion, optimizer, device):
    model.train()
    total_loss = 0.0
    for src, tgt in dataloader:
        src, tgt = src.to(device), tgt.to(device)
        optimizer.zero_grad()
        logits = model(src)
        loss = criterion(logits.view(-1, logits.size(-1)), tgt.view(-1))
        loss.backward()
        optimizer.step()
        total_loss += loss.item()
    n_samples = sum(len(src) for src, _ in dataloader)
    return total_loss / n_samples


def evaluate(model, dataloader, criterion, device):
    model.eval()
    total_loss = 0.0
    with torch.no_grad():
        for src, tgt in dataloader:
            src, tgt = src.to(device), tgt.to(device)
            logits = model(src)
            loss = criterion(logits.view(-1, logits.size(-1)), tgt.view(-1))
            total_loss += loss.item()
    return total_loss / len(dataloader)
