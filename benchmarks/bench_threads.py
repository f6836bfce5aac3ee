"""Threads: training steps and generation with 1 thread, with PyTorch's default, and with ``pick_threads``.

    python benchmarks/bench_threads.py                 # default shape: 8 rounds of 5 training steps, 300 characters
    python benchmarks/bench_threads.py --rounds 4 --steps 3 --chars 200

PyTorch's default is one thread per core. Its threads wait for each other at every operation, so when another
program holds one of the cores, a step waits for a thread that is not running: on a busy machine two threads can be
far slower than one. ``gptedu.device.pick_threads`` counts the CPUs idle right now (training) and uses one thread for
generation. The contenders take turns round by round (so a change in the load hits all of them alike); the table
gives medians and the paired ratio to one thread, with the load average and the idle CPUs seen by ``pick_threads``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from gptedu.char.kvcache import generate_cached
from gptedu.device import idle_cpus, pick_threads, usable_cpus
from gptedu.trainer import Trainer, presets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5, help="training steps per round and contender")
    parser.add_argument("--chars", type=int, default=300, help="characters generated per round and contender")
    args = parser.parse_args()

    default_threads = torch.get_num_threads()  # PyTorch's choice, before anything sets it
    picked = {"train": pick_threads("train"), "generate": pick_threads("generate")}
    print(
        f"{usable_cpus()} usable CPUs, {idle_cpus() or 0:.1f} idle now, load average {os.getloadavg()[0]:.2f}; "
        f"PyTorch default {default_threads} threads; pick_threads: train {picked['train']}, "
        f"generate {picked['generate']}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
    )
    model_cfg, train_cfg = presets()["default"]
    trainer = Trainer(train_cfg, model_cfg)  # the default preset (its thread count is set per contender below)
    model = trainer.model
    prompt = torch.tensor([trainer.tokenizer.encode("ROMEO:")])
    contenders = {"1 thread": 1, f"PyTorch default ({default_threads})": default_threads}
    times: dict[str, dict[str, list[float]]] = {k: {"train": [], "generate": []} for k in contenders}
    picks: list[tuple[int, int]] = []
    for _ in range(args.rounds):
        picks.append((pick_threads("train"), pick_threads("generate")))
        for name, threads in contenders.items():
            torch.set_num_threads(threads)
            start = time.perf_counter()
            for _ in range(args.steps):
                trainer.train_step()
            times[name]["train"].append((time.perf_counter() - start) / args.steps)
            start = time.perf_counter()
            gen = torch.Generator().manual_seed(0)
            generate_cached(model.eval(), prompt, args.chars, temperature=1.0, generator=gen)
            model.train()
            times[name]["generate"].append(time.perf_counter() - start)
    print(f"pick_threads per round (train, generate): {picks}; load average at end {os.getloadavg()[0]:.2f}")
    base = times["1 thread"]
    for task, unit in (("train", "s per step"), ("generate", f"s for {args.chars} characters")):
        for name in contenders:
            ts = times[name][task]
            paired = statistics.median(a / b for a, b in zip(ts, base[task], strict=True))
            print(f"{task:>8} | {name:<22} | median {statistics.median(ts):.3f} {unit} | vs 1 thread {paired:.2f}x")


if __name__ == "__main__":
    main()
