"""Evaluation loop: copy-pasted from train(), keeps a manual SGD update.

Mistake: the student copied ``train`` and replaced the optimizer with a hand-written update
``p -= 0.1 * p.grad`` — evaluation now trains on the validation set.
Component: training loop (evaluate).
Expected effect: the model's parameters change during evaluate; the message should say evaluate must not update the
model.
"""

import torch

COMPONENT = "evaluate"
EXPECT = "caught"
HINTS = ('no_grad', 'update', 'weights', 'step', 'backward')

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
    return total_loss / len(dataloader)


def evaluate(model, dataloader, criterion, device):
    model.eval()
    total_loss = 0.0
    for src, tgt in dataloader:
        src, tgt = src.to(device), tgt.to(device)
        logits = model(src)
        loss = criterion(logits.view(-1, logits.size(-1)), tgt.view(-1))
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
        total_loss += loss.item()
    return total_loss / len(dataloader)
