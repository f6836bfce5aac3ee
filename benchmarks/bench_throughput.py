"""Training tokens/s: gptedu's trainer vs a straightforward fused-attention GPT, same shape, same run.

    python benchmarks/bench_throughput.py                       # nanoGPT's CPU-recipe shape, 2 threads
    python benchmarks/bench_throughput.py --preset default      # the default preset's shape instead
    python benchmarks/bench_throughput.py --threads 1 --rounds 7 --steps 20

Contenders, each doing full training steps (batch, forward, loss, backward, clip, AdamW) on TinyShakespeare:

* ``gptedu fused``: ``gptedu.trainer.Trainer`` with ``fused=True`` — the teaching ``GPTModel`` whose attention
  layers ``gptedu.char.fast.fuse`` swapped for one packed QKV weight per layer + ``F.scaled_dot_product_attention``
  (same maths and checkpoints as the teaching model; the trainer uses fused AdamW);
* ``gptedu teaching``: the same trainer on the plain teaching model (a ``ModuleList`` of heads, explicit mask);
* ``reference``: ``ReferenceGPT`` below, a compact nanoGPT-style model written for this benchmark (``c_attn``
  Linear(d, 3d) + fused SDPA, learned positions, tied output head, no biases, plain AdamW, same clip and
  schedule) — the "straightforward fused-attention implementation" the target compares against.

The contenders take turns: ``--rounds`` rounds of ``--steps`` timed steps each (after warm-up steps), so load from
other processes hits all of them alike. Tokens/s is the median over rounds; the ratios are of those medians.
Target: ``gptedu fused / reference >= 1.0``.

``--profile N`` instead runs ``N`` steps of each contender under ``torch.profiler`` (after the warm-up) and prints
where the time goes: self CPU milliseconds and calls per step for each op, side by side, largest difference first.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from gptedu.data import get_batch
from gptedu.trainer import Trainer, presets, step_lr


class ReferenceBlock(nn.Module):
    def __init__(self, d: int, heads: int, d_ff: int):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(d, bias=False)
        self.c_attn = nn.Linear(d, 3 * d, bias=False)
        self.c_proj = nn.Linear(d, d, bias=False)
        self.ln_2 = nn.LayerNorm(d, bias=False)
        self.mlp = nn.Sequential(nn.Linear(d, d_ff, bias=False), nn.GELU(), nn.Linear(d_ff, d, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, d)
        x = x + self.c_proj(y)
        return x + self.mlp(self.ln_2(x))


class ReferenceGPT(nn.Module):
    """nanoGPT-style GPT: token + learned position embeddings, pre-LN blocks, tied output head."""

    def __init__(self, vocab: int, d: int, heads: int, d_ff: int, context_len: int, layers: int):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(context_len, d)
        self.blocks = nn.ModuleList(ReferenceBlock(d, heads, d_ff) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d, bias=False)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.wte.weight
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * layers) if name.endswith(("c_proj.weight", "mlp.2.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.wte(idx) + self.wpe(torch.arange(idx.size(1)))
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))


class ReferenceLoop:
    """The plain training loop nanoGPT runs on a CPU: AdamW (decay on matrices), clip 1.0, same schedule."""

    def __init__(self, trainer: Trainer):
        cfg, mcfg = trainer.config, trainer.model_config
        torch.manual_seed(cfg.seed)
        self.model = ReferenceGPT(mcfg.vocab_size, mcfg.d_model, mcfg.num_heads, mcfg.d_ff, mcfg.context_len,
                                  mcfg.num_layers)  # fmt: skip
        params = list(self.model.parameters())
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        self.opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
        self.cfg, self.data, self.seq = cfg, trainer.train_data, mcfg.context_len
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.step = 0

    def train_step(self) -> torch.Tensor:
        for group in self.opt.param_groups:
            group["lr"] = step_lr(self.step, 0.0, self.cfg)
        x, y = get_batch(self.data, self.cfg.batch_size, self.seq, self.gen)
        logits = self.model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.opt.step()
        self.step += 1
        return loss.detach()


# Op families for the profile summary: (label, test on the op name). Self times, except the optimizer, whose
# row is the whole ``Optimizer.step`` range (its elementwise children are not counted again under "other").
_FAMILIES = [
    ("matmul (mm, addmm)", lambda op: op in ("aten::mm", "aten::addmm", "aten::bmm")),
    ("attention (fused SDPA, fwd + bwd)", lambda op: "scaled_dot_product" in op),
    ("GELU (fwd + bwd)", lambda op: "gelu" in op),
    ("LayerNorm (fwd + bwd)", lambda op: "layer_norm" in op),
    ("copies (copy_, cat)", lambda op: op in ("aten::copy_", "aten::cat")),
    ("sums (bias gradients)", lambda op: op == "aten::sum"),
]


def profile_steps(contenders: dict, steps: int, rows: int = 20) -> None:
    """Where the time goes: self CPU ms per step by op family, then the ops that differ most between the first two."""
    from torch.profiler import ProfilerActivity, profile

    tables, optimizer, inside_optimizer = {}, {}, {}
    for name, c in contenders.items():
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                c.train_step()
        events = prof.key_averages()
        tables[name] = {e.key: (e.self_cpu_time_total / 1000 / steps, e.count / steps) for e in events}
        optimizer[name] = sum(e.cpu_time_total for e in events if e.key.startswith("Optimizer.step")) / 1000 / steps
        inside_optimizer[name] = sum(
            e.self_cpu_time_total for e in events if e.key in ("aten::_fused_adamw_", "aten::lerp_", "aten::addcdiv_",
                                                               "aten::addcmul_", "aten::sqrt", "aten::div")
        ) / 1000 / steps  # fmt: skip
    names = list(tables)
    print("self CPU ms per step, profiled (slower than unprofiled; read the shares and differences):")
    print(f"{'':<36}" + "".join(f"{n:>18}" for n in names))
    totals = {n: sum(v[0] for v in t.values()) for n, t in tables.items()}
    counted = dict.fromkeys(names, 0.0)
    for label, test in _FAMILIES:
        values = {n: sum(v[0] for op, v in t.items() if test(op)) for n, t in tables.items()}
        print(f"{label:<36}" + "".join(f"{values[n]:>9.2f} ({values[n] / totals[n]:4.0%})" for n in names))
        counted = {n: counted[n] + values[n] for n in names}
    print(f"{'optimizer step (AdamW)':<36}" + "".join(f"{optimizer[n]:>9.2f} ({optimizer[n] / totals[n]:4.0%})"
                                                     for n in names))  # fmt: skip
    other = {n: totals[n] - counted[n] - inside_optimizer[n] for n in names}
    print(f"{'other (elementwise, autograd, clip)':<36}" + "".join(f"{other[n]:>9.2f} ({other[n] / totals[n]:4.0%})"
                                                                 for n in names))  # fmt: skip
    print(f"{'total':<36}" + "".join(f"{totals[n]:>9.2f}       " for n in names))
    first, second = names[0], names[1]
    ops = set(tables[first]) | set(tables[second])
    diff = {op: tables[first].get(op, (0, 0))[0] - tables[second].get(op, (0, 0))[0] for op in ops}
    print(f"\nops that differ most ({first} - {second}; ms per step, calls per step):")
    for op in sorted(ops, key=lambda o: -abs(diff[o]))[:rows]:
        a, b = tables[first].get(op, (0, 0)), tables[second].get(op, (0, 0))
        print(f"  {op[:56]:<56} {diff[op]:>+7.2f} ms   {a[0]:7.2f} ms {a[1]:5.0f}x  vs {b[0]:7.2f} ms {b[1]:5.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="nanogpt-cpu", choices=sorted(presets()))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per contender per round")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per contender first")
    parser.add_argument("--no-teaching", action="store_true", help="skip the (slower) unfused teaching model")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="profile N steps of each, print ops")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model_cfg, train_cfg = presets()[args.preset]
    common = {"progress": False, "log_evals": False, "eval_interval": 0, "max_time": None, "out_dir": None,
              "num_threads": args.threads, "device": "cpu"}  # fmt: skip
    fused = Trainer(train_cfg.__class__(**{**train_cfg.to_dict(), **common, "fused": True}), model_cfg)
    contenders = {"gptedu fused": fused, "reference": ReferenceLoop(fused)}
    if not args.no_teaching:
        teaching_cfg = train_cfg.__class__(**{**train_cfg.to_dict(), **common, "fused": False})
        contenders["gptedu teaching"] = Trainer(teaching_cfg, model_cfg, text=None)
    tokens_per_step = train_cfg.batch_size * model_cfg.context_len

    load = os.getloadavg()[0]
    print(f"preset {args.preset!r}: {model_cfg}; batch {train_cfg.batch_size} x {model_cfg.context_len} tokens")
    for name, c in contenders.items():
        model = c.model
        print(f"  {name:<16} {sum(p.numel() for p in model.parameters()):>9,} parameters, "
              f"{sum(1 for _ in model.parameters())} tensors")  # fmt: skip
    print(f"threads {args.threads}, {args.rounds} rounds x {args.steps} steps, load average at start {load:.2f}")

    for c in contenders.values():
        for _ in range(args.warmup):
            c.train_step()
    if args.profile:
        profile_steps(contenders, args.profile)
        return
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    cpu_rates: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name, c in contenders.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                loss = c.train_step()
            float(loss)
            tokens = args.steps * tokens_per_step
            rates[name].append(tokens / (time.perf_counter() - start))
            cpu_rates[name].append(tokens / (time.process_time() - cpu_start))
    med = {name: statistics.median(r) for name, r in rates.items()}
    cpu_med = {name: statistics.median(r) for name, r in cpu_rates.items()}
    print("wall-clock tokens/s (what a user sees), and per CPU-second (steadier on a shared machine with --threads 1):")
    for name, r in rates.items():
        print(f"{name:>16}: median {med[name]:8.0f} tokens/s, {cpu_med[name]:8.0f} per CPU-s  "
              f"(rounds: {', '.join(f'{x:.0f}' for x in r)}; per CPU-s: "
              f"{', '.join(f'{x:.0f}' for x in cpu_rates[name])})")  # fmt: skip
    for other, note in (("reference", "  (target >= 1.0)"), ("gptedu teaching", "")):
        if other in med:
            # each round's own ratio compares runs seconds apart, so slow drifts in the machine's load cancel
            paired = statistics.median(a / b for a, b in zip(cpu_rates["gptedu fused"], cpu_rates[other], strict=True))
            print(f"ratio gptedu fused / {other}: {med['gptedu fused'] / med[other]:.3f} wall-clock, "
                  f"{cpu_med['gptedu fused'] / cpu_med[other]:.3f} per CPU-s, median of per-round CPU ratios "
                  f"{paired:.3f}{note}")  # fmt: skip
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
