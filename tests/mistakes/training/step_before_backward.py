"""Training loop: optimizer.step() called before loss.backward().

Mistake: ``optimizer.step(); loss.backward()`` — each step applies the *previous* batch's gradient (zeroed
just before), so the first step does nothing and updates lag one batch behind.
Component: training loop (train).
Expected effect: parameters differ from the reference after training; the message should name the order.
"""

import torch

COMPONENT = "train"
EXPECT = "caught"
HINTS = ('backward', 'step', 'order')

# --- answer cell ---


def train(model, dataloader, criterion, optimizer, device):
    model.train()
    total_loss = 0.0
    for src, tgt in dataloader:
        src, tgt = src.to(device), tgt.to(device)
        optimizer.zero_grad()
        logits = model(src)
        loss = criterion(logits.view(-1, logits.size(-1)), tgt.view(-1))
        optimizer.step()
        loss.backward()
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
