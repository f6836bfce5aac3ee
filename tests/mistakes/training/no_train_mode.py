"""Training loop: model.train() never called.

Mistake: the model stays in whatever mode it was (eval after a validation pass), so dropout never trains.
Component: training loop (train).
Expected effect: no numeric difference on a model without dropout; detectable only by recording the mode seen in
forward (the loop check's TinyCausalLM does). The message should name model.train().
"""

import torch

COMPONENT = "train"
EXPECT = "caught"
HINTS = ('train()', 'training mode', 'model.train')

# --- answer cell ---


def train(model, dataloader, criterion, optimizer, device):
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
    with torch.no_grad():
        for src, tgt in dataloader:
            src, tgt = src.to(device), tgt.to(device)
            logits = model(src)
            loss = criterion(logits.view(-1, logits.size(-1)), tgt.view(-1))
            total_loss += loss.item()
    return total_loss / len(dataloader)
