"""Correct but unusual training/evaluation loops.

train: zero_grad *after* each step (the gradients are zero before the first batch anyway), ``set_to_none=False``,
the running loss kept as a detached tensor, the criterion on
``(batch, vocab, seq)`` logits instead of a flattened view (the mean over all tokens is the same).
evaluate: ``torch.inference_mode()`` instead of ``torch.no_grad()``, the loss accumulated in a list.
Component: training loop (train and evaluate). Must get full points.
"""

import torch

COMPONENT = "train"
ALSO = ("evaluate",)
EXPECT = "full"
HINTS = ()

# --- answer cell ---


def train(model, dataloader, criterion, optimizer, device):
    model.train()
    running = torch.zeros(())
    n = 0
    for inputs, targets in dataloader:
        n += 1
        inputs, targets = inputs.to(device), targets.to(device)
        logits = model(inputs)
        loss = criterion(logits.transpose(1, 2), targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=False)
        running += loss.detach()
    return float(running / n)


def evaluate(model, dataloader, criterion, device):
    model.eval()
    losses = []
    with torch.inference_mode():
        for inputs, targets in dataloader:
            out = model(inputs.to(device))
            losses.append(criterion(out.flatten(0, 1), targets.to(device).flatten()).item())
    return sum(losses) / len(losses)
