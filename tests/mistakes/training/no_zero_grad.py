"""Training loop: optimizer.zero_grad() never called.

Mistake: the gradients of every batch accumulate into ``.grad``, so each step uses the sum of all gradients so far.
Component: training loop (train).
Expected effect: from the second batch on the parameters differ from the reference run; the check should name
zero_grad.
"""

import torch

COMPONENT = "train"
EXPECT = "caught"
HINTS = ('zero_grad', 'accumulat')

# --- answer cell ---


def train(model, dataloader, criterion, optimizer, device):
    model.train()
    total_loss = 0.0
    for src, tgt in dataloader:
        src, tgt = src.to(device), tgt.to(device)
        logits = model(src)
        loss = criterion(logits.view(-1, logits.size(-1)), tgt.view(-1))
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
