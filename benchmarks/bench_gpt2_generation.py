"""Tokens/s of GPT-2-family generation with and without the KV cache (greedy, same tokens checked).

    python benchmarks/bench_gpt2_generation.py                      # small GPT-2-shaped model, 500 new tokens
    python benchmarks/bench_gpt2_generation.py --preset gpt2-124m --device cuda

Uncached ``gen_text`` re-runs the whole context (and the output head on every position) for each new token;
``gen_text_cached`` runs one position per step. Prints the median over ``--repeats`` runs and the speed-up.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from gptedu.gpt2 import GPT2_PRESETS, GPTConfig, GPTModel, gen_text, gen_text_cached


def timed(fn, device: str) -> tuple[float, torch.Tensor]:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(GPT2_PRESETS), help="a GPT-2 size instead of the small model")
    parser.add_argument("--emb-dim", type=int, default=128)
    parser.add_argument("--n-layers", type=int, default=4)
    parser.add_argument("--n-heads", type=int, default=4)
    parser.add_argument("--vocab-size", type=int, default=50257)
    parser.add_argument("--context-len", type=int, default=1024)
    parser.add_argument("--prompt-len", type=int, default=12)
    parser.add_argument("--new-tokens", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the course machine is shared)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    if args.preset:
        cfg = GPT2_PRESETS[args.preset].replace(drop_rate=0.0, qkv_bias=True, tie_weights=True)
    else:
        cfg = GPTConfig(
            context_len=args.context_len, vocab_size=args.vocab_size, emb_dim=args.emb_dim, n_heads=args.n_heads,
            n_layers=args.n_layers, drop_rate=0.0, qkv_bias=True, tie_weights=True,
        )  # fmt: skip
    if args.prompt_len + args.new_tokens > cfg.context_len:
        print(f"note: {args.prompt_len + args.new_tokens} tokens exceed context_len {cfg.context_len}; past it the "
              "cached generator recomputes the window every step (learned absolute positions).")
    torch.manual_seed(0)
    model = GPTModel(cfg).to(args.device).eval()
    prompt = torch.randint(0, cfg.vocab_size, (1, args.prompt_len), device=args.device)
    n = args.new_tokens
    print(f"model: {cfg}")
    print(f"device {args.device}, threads {args.threads}, prompt {args.prompt_len} tokens, {n} new tokens, greedy")

    runs = {"uncached": [], "cached": []}
    for _ in range(args.repeats):
        t_plain, plain = timed(lambda: gen_text(model, prompt, n, cfg.context_len), args.device)
        t_cache, cached = timed(lambda: gen_text_cached(model, prompt, n, cfg.context_len), args.device)
        if not torch.equal(plain, cached):
            raise SystemExit("cached and uncached generation differ: the cache is wrong")
        runs["uncached"].append(t_plain)
        runs["cached"].append(t_cache)
    med = {k: statistics.median(v) for k, v in runs.items()}
    for k in ("uncached", "cached"):
        print(f"{k:>9}: median {med[k]:.2f} s  ->  {n / med[k]:8.1f} tokens/s   (runs: "
              + ", ".join(f"{t:.2f}" for t in runs[k]) + ")")
    print(f"speed-up with KV cache: {med['uncached'] / med['cached']:.1f}x (identical tokens in every run)")


if __name__ == "__main__":
    main()
