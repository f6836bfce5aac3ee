"""Where to run (cuda > mps > cpu, or what you ask for) and how to make runs repeatable."""

from __future__ import annotations

import random

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def pick_device(override: str | torch.device | None = None) -> torch.device:
    """The device to train on: CUDA if present, else Apple's MPS, else the CPU.

    ``override`` forces a choice: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``; ``None`` or ``"auto"`` picks.
    Asking for a device this machine does not have raises ``ValueError`` saying what is available.
    """
    if override is None or str(override) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(override)
    except RuntimeError as exc:
        raise ValueError(
            f"Unknown device {str(override)!r}: use one of {', '.join(DEVICE_CHOICES)} (or cuda:N)."
        ) from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"You asked for {device} but this PyTorch sees no CUDA GPU; use --device cpu (or auto).")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"You asked for {device} but only {torch.cuda.device_count()} CUDA device(s) exist.")
    elif device.type == "mps" and not _mps_available():
        raise ValueError("You asked for mps but MPS is not available here (it needs Apple silicon); use --device cpu.")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"Unsupported device {device}: use one of {', '.join(DEVICE_CHOICES)}.")
    return device


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy (if installed) and PyTorch (CPU and every GPU) with ``seed``.

    Seeds make a run repeatable on the same machine and software; they do not make a CPU run match a GPU run.
    """
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # numpy is optional for the package itself
        pass
    torch.manual_seed(seed)


def make_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` seeded with ``seed``: a private random stream that other code cannot disturb."""
    return torch.Generator(device=device).manual_seed(seed)
