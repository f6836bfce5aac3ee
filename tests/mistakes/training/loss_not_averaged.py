"""Training loop: returns the summed loss instead of the mean over batches.

Mistake: ``return total_loss`` — the number grows with the size of the data set.
Component: training loop (train).
Expected effect: returned value is n_batches times the reference; the message should say to return the mean loss.
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
    return total_loss


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
