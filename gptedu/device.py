"""Where to run (cuda > mps > cpu, or what you ask for), how many CPU threads, and how to make runs repeatable."""

from __future__ import annotations

import math
import os
import random
import time
from pathlib import Path

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


# --- CPU threads ---------------------------------------------------------------------------------------------------


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota (containers, CI runners)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota + 0.5)))
    return max(1, cpus)


def _cgroup_cpu_quota() -> float | None:
    """CPUs granted by a cgroup quota (v2 ``cpu.max`` or v1 ``cfs_quota_us / cfs_period_us``); None when unlimited."""
    for path, parse in (
        ("/sys/fs/cgroup/cpu.max", lambda s: s.split()),
        ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", None),
    ):
        try:
            text = Path(path).read_text().strip()
            if parse is not None:
                quota, period = parse(text)
            else:
                quota, period = text, Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text().strip()
            if quota in ("max", "-1"):
                return None
            return int(quota) / int(period)
        except (OSError, ValueError):
            continue
    return None


def idle_cpus(window: float = 0.2) -> float | None:
    """How many CPUs sat idle during the next ``window`` seconds (Linux ``/proc/stat``); None where unknown.

    Unlike the load average (a one-minute mean that lags), this says what other programs use *now*.
    """

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return idle, sum(fields[:8])

    try:
        idle0, total0 = sample()
        time.sleep(window)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return (idle1 - idle0) / (total1 - total0) * (os.cpu_count() or 1)


def pick_threads(task: str = "train") -> int:
    """A good ``torch.set_num_threads`` for ``task`` ("train" or "generate") on this machine, right now.

    * ``OMP_NUM_THREADS`` set (torchrun sets 1 per process): that.
    * ``"generate"``: 1. Sampling one sequence runs thousands of tiny matrix products, each too small to split
      well, and on a busy machine a second thread only adds waiting (200 characters with the default model on a
      busy 2-core machine: 4.0 s with 1 thread, 58 s with PyTorch's 2; ``benchmarks/bench_threads.py``).
    * ``"train"``: the CPUs that are idle now (at least 1, at most ``usable_cpus()``). PyTorch's own default is
      one thread per core, which is right on a quiet machine (1.8x faster than one thread on 2 cores) and ruinous
      on a busy one: its threads wait for each other at every operation, so one thread descheduled by another
      program stalls them all (a training step on that busy machine: 2.0 s with 1 thread, 10.1 s with 2).
    """
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    if task == "generate":
        return 1
    if task != "train":
        raise ValueError(f"pick_threads: task must be 'train' or 'generate', got {task!r}.")
    cpus = usable_cpus()
    if cpus == 1:
        return 1
    idle = idle_cpus()
    if idle is None:
        return cpus
    return max(1, min(cpus, math.floor(idle + 0.25)))


def use_threads(n: int) -> None:
    """Run PyTorch's CPU operations on ``n`` threads, leaving its own setup alone when it already has ``n``.

    ``torch.set_num_threads`` does more than set the count: it also turns off MKL's dynamic threading (MKL may then
    no longer run a small matrix product on fewer threads than the maximum), so even setting the count PyTorch
    already uses changes how the model's matrix products split over the cores. A quiet 2-core machine therefore
    trains with exactly what ``import torch`` set up, and only a busy one (fewer idle CPUs) is changed.
    """
    if n < 1:
        raise ValueError(f"use_threads: the thread count must be >= 1, got {n}.")
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
