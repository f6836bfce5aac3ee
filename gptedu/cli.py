"""The command line: ``python -m gptedu train ...`` and ``python -m gptedu generate ...``.

Every option's default comes from the chosen preset (``--preset``, default ``default``); options you give replace
it. Mistakes in the input (a missing checkpoint, an empty prompt, characters the model has never seen, a corpus
that cannot be found) end with one line on stderr and exit status 2. Set ``GPTEDU_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path

PROG = "gptedu"

# (flag, TrainConfig or CharGPTConfig field, type, help) -- the defaults shown in --help come from the preset
MODEL_OPTIONS = [
    ("--d-model", "d_model", int, "embedding width (must be divisible by --num-heads)"),
    ("--num-heads", "num_heads", int, "attention heads per layer"),
    ("--num-layers", "num_layers", int, "decoder layers"),
    ("--d-ff", "d_ff", int, "hidden width of each feed-forward block"),
    ("--context-len", "context_len", int, "characters the model sees at once (also the training window)"),
]
TRAIN_OPTIONS = [
    ("--steps", "max_steps", int, "optimizer steps in the plan (the learning-rate schedule spans them)"),
    ("--batch-size", "batch_size", int, "windows per step (per process under torchrun)"),
    ("--lr", "lr", float, "peak learning rate (AdamW)"),
    ("--min-lr", "min_lr", float, "learning rate at the end of the cosine decay"),
    ("--warmup-steps", "warmup_steps", int, "steps of linear warmup up to --lr"),
    ("--lr-decay-steps", "lr_decay_steps", int, "step at which the cosine reaches --min-lr (default: --steps)"),
    ("--weight-decay", "weight_decay", float, "AdamW weight decay, on weight matrices only"),
    ("--beta1", "beta1", float, "AdamW beta1"),
    ("--beta2", "beta2", float, "AdamW beta2"),
    ("--grad-clip", "grad_clip", float, "clip the gradient norm to this (0 = no clipping)"),
    ("--eval-interval", "eval_interval", int, "estimate train/val loss and save a checkpoint every N steps"),
    ("--eval-batches", "eval_batches", int, "batches per split in each loss estimate"),
    ("--max-time", "max_time", float, "stop after this many seconds of training, even before --steps (0 = no limit)"),
    ("--seed", "seed", int, "random seed (model initialisation and batch order)"),
    ("--device", "device", str, "auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps"),
    ("--threads", "num_threads", int, "CPU threads for PyTorch (default: PyTorch's choice)"),
    ("--train-fraction", "train_fraction", float, "fraction of the text (from the start) used for training"),
]


class UsageError(Exception):
    """A mistake in the command line or its inputs: reported in one line, exit status 2."""


def _fmt(value: object) -> str:
    return "none" if value is None else str(value)


def build_parser() -> argparse.ArgumentParser:
    from gptedu.trainer import CHECKPOINT_NAME, presets

    preset_table = presets()
    model_default, train_default = preset_table["default"]
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train a character-level GPT on TinyShakespeare and generate text with it.",
        epilog="Examples:\n  python -m gptedu train --out runs/default\n"
        '  python -m gptedu generate --checkpoint runs/default/ckpt.pt --prompt "ROMEO:"\n'
        "  torchrun --nproc_per_node=2 -m gptedu train --out runs/ddp   (data-parallel over 2 processes)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="{train,generate}")

    train = sub.add_parser(
        "train",
        help="train a model and save checkpoints",
        description="Train a character GPT. Defaults shown are those of the 'default' preset; "
        f"the checkpoint goes to OUT/{CHECKPOINT_NAME} at every loss estimate and at the end. "
        "Ends by printing a sample.",
        argument_default=argparse.SUPPRESS,  # so that we can tell which options were given
    )
    train.add_argument(
        "--preset",
        choices=sorted(preset_table),
        help="named configuration to start from; the options below replace its values (default: default)",
    )
    train.add_argument(
        "--data",
        metavar="PATH",
        help="TinyShakespeare input.txt (default: $GPTEDU_DATA, then the cache, then a download)",
    )
    train.add_argument("--out", metavar="DIR", help="output directory for the checkpoint (default: runs/default)")
    train.add_argument(
        "--resume",
        action="store_true",
        help=f"continue the run saved in OUT/{CHECKPOINT_NAME}; model options must not change, "
        "training options you give replace the saved ones (e.g. a larger --steps)",
    )
    group = train.add_argument_group("model (ignored on --resume)")
    for flag, field, typ, text in MODEL_OPTIONS:
        group.add_argument(
            flag, dest=field, type=typ, metavar="N", help=f"{text} (default: {_fmt(getattr(model_default, field))})"
        )
    group = train.add_argument_group("training")
    for flag, field, typ, text in TRAIN_OPTIONS:
        metavar = "DEV" if typ is str else ("N" if typ is int else "X")
        shown = "" if "(default:" in text else f" (default: {_fmt(getattr(train_default, field))})"
        group.add_argument(flag, dest=field, type=typ, metavar=metavar, help=text + shown)
    for flag, field, text in (
        ("--fused", "fused", "train the fused-attention variant (same weights and maths, faster on CPU)"),
        ("--compile", "compile", "torch.compile the model for training (needs a C compiler on CPU)"),
        (
            "--schedule-by-time",
            "schedule_by_time",
            "with --max-time, let the clock move the cosine on too, so a slower machine still ends at --min-lr",
        ),
    ):
        shown = "on" if getattr(train_default, field) else "off"
        group.add_argument(flag, dest=field, action=argparse.BooleanOptionalAction, help=f"{text} (default: {shown})")
    group.add_argument(
        "--no-progress", dest="progress", action="store_false", help="hide the progress bar (default: shown)"
    )
    group.add_argument(
        "--sample-tokens",
        type=int,
        metavar="N",
        help="characters of the sample printed at the end, 0 for none (default: 300)",
    )

    gen = sub.add_parser(
        "generate",
        help="generate text from a checkpoint",
        description="Continue a prompt with a trained model.",
    )
    gen.add_argument("--checkpoint", required=True, metavar="PATH", help="checkpoint file written by train")
    gen.add_argument("--prompt", required=True, help="text to continue; every character must be in the vocabulary")
    gen.add_argument(
        "--max-new-tokens", type=int, default=500, metavar="N", help="characters to generate (default: 500)"
    )
    gen.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        metavar="T",
        help="divide the logits by T: below 1 is safer and duller, above 1 wilder (0 = greedy; default: 1.0)",
    )
    gen.add_argument(
        "--top-k", type=int, default=None, metavar="K", help="sample only among the K likeliest (default: all)"
    )
    gen.add_argument(
        "--top-p",
        type=float,
        default=None,
        metavar="P",
        help="sample only among the likeliest characters holding probability P (nucleus; default: off)",
    )
    gen.add_argument("--greedy", action="store_true", help="always take the likeliest character (temperature 0)")
    gen.add_argument(
        "--seed",
        type=int,
        default=None,
        metavar="S",
        help="seed for reproducible samples (default: a fresh random draw)",
    )
    gen.add_argument(
        "--num-samples", type=int, default=1, metavar="N", help="independent samples of the prompt (default: 1)"
    )
    gen.add_argument(
        "--no-kv-cache",
        dest="kv_cache",
        action="store_false",
        help="recompute the whole context for every new character instead of caching keys and values "
        "(same text, slower; default: cache)",
    )
    gen.add_argument(
        "--device",
        default="auto",
        metavar="DEV",
        help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps (default: auto)",
    )
    return parser


# --- train ---------------------------------------------------------------------------------------------------------


def _configs_from_args(args: argparse.Namespace):
    from gptedu.trainer import TrainConfig, presets

    given = vars(args)
    model_cfg, train_cfg = presets()[given.get("preset", "default")]
    model_cfg = dataclasses.replace(model_cfg, **{f: given[f] for _, f, _, _ in MODEL_OPTIONS if f in given})
    train_values = train_cfg.to_dict()
    train_values.update(_train_overrides(given))
    train_values["out_dir"] = given.get("out", "runs/default")
    return model_cfg, TrainConfig.from_dict(train_values)


def _train_overrides(given: dict) -> dict:
    fields = [f for _, f, _, _ in TRAIN_OPTIONS] + ["fused", "compile", "schedule_by_time", "progress"]
    overrides = {f: given[f] for f in fields if f in given}
    if overrides.get("max_time") == 0:
        overrides["max_time"] = None
    if "data" in given:
        overrides["data_path"] = given["data"]
    return overrides


def _sample_prompt(tokenizer) -> str:
    for prompt in ("ROMEO:", "\n"):
        if all(ch in tokenizer.s2i for ch in prompt):
            return prompt
    return tokenizer.chars[0]


def cmd_train(args: argparse.Namespace) -> int:
    from gptedu.distributed import shutdown_distributed
    from gptedu.trainer import CHECKPOINT_NAME, Trainer

    given = vars(args)
    out_dir = Path(given.get("out", "runs/default"))
    ckpt = out_dir / CHECKPOINT_NAME
    if given.get("resume"):
        changed = [flag for flag, f, _, _ in MODEL_OPTIONS if f in given]
        if changed or "preset" in given:
            raise UsageError(
                f"--resume continues the saved model, so {', '.join(changed or ['--preset'])} cannot be given; "
                "drop them, or train a new model into another --out."
            )
        if not ckpt.is_file():
            raise UsageError(f"--resume: no checkpoint at {ckpt}. Train first, or point --out at the run's directory.")
        overrides = _train_overrides(given)
        overrides["out_dir"] = str(out_dir)
        trainer = Trainer.from_checkpoint(ckpt, **overrides)
    else:
        model_cfg, train_cfg = _configs_from_args(args)
        if ckpt.is_file() and int(os.environ.get("RANK", "0")) == 0:
            backup = ckpt.with_name("ckpt.prev.pt")
            ckpt.replace(backup)
            print(f"{ckpt} existed; kept it as {backup} (use --resume to continue a run instead).", file=sys.stderr)
        trainer = Trainer(train_cfg, model_cfg)

    main_rank = trainer.dist.is_main
    if main_rank:
        n_params = sum(p.numel() for p in trainer.model.parameters())
        c = trainer.model_config
        print(
            f"Model: {c.num_layers} layers, {c.num_heads} heads, d_model {c.d_model}, d_ff {c.d_ff}, "
            f"context {c.context_len}, vocab {c.vocab_size}: {n_params / 1e6:.2f}M parameters. "
            f"Device {trainer.device}, {trainer.dist.world_size} process(es). "
            f"Plan: {trainer.config.max_steps} steps from step {trainer.step}.",
            flush=True,
        )
    try:
        history = trainer.train()
    except KeyboardInterrupt:
        if not trainer.dist.enabled:
            path = trainer.save_checkpoint(ckpt)
            print(f"\nInterrupted at step {trainer.step}; saved {path}. Continue with --resume.", file=sys.stderr)
        return 130
    finally:
        shutdown_distributed()
    if main_rank:
        run = trainer.last_run
        val = history["val_loss"][-1] if history["val_loss"] else float("nan")
        print(
            f"Trained {run['steps']} steps in {run['seconds']:.1f}s ({run['tokens_per_s']:,.0f} tokens/s); "
            f"step {trainer.step}, val loss {val:.4f}, best {min(history['val_loss'], default=val):.4f}. "
            f"Checkpoint: {ckpt}"
        )
        n_sample = given.get("sample_tokens", 300)
        if n_sample > 0:
            text = trainer.sample(
                _sample_prompt(trainer.tokenizer), n_sample, temperature=0.8, seed=trainer.config.seed
            )
            print(f"--- sample (temperature 0.8) ---\n{text}")
    return 0


# --- generate ------------------------------------------------------------------------------------------------------


def cmd_generate(args: argparse.Namespace) -> int:
    import torch

    from gptedu.checkpoint import load_for_generation
    from gptedu.device import pick_device
    from gptedu.trainer import generate_ids

    if args.prompt == "":
        raise UsageError('the prompt is empty; give the model something to continue, e.g. --prompt "ROMEO:".')
    for name, value, low in (("--max-new-tokens", args.max_new_tokens, 0), ("--num-samples", args.num_samples, 1)):
        if value < low:
            raise UsageError(f"{name} must be >= {low}, got {value}.")
    device = pick_device(args.device)
    model, tokenizer = load_for_generation(args.checkpoint, device=device)
    unknown = sorted({ch for ch in args.prompt if ch not in tokenizer.s2i})
    if unknown:
        raise UsageError(
            f"the prompt has {len(unknown)} character(s) outside this model's vocabulary: "
            f"{', '.join(repr(ch) for ch in unknown)}. The model knows only the {tokenizer.vocab_size} characters "
            "of its training text; remove or replace those."
        )
    ids = torch.tensor([tokenizer.encode(args.prompt)] * args.num_samples, dtype=torch.long, device=device)
    generator = None
    if args.seed is not None:
        generator = torch.Generator(device=device).manual_seed(args.seed)
    temperature = 0.0 if args.greedy else args.temperature
    out = generate_ids(
        model,
        ids,
        args.max_new_tokens,
        temperature=temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        generator=generator,
        kv_cache=args.kv_cache,
    )
    for i, row in enumerate(out):
        if args.num_samples > 1:
            print(f"--- sample {i + 1} ---")
        print(tokenizer.decode(row))
    return 0


# --- entry point ---------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    from gptedu.checkpoint import CheckpointError
    from gptedu.data import CorpusNotFoundError

    command = {"train": cmd_train, "generate": cmd_generate}[args.command]
    try:
        return command(args)
    except (UsageError, CheckpointError, CorpusNotFoundError, ValueError, FloatingPointError) as exc:
        if os.environ.get("GPTEDU_DEBUG"):
            raise
        message = " ".join(str(exc).split())  # one line
        print(f"{PROG} {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
