"""Run by tests/test_ddp.py under torchrun: train a tiny model data-parallel and dump what each rank saw.

Usage: python -m torch.distributed.run --standalone --nproc_per_node=2 tests/ddp_worker.py OUT_DIR CORPUS_FILE
Writes OUT_DIR/rank{R}.pt (final weights, the batches drawn, per-step local losses, history) and, from rank 0
only, OUT_DIR/ckpt.pt.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

torch.set_num_threads(1)

from gptedu.char.model import CharGPTConfig  # noqa: E402
from gptedu.distributed import shutdown_distributed  # noqa: E402
from gptedu.trainer import TrainConfig, Trainer  # noqa: E402


class RecordingTrainer(Trainer):
    """A trainer that keeps every batch it draws and every local (un-averaged) loss."""

    def next_batch(self):
        x, y = super().next_batch()
        self.drawn.append(x.clone())
        return x, y

    def train_step(self):
        loss = super().train_step()
        self.local_losses.append(loss.item())
        return loss


def main() -> None:
    out, corpus = Path(sys.argv[1]), Path(sys.argv[2])
    config = TrainConfig(
        max_steps=20, batch_size=8, lr=1e-2, min_lr=1e-3, warmup_fraction=0.1, eval_interval=10, eval_batches=4,
        max_time=None, seed=0, device="cpu", progress=False, log_evals=False, out_dir=str(out),
    )  # fmt: skip
    model_config = CharGPTConfig(d_model=32, num_heads=2, d_ff=64, context_len=16, num_layers=1)
    trainer = RecordingTrainer(config, model_config, text=corpus.read_text(encoding="utf-8"))
    trainer.drawn, trainer.local_losses = [], []
    trainer.train()
    torch.save(
        {
            "rank": trainer.dist.rank,
            "world_size": trainer.dist.world_size,
            "params": {k: v.detach().clone() for k, v in trainer.model.state_dict().items()},
            "batches": torch.stack(trainer.drawn),
            "local_losses": trainer.local_losses,
            "history": trainer.history,
        },
        out / f"rank{trainer.dist.rank}.pt",
    )
    shutdown_distributed()


if __name__ == "__main__":
    main()
