"""Char-GPT generation with and without the KV cache: tokens/s, the speed-up, and a token-identity check.

    python benchmarks/bench_generation.py                         # default preset, "ROMEO:" + 500 new tokens
    python benchmarks/bench_generation.py --checkpoint runs/default/ckpt.pt --threads 2
    python benchmarks/bench_generation.py --context-len 512       # same shape, a window that holds 506 tokens

The baseline is the teaching ``GPTModel.generate``, which runs the whole (cropped) context through the model for
every new token; ``gptedu.char.kvcache.generate_cached`` runs the prompt once and then one position per step. Both
run greedy (temperature 0) on the same model in the same process, alternating, ``--repeats`` times; the figures
are medians. Every run checks that the two produce the same tokens, and one seeded sampling run (temperature 1,
same ``torch.Generator`` seed) is checked too. Without ``--checkpoint`` the weights are random: speed does not
depend on them.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from gptedu.char import GPTModel
from gptedu.char.kvcache import generate_cached
from gptedu.checkpoint import load_for_generation
from gptedu.configs import DEFAULT_MODEL
from gptedu.data import CharTokenizer, load_tinyshakespeare


def timed(fn) -> tuple[float, float, torch.Tensor]:
    """Wall-clock seconds, CPU seconds of this process, and the result of ``fn()``."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - start, time.process_time() - cpu, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="a trained checkpoint (default: the default preset, random weights)")
    parser.add_argument("--prompt", default="ROMEO:")
    parser.add_argument("--new-tokens", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 on a shared machine)")
    parser.add_argument(
        "--context-len", type=int, help="the default preset's shape with this context_len instead (random weights)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.checkpoint:
        model, tokenizer = load_for_generation(args.checkpoint)
    else:
        tokenizer = CharTokenizer.from_text(load_tinyshakespeare())
        torch.manual_seed(0)
        cfg = (
            DEFAULT_MODEL
            if args.context_len is None
            else dataclasses.replace(DEFAULT_MODEL, context_len=args.context_len)
        )
        model = GPTModel.from_config(cfg)
    model.eval()
    prompt = torch.tensor([tokenizer.encode(args.prompt)], dtype=torch.long)
    n, ctx = args.new_tokens, model.context_len
    total = prompt.size(1) + n
    print(f"model: {model.config}  ({sum(p.numel() for p in model.parameters()):,} parameters)")
    print(f"prompt {args.prompt!r} ({prompt.size(1)} tokens) + {n} new tokens = {total}; context_len {ctx}; "
          f"threads {args.threads}; greedy; median of {args.repeats}")  # fmt: skip
    if total > ctx:
        cached_steps = max(0, ctx - prompt.size(1) + 1)
        print(
            f"note: the sequence outgrows context_len after {cached_steps} new tokens; from there the cached "
            "generator recomputes the window every step (absolute positions), so only those steps are faster."
        )

    lengths = [n]
    if total > ctx and ctx > prompt.size(1):
        lengths.append(ctx - prompt.size(1))  # also the part that fits the window, where the cache is used
    for count in lengths:
        measure(model, tokenizer, prompt, count, args.repeats)


def measure(model: GPTModel, tokenizer: CharTokenizer, prompt: torch.Tensor, n: int, repeats: int) -> None:
    """Time ``n`` greedy tokens both ways (alternating), check identity, print medians and the speed-up."""
    runs: dict[str, list[float]] = {"uncached": [], "cached": []}
    cpu: dict[str, list[float]] = {"uncached": [], "cached": []}
    for _ in range(repeats):
        t_plain, c_plain, plain = timed(lambda: model.generate(prompt, n, temperature=0))
        t_cache, c_cache, cached = timed(lambda: generate_cached(model, prompt, n, temperature=0))
        cpu["uncached"].append(c_plain)
        cpu["cached"].append(c_cache)
        if not torch.equal(plain, cached):
            first = int((plain != cached).nonzero()[0, 1])
            raise SystemExit(f"FAIL: cached and uncached greedy generation differ from position {first}")
        runs["uncached"].append(t_plain)
        runs["cached"].append(t_cache)
    sampled = [
        fn(model, prompt, n, temperature=1.0, generator=torch.Generator().manual_seed(1))
        for fn in (GPTModel.generate, generate_cached)
    ]
    same_sampled = torch.equal(sampled[0], sampled[1])

    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"-- {n} new tokens (prompt + new = {prompt.size(1) + n}, context_len {model.context_len})")
    for k in ("uncached", "cached"):
        print(f"{k:>9}: median {med[k]:.3f} s -> {n / med[k]:8.0f} tokens/s   (runs: "
              + ", ".join(f"{t:.3f}" for t in runs[k]) + ")")  # fmt: skip
    cpu_ratio = statistics.median(cpu["uncached"]) / statistics.median(cpu["cached"])
    print(f"speed-up with KV cache: {med['uncached'] / med['cached']:.1f}x wall-clock ({cpu_ratio:.1f}x in CPU time); "
          "greedy tokens identical in every run; "
          f"seeded sampling identical: {same_sampled}")  # fmt: skip
    print("sample (greedy, cached):", repr(tokenizer.decode(cached[0])[:120]))
    if not same_sampled:
        raise SystemExit("FAIL: seeded sampling differs between cached and uncached generation")


if __name__ == "__main__":
    main()
