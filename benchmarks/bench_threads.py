"""Threads: training steps and generation with 1 thread, with PyTorch's default, and with ``pick_threads``.

    python benchmarks/bench_threads.py                 # default shape: 8 rounds of 5 training steps, 300 characters
    python benchmarks/bench_threads.py --rounds 4 --steps 3 --chars 200

PyTorch's default is one thread per core. Its threads wait for each other at every operation, so when another
program holds one of the cores, a step waits for a thread that is not running: on a busy machine two threads can be
far slower than one. ``gptedu.device.pick_threads`` counts the CPUs idle right now (training) and uses one thread for
generation. The contenders take turns round by round (so a change in the load hits all of them alike); the table
gives medians and the paired ratio to one thread, with the load average and the idle CPUs seen by ``pick_threads``.

Two contenders run PyTorch's default thread count: as ``import torch`` sets it up, and set again by
``torch.set_num_threads``, which also turns MKL's dynamic threading off (so MKL no longer runs a small matrix
product on fewer threads than the maximum). ``gptedu.device.use_threads`` leaves the first alone for that reason;
this table says what it is worth (the dynamic flag is switched back on through MKL's own ``MKL_Set_Dynamic``).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import time
from pathlib import Path

import torch

from gptedu.char.kvcache import generate_cached
from gptedu.device import idle_cpus, pick_threads, usable_cpus
from gptedu.trainer import Trainer, presets


def mkl_set_dynamic(on: bool) -> bool:
    """MKL's dynamic threading on or off (``MKL_Set_Dynamic`` in libtorch_cpu); False where this PyTorch has no MKL."""
    try:
        lib = ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"))
        lib.MKL_Set_Dynamic(ctypes.c_int(int(on)))
    except (OSError, AttributeError):
        return False
    return True


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
    untouched = f"{default_threads}, MKL dynamic (as imported)"
    contenders = {"1 thread": 1, f"{default_threads}, set_num_threads": default_threads}
    if mkl_set_dynamic(True):
        contenders[untouched] = default_threads
    times: dict[str, dict[str, list[float]]] = {k: {"train": [], "generate": []} for k in contenders}
    picks: list[tuple[int, int]] = []
    for _ in range(args.rounds):
        picks.append((pick_threads("train"), pick_threads("generate")))
        for name, threads in contenders.items():
            torch.set_num_threads(threads)
            mkl_set_dynamic(name == untouched)  # set_num_threads has just turned it off
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
            print(f"{task:>8} | {name:<32} | median {statistics.median(ts):.3f} {unit} | vs 1 thread {paired:.2f}x")


if __name__ == "__main__":
    main()
