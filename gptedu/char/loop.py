"""The epoch loop of notebook 08: one pass of training, one pass of evaluation."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def _batch_loss(model: nn.Module, criterion: nn.Module, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    logits = model(src)  # (batch, seq, vocab)
    return criterion(logits.reshape(-1, logits.size(-1)), tgt.reshape(-1))


def train(
    model: nn.Module,
    dataloader: Iterable,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    device: torch.device | str,
) -> float:
    """One epoch over ``dataloader`` (batches ``(src, tgt)`` of shape ``(batch, seq)``); returns the mean loss."""
    model.train()
    total, batches = 0.0, 0
    for src, tgt in dataloader:
        src, tgt = src.to(device), tgt.to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = _batch_loss(model, criterion, src, tgt)
        loss.backward()
        optimizer.step()
        total += loss.item()
        batches += 1
    if batches == 0:
        raise ValueError("train() got an empty dataloader: check the dataset size and batch_size.")
    return total / batches


@torch.no_grad()
def evaluate(model: nn.Module, dataloader: Iterable, criterion: nn.Module, device: torch.device | str) -> float:
    """Mean loss over ``dataloader`` without updating the model."""
    model.eval()
    total, batches = 0.0, 0
    for src, tgt in dataloader:
        total += _batch_loss(model, criterion, src.to(device), tgt.to(device)).item()
        batches += 1
    if batches == 0:
        raise ValueError("evaluate() got an empty dataloader: check the dataset size and batch_size.")
    return total / batches
