"""Data-parallel training across processes: the few pieces the trainer needs from ``torch.distributed``.

Launch with ``torchrun --nproc_per_node=N -m gptedu train ...``. ``torchrun`` starts N copies of the program and
sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` in each one's environment.
Every copy (a *rank*) holds the whole model, draws its own batches, and ``DistributedDataParallel`` averages the
gradients during ``backward()`` so every rank applies the same update and the copies stay identical.
Backend: ``nccl`` for CUDA GPUs, ``gloo`` for the CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Who this process is: ``rank`` of ``world_size``, and ``local_rank`` on its machine (its GPU index)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, prints and shows the progress bar."""
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True when the environment says we are one of several processes (``WORLD_SIZE > 1``)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device_type: str = "cpu") -> DistInfo:
    """Join the process group described by torchrun's environment variables; a no-op for a single process.

    ``device_type`` picks the backend: ``nccl`` for ``"cuda"``, ``gloo`` otherwise.
    """
    if not launched_by_torchrun():
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this PyTorch was built without torch.distributed support.")
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend=backend, init_method="env://")
    return info


def shutdown_distributed() -> None:
    """Leave the process group (call once at the end of a distributed run)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum ``values`` over all ranks (returns ``values`` unchanged for a single process)."""
    if info.enabled:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def barrier(info: DistInfo) -> None:
    """Wait until every rank gets here."""
    if info.enabled:
        dist.barrier()


def gather_objects(obj: object, info: DistInfo) -> list[object]:
    """Every rank's ``obj``, in rank order, on every rank (``[obj]`` for a single process)."""
    if not info.enabled:
        return [obj]
    out: list[object] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out
