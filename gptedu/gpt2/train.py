"""Losses and the simple training loop of notebook 12 for the GPT-2 family."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from gptedu.gpt2.generate import gen_text, text_to_token_ids, token_ids_to_text


class GPTDataset(Dataset):
    """Fixed-length training windows over one long list of token ids, ``stride`` tokens apart.

    Item ``i`` is ``(input, target)``, both ``(max_length,)`` long, with ``target`` = ``input`` shifted by one.
    Windows are sliced on demand (nothing is materialised).
    """

    def __init__(self, token_ids: torch.Tensor | list[int], max_length: int, stride: int):
        self.ids = torch.as_tensor(token_ids, dtype=torch.long)
        if self.ids.numel() <= max_length:
            raise ValueError(
                f"Need more than max_length={max_length} tokens to make one (input, target) window, got "
                f"{self.ids.numel()}. Use more text or a smaller max_length."
            )
        self.max_length = max_length
        self.stride = stride

    def __len__(self) -> int:
        return (self.ids.numel() - self.max_length - 1) // self.stride + 1

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        start = i * self.stride
        chunk = self.ids[start : start + self.max_length + 1]
        return chunk[:-1], chunk[1:]


def create_dataloader(
    token_ids: torch.Tensor | list[int],
    batch_size: int = 4,
    max_length: int = 256,
    stride: int | None = None,
    shuffle: bool = True,
    drop_last: bool = True,
    generator: torch.Generator | None = None,
) -> DataLoader:
    """A ``DataLoader`` of ``GPTDataset`` windows; ``stride`` defaults to ``max_length`` (no overlap)."""
    dataset = GPTDataset(token_ids, max_length, stride or max_length)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, generator=generator)


def calc_loss_batch(
    input_batch: torch.Tensor, target_batch: torch.Tensor, model: torch.nn.Module, device: torch.device | str
) -> torch.Tensor:
    """Mean cross-entropy of ``model`` on one batch: inputs/targets ``(batch, seq)`` → scalar tensor (with grad)."""
    input_batch, target_batch = input_batch.to(device), target_batch.to(device)
    logits = model(input_batch)  # (batch, seq, vocab)
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), target_batch.flatten())


def calc_loss_loader(
    data_loader, model: torch.nn.Module, device: torch.device | str, num_batches: int | None = None
) -> float:
    """Average ``calc_loss_batch`` over the first ``num_batches`` batches (all when ``None``); ``nan`` if empty."""
    if len(data_loader) == 0:
        return float("nan")
    n = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    total = 0.0
    for i, (input_batch, target_batch) in enumerate(data_loader):
        if i >= n:
            break
        total += calc_loss_batch(input_batch, target_batch, model, device).item()
    return total / n


def evaluate_model(model, train_loader, val_loader, device, eval_iter: int) -> tuple[float, float]:
    """Train and validation loss on ``eval_iter`` batches each, in eval mode and without gradients."""
    model.eval()
    with torch.no_grad():
        train_loss = calc_loss_loader(train_loader, model, device, num_batches=eval_iter)
        val_loss = calc_loss_loader(val_loader, model, device, num_batches=eval_iter)
    model.train()
    return train_loss, val_loss


def train_simple(
    model: torch.nn.Module,
    train_loader,
    val_loader,
    optimizer: torch.optim.Optimizer,
    device: torch.device | str,
    num_epochs: int,
    eval_freq: int,
    eval_iter: int,
    start_context: str | None = None,
    tokenizer=None,
    max_steps: int | None = None,
) -> tuple[list[float], list[float], list[int]]:
    """Notebook 12's loop: for each batch, zero the grads, ``calc_loss_batch``, backward, step.

    Every ``eval_freq`` steps it records train/val loss (``eval_iter`` batches each) and the number of tokens seen;
    after each epoch it prints a greedy sample continuing ``start_context`` (if a tokenizer is given).
    ``max_steps`` stops early (handy on CPU). Returns ``(train_losses, val_losses, tokens_seen)``.
    """
    train_losses, val_losses, track_tokens_seen = [], [], []
    tokens_seen, step = 0, 0
    for epoch in range(num_epochs):
        model.train()
        for input_batch, target_batch in train_loader:
            optimizer.zero_grad()
            loss = calc_loss_batch(input_batch, target_batch, model, device)
            loss.backward()
            optimizer.step()
            tokens_seen += input_batch.numel()
            step += 1
            if step % eval_freq == 0:
                train_loss, val_loss = evaluate_model(model, train_loader, val_loader, device, eval_iter)
                train_losses.append(train_loss)
                val_losses.append(val_loss)
                track_tokens_seen.append(tokens_seen)
                print(f"epoch {epoch + 1} step {step:06d}: train loss {train_loss:.3f}, val loss {val_loss:.3f}")
            if max_steps is not None and step >= max_steps:
                break
        if start_context is not None and tokenizer is not None:
            model.eval()
            idx = text_to_token_ids(start_context, tokenizer).to(device)
            out = gen_text(model, idx, max_new_tokens=50, context_size=model.cfg.context_len)
            print(token_ids_to_text(out, tokenizer).replace("\n", " "))
            model.train()
        if max_steps is not None and step >= max_steps:
            break
    return train_losses, val_losses, track_tokens_seen
