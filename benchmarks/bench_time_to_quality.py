"""Time to quality: train within a wall-clock budget, beside baselines in the same run; report whole-split val loss.

    python benchmarks/bench_time_to_quality.py                          # default budget (285 s): new vs baseline
    python benchmarks/bench_time_to_quality.py --budget 75              # `python -m gptedu train --max-time 75`
    python benchmarks/bench_time_to_quality.py --threads 1              # one thread for the whole budget
    python benchmarks/bench_time_to_quality.py --slowdown 20 --budget 60 120 285 600 \\
        --variants new baseline nanogpt --jobs 6                        # a machine 20x slower: the val-vs-budget curve

Every run is one fresh Python process that trains exactly as ``python -m gptedu train --max-time S`` does (no
checkpoint written) and then scores the model on the *whole* validation split (every non-overlapping
``context_len`` window of the last 10% of the text, not a random sample). Variants:

``new``        this tree's ``default`` preset (the budget-driven schedule), ``max_time`` = the budget;
``baseline``   the same command on the code of ``--baseline-rev`` (default: main before the budget-driven schedule,
               ``3290d16``: a 100-step warmup, a cosine that follows the clock, ``max_steps`` 3,000), exported with
               ``git archive`` into a temporary directory and put first on ``PYTHONPATH``;
``nanogpt``    nanoGPT's CPU recipe for shakespeare_char (the ``nanogpt-cpu`` preset of the baseline tree: block 64,
               batch 12, lr 1e-3, 100 warmup steps, a cosine over 2,000 iterations) stopped by the clock, as its
               ``max_iters`` loop would be if you killed it when the budget is spent. Its val loss is over 64-character
               windows (its own context), so it reads a little higher than the others' 128-character windows.

Runs are interleaved (budget by budget, variant by variant), so slow drifts in the machine's load hit every
variant alike; each row prints the load average at its start and end.

``--slowdown K`` simulates a machine K times slower than 2 quiet cores on a virtual clock (``VirtualClock``): each
training step advances the trainer's clock by K times its duration on 2 quiet cores (its tokens at
``QUIET_TOKENS_PER_S``), each loss estimate (or timed forward pass) by K times its forward passes, and a model of
another shape than the preset's (the trainer's own choice for a short budget, or a variant such as
``new:num_layers=2,d_model=64,d_ff=128``) by that times its measured CPU-time ratio to the preset's shape
(``VirtualClock.shape_ratio``); the model trains for real, 1 thread. So
the result is the one that machine would get, whatever the load here (the load only makes the run take longer),
and several runs can share the machine (``--jobs``). ``--slowdown 1`` is a quiet 2-core machine, simulated.
"training" is then the simulated machine's seconds.
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE_REV = "3290d16"
# tokens/s of a training step of the preset's own batch on 2 quiet cores (benchmarks/README.md: 27.7k and 30.1k for
# the default shape; 19.5k for nanoGPT's CPU-recipe shape), and the part of a step that does not shrink with the
# batch (Python, the optimizer, launching kernels): 7.5 ms of CPU per step at 1 thread, measured as
# 7.5 ms + 8.1 ms per window (batch 2 to 32, default shape), counted here as if threads did not shorten it
QUIET_TOKENS_PER_S = {"default": 29_000.0, "nanogpt-cpu": 19_500.0}
STEP_OVERHEAD_S = 0.0075
VARIANTS = {"new": ("tree", "default"), "baseline": ("baseline", "default"), "nanogpt": ("baseline", "nanogpt-cpu")}


# --- one run (in its own process) ----------------------------------------------------------------------------------


def full_split_loss(model, data, seq_len: int, batch: int = 64) -> float:
    """Mean next-token loss over every non-overlapping ``seq_len`` window of ``data`` (the whole split)."""
    import torch
    import torch.nn.functional as F

    model.eval()
    n = (len(data) - 1) // seq_len
    x = data[: n * seq_len].view(n, seq_len)
    y = data[1 : n * seq_len + 1].view(n, seq_len)
    total = 0.0
    with torch.no_grad():
        for i in range(0, n, batch):
            logits = model(x[i : i + batch])
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y[i : i + batch].reshape(-1), reduction="sum")
            total += float(loss)
    return total / (n * seq_len)


class VirtualClock:
    """Stands in for the trainer module's ``time``: the clock of a machine of a given speed, whatever this one does.

    A training step of ``t`` tokens moves it on by ``slowdown * (overhead + (full - overhead) * t / full_tokens)``,
    where ``full`` is the quiet 2-core time of a step of the preset's own batch; a loss estimate (or any other
    forward pass) by a third of that per batch. Nothing else moves it. A model of another shape than the preset's
    (chosen by the trainer for a short budget, or by a variant) is charged that time multiplied by the ratio of
    its measured CPU time per step to the preset shape's at the same number of windows (``shape_ratio``). The
    model trains for real, at whatever speed this machine manages under its load, but every decision the trainer
    takes by the clock (the schedule, the batch and the model it fits to the budget, the stop) sees the simulated
    machine.
    """

    def __init__(self, slowdown: float, quiet_tokens_per_s: float, full_tokens: int, model_config) -> None:
        self.now = 0.0
        full = full_tokens / quiet_tokens_per_s
        self.overhead = slowdown * STEP_OVERHEAD_S
        self.per_token = slowdown * (full - STEP_OVERHEAD_S) / full_tokens
        self.reference = model_config  # the preset's shape: the one the two constants above were measured on
        self.ratios: dict[tuple, float] = {}

    def perf_counter(self) -> float:
        return self.now

    def shape_ratio(self, trainer) -> float:
        """CPU time of a training step of ``trainer``'s model shape over the preset shape's, at its batch size.

        1.0 for the preset's shape. Otherwise measured once per shape and batch, on throwaway copies (1 thread,
        thread CPU time, the two shapes in turn: median of 5 steps each after 2 unmeasured), so a smaller model
        is charged what it really costs on a CPU: less than its FLOPs say (small matrix products run less
        efficiently).
        """
        import dataclasses

        import torch

        from gptedu import trainer as trainer_module

        shape = dataclasses.replace(trainer.model_config, vocab_size=self.reference.vocab_size)
        batch = trainer.config.batch_size
        if shape == self.reference:
            return 1.0
        key = (tuple(sorted(dataclasses.asdict(shape).items())), batch)
        if key not in self.ratios:
            rng_state, threads = torch.get_rng_state(), torch.get_num_threads()
            torch.set_num_threads(1)
            runs = []
            for cfg in (self.reference, shape):
                model = trainer_module.build_model(dataclasses.replace(cfg, vocab_size=trainer.model_config.vocab_size))
                gen = torch.Generator().manual_seed(0)
                xy = trainer_module.get_batch(trainer.train_data, batch, cfg.context_len, gen)
                runs.append((model, trainer_module.make_optimizer(model, trainer.config), xy, []))
            for i in range(7):
                for model, optimizer, (x, y), times in runs:
                    start = time.thread_time()
                    trainer._loss(model, x, y).backward()
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                    if i >= 2:
                        times.append(time.thread_time() - start)
            medians = [sorted(times)[len(times) // 2] for *_, times in runs]
            self.ratios[key] = medians[1] / medians[0]
            torch.set_rng_state(rng_state)
            torch.set_num_threads(threads)
        return self.ratios[key]

    def install(self, trainer_module) -> None:
        trainer_cls, clock = trainer_module.Trainer, self
        step, estimate = trainer_cls.train_step, trainer_cls.estimate_loss

        def slow_step(self):
            tokens = self.config.batch_size * clock.reference.context_len  # the preset shape's step, times the ratio
            clock.now += (clock.overhead + clock.per_token * tokens) * clock.shape_ratio(self)
            return step(self)

        def slow_estimate(self):
            tokens = 2 * self.config.eval_batches * self.config.batch_size * clock.reference.context_len
            clock.now += clock.per_token * tokens / 3 * clock.shape_ratio(self)
            return estimate(self)

        trainer_cls.train_step, trainer_cls.estimate_loss = slow_step, slow_estimate
        if hasattr(trainer_cls, "forward_pass"):  # the pass that the budget fit times (not in the baseline's tree)
            forward = trainer_cls.forward_pass

            def slow_forward(self, generator):
                tokens = self.config.batch_size * clock.reference.context_len
                clock.now += clock.per_token * tokens / 3 * clock.shape_ratio(self)
                return forward(self, generator)

            trainer_cls.forward_pass = slow_forward
        trainer_module.time = self


def worker(spec: dict) -> dict:
    import dataclasses

    import torch

    import gptedu
    from gptedu import trainer as trainer_module

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    load_start = os.getloadavg()[0]
    model_cfg, train_cfg = trainer_module.presets()[spec["preset"]]
    changes = dict(
        out_dir=None, seed=spec["seed"], device="cpu", progress=False, log_evals=False, max_time=spec["budget"]
    )
    if spec["threads"]:
        changes["num_threads"] = spec["threads"]
    model_fields = {f.name for f in dataclasses.fields(model_cfg)}
    model_changes = {}
    for item in filter(None, spec["variant"].partition(":")[2].split(",")):  # e.g. new:warmup_fraction=0.1
        key, value = item.split("=")
        (model_changes if key in model_fields else changes)[key] = ast.literal_eval(value)
    full_tokens = train_cfg.batch_size * model_cfg.context_len  # the preset's own batch, before any change
    if spec["slowdown"]:
        clock = VirtualClock(spec["slowdown"], QUIET_TOKENS_PER_S[spec["preset"]], full_tokens, model_cfg)
        clock.install(trainer_module)
    if model_changes and hasattr(train_cfg, "min_tokens_per_param"):
        changes.setdefault("min_tokens_per_param", None)  # a shape given by hand is trained as it is (as the CLI does)
    train_cfg = dataclasses.replace(train_cfg, **changes)
    model_cfg = dataclasses.replace(model_cfg, **model_changes)
    start = time.perf_counter()
    trainer = trainer_module.Trainer(train_cfg, model_cfg)
    trainer.train()
    seconds = time.perf_counter() - start
    torch.set_num_threads(max(1, spec["threads"] or torch.get_num_threads()))
    full_val = full_split_loss(trainer.model, trainer.val_data, trainer.seq_len)
    sample = ""
    if spec["sample"]:
        sample = trainer.sample("\n", spec["sample"], temperature=0.8, seed=spec["seed"])
    return {
        **spec,
        "gptedu": str(Path(gptedu.__file__).parent),
        "threads_used": torch.get_num_threads(),
        "steps": trainer.step,
        "model": "{num_layers} x {d_model}".format(**dataclasses.asdict(trainer.model_config)),
        "batch": train_cfg.batch_size,
        "tokens": trainer.step * train_cfg.batch_size * trainer.seq_len,
        "train_seconds": trainer.last_run["seconds"],
        "run_seconds": seconds,
        "last_val_estimate": trainer.history["val_loss"][-1],
        "full_val": full_val,
        "load_start": load_start,
        "load_end": os.getloadavg()[0],
        "sample": sample,
    }


# --- the driver -----------------------------------------------------------------------------------------------------


def export_baseline(rev: str, into: Path) -> Path:
    """``git archive REV gptedu`` unpacked into ``into``: a tree that ``PYTHONPATH`` puts before this checkout."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "gptedu"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def launch(spec: dict, pythonpath: str | None) -> dict:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("GPTEDU_DATA", str(REPO.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"))
    if spec["threads"]:
        env["OMP_NUM_THREADS"] = str(spec["threads"])
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)], env=env, capture_output=True, text=True, cwd=REPO
    )
    if proc.returncode != 0:
        raise RuntimeError(f"run {spec} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def row(r: dict) -> str:
    return (
        f"| {r['variant']} | {r['budget']:g} s | {r['threads_used']} | {r.get('model', '4 x 128')}, "
        f"{r.get('batch', '?')} | {r['steps']:,} | {r['tokens'] / 1e6:.2f}M | "
        f"{r['train_seconds']:.0f} s | {r['last_val_estimate']:.3f} | **{r['full_val']:.4f}** | "
        f"{r['load_start']:.1f} -> {r['load_end']:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=float, nargs="+", default=[285.0], help="seconds per run (default: 285)")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["new", "baseline"],
        help=f"{', '.join(VARIANTS)}; a variant may change settings: new:warmup_fraction=0.1,lr=7e-3",
    )
    parser.add_argument("--baseline-rev", default=BASELINE_REV, help=f"git revision of the baseline ({BASELINE_REV})")
    parser.add_argument("--threads", type=int, help="torch threads (default: each tree's own default)")
    parser.add_argument("--slowdown", type=float, help="simulate a machine this many times slower than 2 quiet cores")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (only sensible with --slowdown)")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--sample", type=int, default=0, help="characters of sample to print per run (default 0)")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    threads = args.threads or (1 if args.slowdown else None)
    print(f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}; baseline {args.baseline_rev}")
    with tempfile.TemporaryDirectory(prefix="gptedu-baseline-") as tmp:
        paths = {"tree": str(REPO), "baseline": str(export_baseline(args.baseline_rev, Path(tmp)))}
        specs = [
            dict(variant=v, preset=VARIANTS[v.partition(":")[0]][1], budget=b, threads=threads, slowdown=args.slowdown,
                 seed=args.seed, sample=args.sample)
            for b in args.budget for v in args.variants
        ]  # fmt: skip
        print(
            "| variant | budget | threads | model, batch | steps | tokens | training | last estimate | whole-split val "
            "| load |\n|---|---|---|---|---|---|---|---|---|---|",
            flush=True,
        )
        results = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = [pool.submit(launch, s, paths[VARIANTS[s["variant"].partition(":")[0]][0]]) for s in specs]
            for future in futures:  # in submission order: the table reads budget by budget
                r = future.result()
                results.append(r)
                print(row(r), flush=True)
    for r in results:
        if r["sample"]:
            print(f"--- {r['variant']}, {r['budget']:g} s ---\n{r['sample']}")
    for b in args.budget:
        by = {r["variant"]: r["full_val"] for r in results if r["budget"] == b}
        if "new" in by:
            others = ", ".join(f"{v} {x:.4f} ({by['new'] - x:+.4f})" for v, x in by.items() if v != "new")
            print(f"budget {b:g} s: new {by['new']:.4f}; {others}")
    gptedus = {r["variant"]: r["gptedu"] for r in results}
    print(f"trees: {gptedus}; load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
