"""Named training presets: a model size (``CharGPTConfig``) and a training plan (``TrainConfig``) per name.

``gptedu.trainer.presets()`` reads ``PRESETS`` from here (its entries replace the trainer's built-in ones), and
``python -m gptedu train --preset NAME`` uses them.

``default`` — the main job: TinyShakespeare on a laptop CPU in at most 5 minutes.
    0.55M parameters (4 layers, 4 heads, 128 wide, 256 feed-forward, 128-character window), batch 32 x 128,
    AdamW at a peak of 5e-3 with a 100-step warmup and a cosine down to 5e-4, stopped by the clock (``max_time``).
    On 2 quiet cores the clock stops it at about 1,700 steps (7M tokens, ~7 passes over the training split); the
    measured run, its sample and the recipe search behind these choices are in ``benchmarks/README.md``.
    What makes it fit the budget:

    * fused attention (``gptedu.char.fast``): one packed QKV matmul + PyTorch's fused causal attention, same maths
      and the same checkpoints as the teaching model;
    * a feed-forward block 2x wide instead of the usual 4x: 1.34x the steps per CPU-second, and at equal CPU time
      it ended a little lower (whole-split val 1.546 vs 1.551); 96 wide or 3 layers (also faster) ended level
      with the 4x model, batch 16 no better;
    * a high peak learning rate (5e-3; 3e-3 was behind at 300 and 600 steps, 7e-3 and 1e-2 ended higher);
    * no dropout (the teaching model has none): five minutes are far from overfitting;
    * a 128-character window. With absolute (sinusoidal) positions a longer window had to be trained at that length
      from the start, and it does not pay in 5 minutes: a 512 window at equal CPU time ended at 1.70 (0.71x the
      tokens/s), and training 128-character windows first then switching to 512 broke the model (2.0);
    * a clock-driven schedule (``schedule_by_time``): the run stops at ``max_time`` and the cosine follows the
      clock, so every machine spends its whole budget and still ends at ``min_lr``; a machine fast enough to
      finish ``max_steps`` first simply follows the steps. The price: the number of steps, hence the exact
      result, depends on the machine's speed.

    Its price: a KV cache only helps while prompt + generated text fits the 128-character window (see
    ``gptedu.char.kvcache``).

``nanogpt-cpu`` — the shape of nanoGPT's own CPU recipe for shakespeare_char (4 layers, 4 heads, 128 wide, block
    64, batch 12, 2000 iterations, lr 1e-3), on the teaching model; ``benchmarks/bench_throughput.py`` uses it.
"""

from __future__ import annotations

from gptedu.char.model import CharGPTConfig
from gptedu.trainer import TrainConfig

DEFAULT_MODEL = CharGPTConfig(vocab_size=65, d_model=128, num_heads=4, d_ff=256, context_len=128, num_layers=4)
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
