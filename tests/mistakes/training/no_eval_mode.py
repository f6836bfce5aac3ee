"""Evaluation loop: model.eval() never called.

Mistake: evaluation runs in training mode (dropout on), giving noisy validation losses.
Component: training loop (evaluate).
Expected effect: no numeric difference on a model without dropout; detectable only by recording the mode seen in
forward. The message should name model.eval().
"""

import torch

COMPONENT = "evaluate"
EXPECT = "caught"
HINTS = ('eval()', 'eval mode', 'model.eval')

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
    total_loss = 0.0
    with torch.no_grad():
        for src, tgt in dataloader:
            src, tgt = src.to(device), tgt.to(device)
            logits = model(src)
            loss = criterion(logits.view(-1, logits.size(-1)), tgt.view(-1))
            total_loss += loss.item()
    return total_loss / len(dataloader)
