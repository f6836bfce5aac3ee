"""Named training presets: a model size (``CharGPTConfig``) and a training plan (``TrainConfig``) per name.

``gptedu.trainer.presets()`` reads ``PRESETS`` from here (its entries replace the trainer's built-in ones), and
``python -m gptedu train --preset NAME`` uses them.

``default`` — the main job: TinyShakespeare on a laptop CPU in at most 5 minutes.
    0.81M parameters (4 layers, 4 heads, 128 wide, 512 feed-forward, 128-character window), batch 32 x 128.
    1200 steps (4.9M tokens, ~4.8 passes over the training split) take an estimated ~270 s on 2 quiet cores
    (18.4k tokens/s). Measured with a 1200-step plan: val loss 1.558 over the whole contiguous validation split
    (target 1.55), text with speaker names and mostly real words.
    What makes it fit the budget:

    * fused attention (``gptedu.char.fast``): one QKV matmul + PyTorch's fused causal attention, same weights;
    * a high peak learning rate (5e-3) with a short warmup and a cosine down to a tenth of it; on this model it
      was ahead of 3e-3 at both points compared (300 and 600 steps);
    * no dropout (the teaching model has none);
    * a 128-character window: longer windows cost tokens/s (256: 0.92x, 512: 0.71x) and, at equal tokens, were
      clearly behind early in training (short runs, indicative: val ~2.04 vs ~1.94 at 1.2M tokens for 256, 2.47 vs
      2.16 at 0.8M for 512);
    * a clock-driven schedule (``schedule_by_time``): the run stops at ``max_time`` and the cosine follows the
      clock, so every machine spends its whole budget and still ends at ``min_lr`` (on 2 quiet cores that is about
      1,200-1,300 steps); a machine fast enough to finish ``max_steps`` first simply follows the steps. The price:
      the number of steps, hence the exact result, depends on the machine's speed.

    Its price: with absolute positions a KV cache only helps while prompt + generated text fits the 128-character
    window (see ``gptedu.char.kvcache``). Figures and commands: ``benchmarks/README.md``.

``nanogpt-cpu`` — the shape of nanoGPT's own CPU recipe for shakespeare_char (4 layers, 4 heads, 128 wide, block
    64, batch 12, 2000 iterations, lr 1e-3), on the teaching model; ``benchmarks/bench_throughput.py`` uses it.
"""

from __future__ import annotations

from gptedu.char.model import CharGPTConfig
from gptedu.trainer import TrainConfig

DEFAULT_MODEL = CharGPTConfig(vocab_size=65, d_model=128, num_heads=4, d_ff=512, context_len=128, num_layers=4)
DEFAULT_TRAIN = TrainConfig(
    max_steps=3000,
    batch_size=32,
    lr=5e-3,
    min_lr=5e-4,
    warmup_steps=100,
    weight_decay=0.1,
    beta2=0.99,
    grad_clip=1.0,
    eval_interval=300,
    eval_batches=10,
    max_time=285.0,  # leaves ~15 s of the 5 minutes for start-up, the last estimate and the sample
    schedule_by_time=True,
    fused=True,
)

NANOGPT_CPU_MODEL = CharGPTConfig(vocab_size=65, d_model=128, num_heads=4, d_ff=512, context_len=64, num_layers=4)
NANOGPT_CPU_TRAIN = TrainConfig(
    max_steps=2000,
    batch_size=12,
    lr=1e-3,
    min_lr=1e-4,
    warmup_steps=100,
    eval_interval=250,
    eval_batches=20,
    max_time=None,
    fused=True,
)

PRESETS: dict[str, tuple[CharGPTConfig, TrainConfig]] = {
    "default": (DEFAULT_MODEL, DEFAULT_TRAIN),
    "nanogpt-cpu": (NANOGPT_CPU_MODEL, NANOGPT_CPU_TRAIN),
}
