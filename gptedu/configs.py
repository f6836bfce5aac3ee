"""Named training presets: a model size (``CharGPTConfig``) and a training plan (``TrainConfig``) per name.

``gptedu.trainer.presets()`` reads ``PRESETS`` from here (its entries replace the trainer's built-in ones), and
``python -m gptedu train --preset NAME`` uses them.

``default`` — the main job: TinyShakespeare on a laptop CPU in at most 5 minutes.
    Measured (see ``benchmarks/README.md`` for the table and the command): on 2 CPU cores it reaches a validation
    loss of about 1.5 on the contiguous split and writes lines with speaker names and real words. What makes it fit:

    * fused attention (``gptedu.char.fast``): one QKV matmul + PyTorch's fused causal attention, same weights;
    * a high peak learning rate with a short warmup and a cosine down to a tenth of it (small models tolerate it);
    * no dropout (the teaching model has none; 5 minutes is far too short to overfit 1M characters);
    * ``context_len`` 512 so that KV-cached generation of a short prompt + 500 characters never leaves the cache
      (the model has absolute positions; see ``gptedu.char.kvcache``);
    * ``max_steps`` sized for a 2-core machine; ``max_time`` stops it at 5 minutes on a slower one.

``nanogpt-cpu`` — the shape of nanoGPT's own CPU recipe for shakespeare_char (4 layers, 4 heads, 128 wide, block
    64, batch 12, 2000 iterations, lr 1e-3), on the teaching model; ``benchmarks/bench_throughput.py`` uses it.
"""

from __future__ import annotations

from gptedu.char.model import CharGPTConfig
from gptedu.trainer import TrainConfig

DEFAULT_MODEL = CharGPTConfig(vocab_size=65, d_model=128, num_heads=4, d_ff=512, context_len=512, num_layers=4)
DEFAULT_TRAIN = TrainConfig(
    max_steps=1300,
    batch_size=8,
    lr=3e-3,
    min_lr=3e-4,
    warmup_steps=100,
    weight_decay=0.1,
    beta2=0.99,
    grad_clip=1.0,
    eval_interval=250,
    eval_batches=10,
    max_time=300.0,
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
