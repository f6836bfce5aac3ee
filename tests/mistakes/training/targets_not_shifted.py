"""Training loop: the loss compares the logits with the *input* tokens.

Mistake: ``criterion(logits..., src.view(-1))`` — the model is trained to copy its input, not to predict the next
token.
Component: training loop (train).
Expected effect: loss and updated parameters differ from the reference; the message should say to use the targets.
"""

import torch

COMPONENT = "train"
EXPECT = "caught"
HINTS = ('target', 'tgt', 'shift')

# --- answer cell ---


def train(model, dataloader, criterion, optimizer, device):
    model.train()
    total_loss = 0.0
    for src, tgt in dataloader:
        src, tgt = src.to(device), tgt.to(device)
        optimizer.zero_grad()
        logits = model(src)
        loss = criterion(logits.view(-1, logits.size(-1)), src.view(-1))
        loss.backward()
        optimizer.step()
        total_loss += loss.item()
    return total_loss / len(dataloader)


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
