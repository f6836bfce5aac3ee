"""Experiment: can the default model get a window long enough for a 500-token KV cache without losing quality?

    python benchmarks/exp_long_window.py --context-len 128                         # control: the default model
    python benchmarks/exp_long_window.py --offsets                                 # 512 window, random offsets
    python benchmarks/exp_long_window.py --offsets --long-every 5                  # ... + every 5th batch 512 long
    python benchmarks/exp_long_window.py --long-every 5                            # no offsets, every 5th 512 long

Why: the KV cache is exact only while prompt + generated text fits the window (absolute sinusoidal positions), so
500 cached tokens need ``context_len >= 506``, while the 5-minute target was reached with 128-character windows.
Each run trains the ``default`` preset's shape with ``context_len`` set to ``--context-len`` for a fixed number of
steps (equal steps, not equal time: the variants cost the same per short step, and more per long one), one
thread, seed 1337, mostly on 128-character windows:

* ``--offsets``: each 128-character window is placed at a random absolute position in ``[0, context_len - 128]``
  (a gather of the sinusoidal table), so every position of the long window is trained;
* ``--long-every K``: every K-th step draws full ``context_len`` windows instead (batch scaled down to keep the
  tokens per step), so the model also learns to attend over the whole window.

It prints the whole-validation-split loss on 128-character windows (what the 5-minute target measures), on
``context_len`` windows, by position bucket (does the model use, or break on, the positions past 128?), the CPU
seconds, and a 500-character sample through the KV cache. Results: ``benchmarks/README.md``, "KV-cached generation".
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import torch
import torch.nn.functional as F
from torch import nn

from gptedu.char.kvcache import generate_cached
from gptedu.data import get_batch
from gptedu.trainer import Trainer, presets

SHORT = 128


class OffsetPositions(nn.Module):
    """The sinusoidal table, added at a random absolute offset per row while training (at 0 in eval mode)."""

    def __init__(self, pe: torch.Tensor, window: int, enabled: bool):
        super().__init__()
        self.register_buffer("pe", pe)
        self.window, self.enabled = window, enabled
        self.gen = torch.Generator().manual_seed(7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq, _ = x.shape
        if not (self.training and self.enabled) or seq >= self.window:
            return x + self.pe[:, :seq]
        offsets = torch.randint(0, self.window - seq + 1, (batch, 1), generator=self.gen)
        return x + self.pe[0][offsets + torch.arange(seq)]


class MixedWindowTrainer(Trainer):
    long_every = 0

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        window = self.model_config.context_len
        if self.long_every and self.step % self.long_every == 0:
            return get_batch(self.train_data, self.config.batch_size * SHORT // window, window, self.batch_generator)
        return get_batch(self.train_data, self.config.batch_size, SHORT, self.batch_generator)


@torch.no_grad()
def loss_by_position(model: nn.Module, data: torch.Tensor, seq_len: int, batch: int = 16) -> torch.Tensor:
    """Mean loss at each position ``(seq_len,)`` over every non-overlapping ``seq_len`` window of ``data``."""
    model.eval()
    n = (len(data) - 1) // seq_len
    x, y = data[: n * seq_len].view(n, seq_len), data[1 : n * seq_len + 1].view(n, seq_len)
    total = torch.zeros(seq_len, dtype=torch.float64)
    for i in range(0, n, batch):
        logits = model(x[i : i + batch])
        total += F.cross_entropy(logits.transpose(1, 2), y[i : i + batch], reduction="none").sum(0).double()
    return total / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--context-len", type=int, default=512)
    parser.add_argument("--steps", type=int, default=1675, help="the 1-thread plan of the default preset's search")
    parser.add_argument("--offsets", action="store_true")
    parser.add_argument("--long-every", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)

    model_cfg, train_cfg = presets()["default"]
    model_cfg = dataclasses.replace(model_cfg, context_len=args.context_len)
    train_cfg = dataclasses.replace(
        train_cfg, max_steps=args.steps, max_time=None, out_dir=None, progress=False,
        num_threads=1, eval_interval=0, log_evals=False,
    )  # fmt: skip
    MixedWindowTrainer.long_every = args.long_every
    trainer = MixedWindowTrainer(train_cfg, model_cfg)
    trainer.seq_len = SHORT  # the periodic estimates use 128-character windows too
    trainer.model.pos_encoding = OffsetPositions(trainer.model.pos_encoding.pe, args.context_len, args.offsets)
    cpu = time.process_time()
    trainer.train()
    cpu = time.process_time() - cpu

    by_pos = loss_by_position(trainer.model, trainer.val_data, args.context_len)
    buckets = [(0, 64), (64, 128), (128, 256), (256, 384), (384, 512)]
    prompt = torch.tensor([trainer.tokenizer.encode("ROMEO:")])
    out = generate_cached(trainer.model, prompt, 500, temperature=0.8, generator=torch.Generator().manual_seed(1))
    result = {
        "args": vars(args),
        "cpu_seconds": round(cpu, 1),
        "val_on_128_windows": loss_by_position(trainer.model, trainer.val_data, SHORT).mean().item(),
        f"val_on_{args.context_len}_windows": by_pos.mean().item(),
        "val_by_position": {f"{a}-{b}": by_pos[a:b].mean().item() for a, b in buckets if b <= args.context_len},
        "sample": trainer.tokenizer.decode(out[0]),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
