"""Time to quality: train a preset on TinyShakespeare within a wall-clock budget; report val loss, speed, a sample.

    python benchmarks/bench_time_to_quality.py                       # the default preset, 5 minutes (its max_time)
    python benchmarks/bench_time_to_quality.py --max-seconds 60      # a quick look (the schedule is scaled down)
    python benchmarks/bench_time_to_quality.py --compare nanogpt-cpu # then nanoGPT's CPU recipe, same budget

It trains with ``gptedu.trainer.Trainer`` exactly as ``python -m gptedu train`` does (no checkpoint written), then
prints: parameters, steps, tokens/s, the training wall time (evaluations included; this is what ``max_time``
bounds) and the whole run's wall time (data loading included), the best val loss of the periodic estimates, the val
loss over the *whole* validation split (every non-overlapping ``context_len`` window, not a random sample), and a
500-character sample. Target: whole-split val loss <= 1.55 (aim 1.50) within 300 s on 2 CPU cores.

``--no-time-limit`` runs the whole plan however long it takes (the plan's quality, measured on a busy machine;
its wall time then says nothing about a quiet one). ``--max-seconds S`` replaces ``max_time`` and scales
``max_steps`` by ``S / max_time`` so the learning-rate schedule still completes (the preset's steps are sized for
300 s on a quiet 2-core machine). ``--compare PRESET`` trains a second preset under the same budget and prints the
two side by side with the ratio of their val losses.
The machine's load average is printed at start and end: on a shared machine, quote it next to the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import torch
import torch.nn.functional as F

from gptedu.char.kvcache import generate_cached
from gptedu.trainer import Trainer, presets


@torch.no_grad()
def full_split_loss(model: torch.nn.Module, data: torch.Tensor, seq_len: int, batch: int = 64) -> float:
    """Mean next-token loss over every non-overlapping ``seq_len`` window of ``data`` (the whole split)."""
    model.eval()
    n = (len(data) - 1) // seq_len
    x = data[: n * seq_len].view(n, seq_len)
    y = data[1 : n * seq_len + 1].view(n, seq_len)
    total = 0.0
    for i in range(0, n, batch):
        logits = model(x[i : i + batch])
        total += F.cross_entropy(logits.reshape(-1, logits.size(-1)), y[i : i + batch].reshape(-1), reduction="sum")
    return float(total) / (n * seq_len)


def run(preset: str, max_seconds: float | None, threads: int | None, seed: int, no_limit: bool = False) -> dict:
    model_cfg, train_cfg = presets()[preset]
    changes = {"out_dir": None, "seed": seed, "num_threads": threads, "device": "cpu", "progress": False}
    if no_limit:
        changes["max_time"] = None
    elif max_seconds is not None:
        base = train_cfg.max_time or max_seconds
        changes["max_time"] = max_seconds
        changes["max_steps"] = max(1, round(train_cfg.max_steps * max_seconds / base))
    train_cfg = dataclasses.replace(train_cfg, **changes)
    start = time.perf_counter()
    trainer = Trainer(train_cfg, model_cfg)
    trainer.train()
    total = time.perf_counter() - start
    model = trainer.model
    full_val = full_split_loss(model, trainer.val_data, trainer.seq_len)
    prompt = torch.tensor([trainer.tokenizer.encode("\n")])
    out = generate_cached(model, prompt, 500, temperature=0.8, generator=torch.Generator().manual_seed(seed))
    h = trainer.history
    return {
        "preset": preset,
        "model": trainer.model_config,
        "train": train_cfg,
        "params": sum(p.numel() for p in model.parameters()),
        "steps": trainer.step,
        "tokens_per_s": trainer.last_run["tokens_per_s"],
        "train_seconds": trainer.last_run["seconds"],
        "total_seconds": total,
        "best_val": min(h["val_loss"]),
        "last_val": h["val_loss"][-1],
        "full_val": full_val,
        "sample": trainer.tokenizer.decode(out[0]),
    }


def report(r: dict) -> None:
    m, t = r["model"], r["train"]
    print(f"== preset {r['preset']!r}: {m}")
    print(f"   batch {t.batch_size} x {m.context_len}, lr {t.lr:g} -> {t.min_lr:g}, warmup {t.warmup_steps}, "
          f"max_steps {t.max_steps}, max_time {t.max_time}, fused {t.fused}")  # fmt: skip
    print(f"   params {r['params']:,}; steps {r['steps']}; {r['tokens_per_s']:,.0f} tokens/s")
    print(
        f"   wall time: training {r['train_seconds']:.1f} s (evaluations included), "
        f"whole run {r['total_seconds']:.1f} s"
    )
    print(f"   val loss: best periodic estimate {r['best_val']:.4f}, last {r['last_val']:.4f}, "
          f"whole val split {r['full_val']:.4f}")  # fmt: skip
    print("   sample (temperature 0.8, 500 characters after a newline):")
    print("   " + r["sample"].replace("\n", "\n   "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="default", choices=sorted(presets()))
    parser.add_argument("--max-seconds", type=float, help="training budget in seconds (default: the preset's)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: PyTorch's choice, all cores)")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument(
        "--no-time-limit",
        action="store_true",
        help="run the preset's whole plan (max_steps) however long it takes: the quality of the plan on a busy machine",
    )
    parser.add_argument("--compare", choices=sorted(presets()), help="also train this preset under the same budget")
    args = parser.parse_args()

    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}")
    results = [run(args.preset, args.max_seconds, args.threads, args.seed, args.no_time_limit)]
    report(results[0])
    if args.compare:
        budget = args.max_seconds if args.max_seconds is not None else results[0]["train"].max_time
        results.append(run(args.compare, budget, args.threads, args.seed))
        report(results[1])
        a, b = results
        print(
            f"whole-split val loss {a['preset']} {a['full_val']:.4f} vs {b['preset']} {b['full_val']:.4f} "
            f"(ratio {a['full_val'] / b['full_val']:.3f}); tokens/s ratio {a['tokens_per_s'] / b['tokens_per_s']:.2f}"
        )
    target = results[0]["full_val"]
    verdict = "meets" if target <= 1.55 else "misses"
    print(
        f"{verdict} the target (whole-split val loss <= 1.55): {target:.4f}; "
        f"load average at end {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
