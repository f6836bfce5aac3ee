"""The configurations: ``CharGPTConfig`` (a model's sizes), ``TrainConfig`` (a training plan) and the named presets.

This module imports nothing but the standard library (no torch), so the command line can read the presets and check
every option before PyTorch loads; ``gptedu.char.model`` and ``gptedu.trainer`` re-export the two dataclasses.
``presets()`` returns fresh copies of ``PRESETS``; ``python -m gptedu train --preset NAME`` uses them.

``default`` — the main job: TinyShakespeare on a laptop CPU in at most 5 minutes.
    0.55M parameters (4 layers, 4 heads, 128 wide, 256 feed-forward, 128-character window), batch 32 x 128,
    AdamW at a peak of 6e-3, a budget of 285 s (``max_time``; no step limit), warmup over its first 5% and a linear
    decay down to 5e-5 at its end. On 2 quiet cores that is about 2,000 steps (8M tokens, ~8 passes over the training
    split); the measured runs, the slow-machine curve and the recipe search are in ``benchmarks/README.md``.
    What makes it fit the budget:

    * fused attention (``gptedu.char.fast``): one packed QKV matmul + PyTorch's fused causal attention, same maths
      and the same checkpoints as the teaching model;
    * a feed-forward block 2x wide instead of the usual 4x: 1.34x the steps per CPU-second, and at equal CPU time
      it ended a little lower (whole-split val 1.546 vs 1.551); 96 wide or 3 layers (also faster) ended level
      with the 4x model, batch 16 no better;
    * a high peak learning rate (6e-3; 3e-3 was behind at 300 and 600 steps, 1e-2 ended higher) and a decay that
      is linear, nearly to zero: at equal steps 1.523 against 1.540 for the earlier cosine from 5e-3 to 5e-4
      (simulated quiet machine, ``benchmarks/README.md``; Bergsma et al., "Straight to Zero: Why Linearly Decaying
      the Learning Rate to Zero Works Best for LLMs", 2025, found the same for larger models);
    * no dropout (the teaching model has none): five minutes are far from overfitting;
    * a 128-character window. With absolute (sinusoidal) positions a longer window had to be trained at that length
      from the start, and it does not pay in 5 minutes: a 512 window at equal CPU time ended at 1.70 (0.71x the
      tokens/s), and training 128-character windows first then switching to 512 broke the model (2.0);
    * a schedule that is a function of the budget (``gptedu.trainer.plan_progress``): warmup and decay follow
      whichever budget ends the run, so every machine, fast or slow, gets a whole schedule in its 285 s (a
      machine 20x slower than 2 quiet cores still warms up in 14 s, not in 100 of its ~100 steps). The price:
      the number of steps, hence the exact result, depends on the machine's speed;
    * a model and a batch fitted to what the budget buys, timed from a few forward passes before the first step:
      below 2 training tokens per parameter (``min_tokens_per_param``; ~0.6 at 1/20 of the speed of 2 quiet
      cores, ~15 on them) it trains ``smaller_model`` (2 layers x 64: val 1.95 instead of 2.23 there, simulated),
      below 1,500 steps smaller batches (``target_steps``).

    Its price: a KV cache only helps while prompt + generated text fits the 128-character window (see
    ``gptedu.char.kvcache``).

``tiny`` — seconds, not minutes: for smoke tests and trying the command line.

``nanogpt-cpu`` — the shape of nanoGPT's own CPU recipe for shakespeare_char (4 layers, 4 heads, 128 wide, block
    64, batch 12, 2000 iterations, lr 1e-3), on the teaching model; ``benchmarks/bench_throughput.py`` uses it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Any

DECAYS = ("linear", "cosine")  # TrainConfig.decay


@dataclass
class CharGPTConfig:
    """Every size of a ``GPTModel``; ``GPTModel.from_config(cfg)`` builds one."""

    vocab_size: int = 65
    d_model: int = 128
    num_heads: int = 8
    d_ff: int = 512
    context_len: int = 128
    num_layers: int = 4

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainConfig:
    """Every training hyperparameter; the defaults are the ``default`` preset's plan (there is no other copy).

    Model sizes live in ``CharGPTConfig``; the batch window is its ``context_len``. The plan has a *budget*:
    ``max_time`` seconds of training, ``max_steps`` optimizer steps, or both; the run stops at whichever runs out
    first, and the learning-rate schedule follows that same one (see ``gptedu.trainer.plan_progress``): a linear
    warmup over the first ``warmup_fraction`` of the budget, then a ``decay`` down to ``min_lr`` at its end. So a
    slow machine gets the whole schedule in its five minutes, and a fast one in its steps.
    """

    max_time: float | None = 285.0  # seconds of training in the whole plan (resumed runs included); None: no limit
    max_steps: int | None = None  # optimizer steps in the whole plan; None: no limit (at least one must be set)
    batch_size: int = 32  # windows per step (per rank under torchrun)
    # A time budget too short for this many steps at batch_size trains smaller batches (powers of two, at least
    # min_batch_size) so that it buys about as many updates, timed before the first step (fitted_batch_size).
    # 1,500: one thread on 2 quiet cores (~1,080 steps of 32 in 285 s) trains batches of 16 (simulated: 1.596 vs
    # 1.604 with 32), two threads (~2,000 steps) keep 32; benchmarks/README.md.
    target_steps: int | None = 1500
    min_batch_size: int = 8
    # A time budget that buys fewer training tokens than this per parameter of the model trains a smaller one
    # (``smaller_model``: half the width and half the layers), chosen from the same measured speed before the first
    # step. None: always the model given (the command line gives None when a model option such as --d-model is set).
    min_tokens_per_param: float | None = 2.0
    lr: float = 6e-3  # peak learning rate, reached at the end of warmup
    min_lr: float = 5e-5  # the decay ends here
    warmup_fraction: float = 0.05  # linear warmup over this fraction of the budget (time or steps, as above)
    decay: str = "linear"  # the shape from lr down to min_lr after warmup: "linear" or "cosine"
    weight_decay: float = 0.1  # AdamW decay, applied to weight matrices only (not biases or LayerNorm)
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0  # clip the global gradient norm to this; 0 turns clipping off
    eval_interval: int = 300  # estimate train/val loss every this many steps (and at the end); 0: only at the end
    eval_batches: int = 10  # batches per split in each estimate (a fixed set: estimates are comparable)
    seed: int = 1337
    device: str = "auto"  # auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps
    num_threads: int | None = None  # CPU threads; None: gptedu.device.pick_threads() (the CPUs idle right now)
    data_path: str | None = None  # TinyShakespeare; None: $GPTEDU_DATA, the cache, or a download
    train_fraction: float = 0.9  # contiguous head for training, tail for validation
    out_dir: str | None = None  # where ckpt.pt goes; None: no checkpoints
    progress: bool = True  # tqdm progress bar (rank 0 only)
    log_evals: bool = True  # print each train/val estimate and the final summary (rank 0 only)
    fused: bool = True  # the fused-attention variant of the model (same weights and maths, ~1.2x faster on a CPU)
    compile: bool = False  # torch.compile the model for training (needs a C compiler on CPU)
    # (progress, lr): written by Trainer.from_checkpoint when a resume enlarges the budget. From that point of the
    # new plan the rate goes on from the value it had and decays to min_lr at the new end (no jump back up).
    extended_at: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.extended_at is not None:
            self.extended_at = (float(self.extended_at[0]), float(self.extended_at[1]))
        checks = [
            (self.max_steps is None or self.max_steps >= 0, f"max_steps must be >= 0 or None, got {self.max_steps}"),
            (self.max_time is None or self.max_time > 0, f"max_time must be > 0 or None, got {self.max_time}"),
            (
                self.max_steps is not None or self.max_time is not None,
                "a plan needs a budget: set max_steps (--steps) or max_time (--max-time), or both",
            ),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.target_steps is None or self.target_steps >= 1, "target_steps must be >= 1 or None"),
            (self.min_batch_size >= 1, f"min_batch_size must be >= 1, got {self.min_batch_size}"),
            (
                self.min_tokens_per_param is None or self.min_tokens_per_param > 0,
                f"min_tokens_per_param must be > 0 or None, got {self.min_tokens_per_param}",
            ),
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (0 <= self.min_lr <= self.lr, f"min_lr must be between 0 and lr={self.lr}, got {self.min_lr}"),
            (
                0 <= self.warmup_fraction < 1,
                f"warmup_fraction must be in [0, 1) (a fraction of the budget), got {self.warmup_fraction}",
            ),
            (self.decay in DECAYS, f"decay must be one of {', '.join(DECAYS)}, got {self.decay!r}"),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}"),
            (self.grad_clip >= 0, f"grad_clip must be >= 0 (0 = off), got {self.grad_clip}"),
            (self.eval_interval >= 0, f"eval_interval must be >= 0, got {self.eval_interval}"),
            (self.eval_batches >= 1, f"eval_batches must be >= 1, got {self.eval_batches}"),
            (0 < self.train_fraction < 1, f"train_fraction must be in (0, 1), got {self.train_fraction}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message + ".")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a dict, ignoring keys this version does not know (e.g. from a newer checkpoint)."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {"decay": "cosine", **values}  # a plan saved before ``decay`` existed decayed along a cosine
        return cls(**{k: v for k, v in values.items() if k in known})


def smaller_model(cfg: CharGPTConfig, min_width: int = 32) -> CharGPTConfig | None:
    """Half the width (``d_model`` and ``d_ff``) and half the layers of ``cfg``, with as many heads as still divide
    the width; None when the width would fall below ``min_width``. Same window and vocabulary.

    About 1/8 of the parameters and of the FLOPs per token (Kaplan et al., "Scaling Laws for Neural Language
    Models", 2020: ~6N per token for N parameters, plus the attention's share): for a budget that buys too few
    tokens to train ``cfg``, a model that sees several times the text. The default preset's 4 x 128 becomes 2 x 64.
    """
    d_model = cfg.d_model // 2
    if d_model < min_width:
        return None
    heads = cfg.num_heads
    while d_model % heads:
        heads -= 1
    return dataclasses.replace(
        cfg, d_model=d_model, d_ff=max(1, cfg.d_ff // 2), num_layers=max(1, cfg.num_layers // 2), num_heads=heads
    )


DEFAULT_MODEL = CharGPTConfig(vocab_size=65, d_model=128, num_heads=4, d_ff=256, context_len=128, num_layers=4)
DEFAULT_TRAIN = TrainConfig()  # 285 s: leaves ~15 s of the 5 minutes for start-up, the last estimate and the sample

NANOGPT_CPU_MODEL = CharGPTConfig(vocab_size=65, d_model=128, num_heads=4, d_ff=512, context_len=64, num_layers=4)
NANOGPT_CPU_TRAIN = TrainConfig(
    max_steps=2000, max_time=None, batch_size=12, lr=1e-3, min_lr=1e-4, warmup_fraction=0.05, decay="cosine",
    beta2=0.99, eval_interval=250, eval_batches=20,
)  # fmt: skip

TINY_MODEL = CharGPTConfig(vocab_size=65, d_model=32, num_heads=2, d_ff=64, context_len=32, num_layers=1)
TINY_TRAIN = TrainConfig(
    max_steps=50, max_time=60.0, batch_size=8, warmup_fraction=0.1, eval_interval=25, eval_batches=2
)

PRESETS: dict[str, tuple[CharGPTConfig, TrainConfig]] = {
    "default": (DEFAULT_MODEL, DEFAULT_TRAIN),
    "tiny": (TINY_MODEL, TINY_TRAIN),
    "nanogpt-cpu": (NANOGPT_CPU_MODEL, NANOGPT_CPU_TRAIN),
}


def presets() -> dict[str, tuple[CharGPTConfig, TrainConfig]]:
    """Named ``(model config, train config)`` pairs: fresh copies of ``PRESETS`` (change them freely)."""
    return {name: (dataclasses.replace(m), dataclasses.replace(t)) for name, (m, t) in PRESETS.items()}


def default_configs() -> tuple[CharGPTConfig, TrainConfig]:
    """Fresh copies of the ``"default"`` preset: the run ``python -m gptedu train`` does."""
    return presets()["default"]
