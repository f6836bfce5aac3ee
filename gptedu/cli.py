"""The command line: ``python -m gptedu train ...`` and ``python -m gptedu generate ...``.

Every option's default comes from the chosen preset (``--preset``, default ``default``); options you give replace
it. Every option and input is checked *before* PyTorch loads (a few seconds on a laptop): each number's range, a
``--d-model`` the heads divide, the ``--data`` file (UTF-8 text with something to learn), ``--out`` (a directory
that can be written, not used by another training), the checkpoint's checksums. A mistake ends with one line on
stderr naming the flag or file and the fix, exit status 2; Ctrl-C at any moment ends with one line, exit status 130.
Set ``GPTEDU_DEBUG=1`` for the traceback.

``train`` never loses a checkpoint: see ``gptedu.checkpoint`` (``ckpt.prev.pt``, numbered ``ckpt.N.pt``, the lock).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from gptedu.checkpoint import CHECKPOINT_NAME
from gptedu.configs import DECAYS, presets

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
    ("--steps", "max_steps", int, "the plan's step budget, resumed runs included (0 = no limit)"),
    ("--batch-size", "batch_size", int, "windows per step (per process under torchrun)"),
    ("--lr", "lr", float, "peak learning rate (AdamW)"),
    ("--min-lr", "min_lr", float, "learning rate at the end of the decay"),
    ("--decay", "decay", str, "shape of the decay from --lr to --min-lr after the warmup: linear or cosine"),
    ("--warmup", "warmup_fraction", float, "fraction of the budget (time or steps) spent warming up to --lr"),
    ("--weight-decay", "weight_decay", float, "AdamW weight decay, on weight matrices only"),
    ("--beta1", "beta1", float, "AdamW beta1"),
    ("--beta2", "beta2", float, "AdamW beta2"),
    ("--grad-clip", "grad_clip", float, "clip the gradient norm to this (0 = no clipping)"),
    ("--eval-interval", "eval_interval", int, "estimate train/val loss and save a checkpoint every N steps"),
    ("--eval-batches", "eval_batches", int, "batches per split in each loss estimate"),
    ("--max-time", "max_time", float, "the plan's time budget in seconds, resumed runs included (0 = no limit)"),
    ("--seed", "seed", int, "random seed (model initialisation and batch order)"),
    ("--device", "device", str, "auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps"),
    ("--threads", "num_threads", int, "CPU threads (default: the CPUs idle at the start, see gptedu.device)"),
    ("--train-fraction", "train_fraction", float, "fraction of the text (from the start) used for training"),
]


# --- checking each value as it is parsed (argparse ``type=``) -------------------------------------------------------


def whole(low: int, note: str = "") -> Callable[[str], int]:
    """A whole number >= ``low``; ``note`` says what the edge value means (e.g. "0 = no limit")."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}.") from None
        if value < low:
            extra = f" ({note})" if note else ""
            raise argparse.ArgumentTypeError(f"must be a whole number >= {low}{extra}, got {value}.")
        return value

    parse.__name__ = "whole number"
    return parse


def number(low: float, high: float = math.inf, *, low_open: bool = False, high_open: bool = False,
           note: str = "") -> Callable[[str], float]:  # fmt: skip
    """A finite number in the interval from ``low`` to ``high`` (open ends excluded)."""
    interval = f"{'(' if low_open else '['}{low:g}, {'inf' if high == math.inf else f'{high:g}'}"
    interval += ")" if high_open or high == math.inf else "]"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}.") from None
        inside = math.isfinite(value) and (value > low if low_open else value >= low)
        inside = inside and (value < high if high_open else value <= high)
        if not inside:
            extra = f" ({note})" if note else ""
            raise argparse.ArgumentTypeError(f"must be a number in {interval}{extra}, got {text}.")
        return value

    parse.__name__ = "number"
    return parse


def one_of(*names: str) -> Callable[[str], str]:
    """One of ``names``, exactly."""

    def parse(text: str) -> str:
        if text not in names:
            raise argparse.ArgumentTypeError(f"must be one of {', '.join(names)}, got {text!r}.")
        return text

    parse.__name__ = "name"
    return parse


def device_name(text: str) -> str:
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"must be auto, cpu, cuda, cuda:N or mps, got {text!r}.")
    return text


# flag -> its check; every option of MODEL_OPTIONS and TRAIN_OPTIONS must have one (a test enforces it)
CHECKS: dict[str, Callable[[str], object]] = {
    "--d-model": whole(1),
    "--num-heads": whole(1),
    "--num-layers": whole(1),
    "--d-ff": whole(1),
    "--context-len": whole(1),
    "--steps": whole(0, "0 = no step limit"),
    "--batch-size": whole(1),
    "--lr": number(0, 10, low_open=True, note="a peak around 1e-3 to 1e-2 suits these small models"),
    "--min-lr": number(0, 10),
    "--decay": one_of(*DECAYS),
    "--warmup": number(0, 1, high_open=True, note="a fraction of the budget, e.g. 0.05"),
    "--weight-decay": number(0, 10),
    "--beta1": number(0, 1, high_open=True),
    "--beta2": number(0, 1, high_open=True),
    "--grad-clip": number(0, note="0 = no clipping"),
    "--eval-interval": whole(0, "0 = only at the end"),
    "--eval-batches": whole(1),
    "--max-time": number(0, note="seconds; 0 = no time limit"),
    "--seed": whole(0),
    "--device": device_name,
    "--threads": whole(1),
    "--train-fraction": number(0, 1, low_open=True, high_open=True, note="e.g. 0.9"),
    "--sample-tokens": whole(0, "0 = no sample"),
    "--max-new-tokens": whole(0),
    "--temperature": number(0, note="0 = greedy"),
    "--top-k": whole(1, "the K likeliest; leave it out to sample among all"),
    "--top-p": number(0, 1, low_open=True, note="e.g. 0.9"),
    "--num-samples": whole(1),
}


class UsageError(Exception):
    """A mistake in the command line or its inputs: reported in one line, exit status 2."""


class _Interrupted(Exception):
    """Ctrl-C, with what was kept: reported in one line, exit status 130."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line naming the flag (no usage block), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (python -m {self.prog} --help lists the options)\n")


def _fmt(value: object) -> str:
    return "none" if value is None else str(value)


def build_parser() -> argparse.ArgumentParser:
    """The parser; imports no torch (the presets come from the torch-free ``gptedu.configs``)."""
    preset_table = presets()
    model_default, train_default = preset_table["default"]
    parser = _Parser(
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
            flag,
            dest=field,
            type=CHECKS.get(flag, typ),
            metavar="N",
            help=f"{text} (default: {_fmt(getattr(model_default, field))})",
        )
    group = train.add_argument_group("training")
    for flag, field, typ, text in TRAIN_OPTIONS:
        metavar = {"--device": "DEV", "--decay": "SHAPE"}.get(flag) or ("N" if typ is int else "X")
        shown = "" if "(default:" in text else f" (default: {_fmt(getattr(train_default, field))})"
        group.add_argument(flag, dest=field, type=CHECKS.get(flag, typ), metavar=metavar, help=text + shown)
    for flag, field, text in (
        ("--fused", "fused", "train the fused-attention variant (same weights and maths, faster on CPU)"),
        ("--compile", "compile", "torch.compile the model for training (needs a C compiler on CPU)"),
    ):
        shown = "on" if getattr(train_default, field) else "off"
        group.add_argument(flag, dest=field, action=argparse.BooleanOptionalAction, help=f"{text} (default: {shown})")
    group.add_argument(
        "--no-progress", dest="progress", action="store_false", help="hide the progress bar (default: shown)"
    )
    group.add_argument(
        "--sample-tokens",
        type=CHECKS["--sample-tokens"],
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
        "--max-new-tokens",
        type=CHECKS["--max-new-tokens"],
        default=500,
        metavar="N",
        help="characters to generate (default: 500)",
    )
    gen.add_argument(
        "--temperature",
        type=CHECKS["--temperature"],
        default=1.0,
        metavar="T",
        help="divide the logits by T: below 1 is safer and duller, above 1 wilder (0 = greedy; default: 1.0)",
    )
    gen.add_argument(
        "--top-k",
        type=CHECKS["--top-k"],
        default=None,
        metavar="K",
        help="sample only among the K likeliest (default: all)",
    )
    gen.add_argument(
        "--top-p",
        type=CHECKS["--top-p"],
        default=None,
        metavar="P",
        help="sample only among the likeliest characters holding probability P (nucleus; default: off)",
    )
    gen.add_argument("--greedy", action="store_true", help="always take the likeliest character (temperature 0)")
    gen.add_argument(
        "--seed",
        type=CHECKS["--seed"],
        default=None,
        metavar="S",
        help="seed for reproducible samples (default: a fresh random draw)",
    )
    gen.add_argument(
        "--num-samples",
        type=CHECKS["--num-samples"],
        default=1,
        metavar="N",
        help="independent samples of the prompt (default: 1)",
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
        type=CHECKS["--device"],
        metavar="DEV",
        help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps (default: auto)",
    )
    gen.add_argument(
        "--threads",
        type=CHECKS["--threads"],
        default=None,
        metavar="N",
        help="CPU threads for PyTorch (default: gptedu.device.pick_threads: 1, the fastest for sampling)",
    )
    return parser


# --- train ---------------------------------------------------------------------------------------------------------


def _configs_from_args(args: argparse.Namespace):
    from gptedu.configs import TrainConfig

    given = vars(args)
    model_cfg, train_cfg = presets()[given.get("preset", "default")]
    model_cfg = dataclasses.replace(model_cfg, **{f: given[f] for _, f, _, _ in MODEL_OPTIONS if f in given})
    train_values = train_cfg.to_dict()
    train_values.update(_train_overrides(given))
    if any(f in given for _, f, _, _ in MODEL_OPTIONS):
        train_values["min_tokens_per_param"] = None  # a shape given by hand is trained as it is, whatever the budget
    train_values["out_dir"] = given.get("out", "runs/default")
    return model_cfg, TrainConfig.from_dict(train_values)


def _train_overrides(given: dict) -> dict:
    fields = [f for _, f, _, _ in TRAIN_OPTIONS] + ["fused", "compile", "progress"]
    overrides = {f: given[f] for f in fields if f in given}
    for field in ("max_time", "max_steps"):  # 0: no limit on this budget
        if overrides.get(field) == 0:
            overrides[field] = None
    if "data" in given:
        overrides["data_path"] = given["data"]
    return overrides


def _sample_prompt(tokenizer) -> str:
    for prompt in ("ROMEO:", "\n"):
        if all(ch in tokenizer.s2i for ch in prompt):
            return prompt
    return tokenizer.chars[0]


def _divisors_near(n: int, heads: int) -> str:
    options = [h for h in range(1, min(n, 64) + 1) if n % h == 0]
    near = sorted(options, key=lambda h: abs(h - heads))[:3]
    return ", ".join(f"--num-heads {h}" for h in sorted(near))


def check_train_args(args: argparse.Namespace) -> tuple[Path, str | None]:
    """Everything about a ``train`` command that can be checked without PyTorch; returns ``(out_dir, text)``.

    ``text`` is the checked training text, or ``None`` for ``--resume`` without ``--data`` (the run's own text,
    whose path is inside the checkpoint, is read and checked by the trainer).

    Raises ``UsageError`` (a flag and its fix) or a corpus / checkpoint error (a file and its fix).
    """
    from gptedu.checkpoint import verify_checkpoint_file
    from gptedu.corpus import find_tinyshakespeare, read_corpus

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
        verify_checkpoint_file(ckpt)
        context_len = None  # the saved model's (checked by the trainer once the checkpoint is loaded)
        lr, min_lr = given.get("lr"), given.get("min_lr")
    else:
        model_cfg, train_values = _presets_with(given)
        if model_cfg.d_model % model_cfg.num_heads:
            d_flag = "--d-model" if "d_model" in given else "the preset's --d-model"
            h_flag = "--num-heads" if "num_heads" in given else "the preset's --num-heads"
            raise UsageError(
                f"{d_flag} {model_cfg.d_model} is not divisible by {h_flag} {model_cfg.num_heads}: the heads split "
                f"the width equally. Use e.g. {_divisors_near(model_cfg.d_model, model_cfg.num_heads)}, or a "
                "--d-model that is a multiple of the heads."
            )
        context_len = model_cfg.context_len
        lr, min_lr = train_values["lr"], train_values["min_lr"]
        if not train_values.get("max_steps") and not train_values.get("max_time"):
            raise UsageError("--steps 0 and --max-time 0 leave the run without a budget; give one of them.")
    if lr is not None and min_lr is not None and min_lr > lr:
        raise UsageError(f"--min-lr {min_lr:g} is above the peak learning rate --lr {lr:g}; lower --min-lr.")

    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(
            f"--out {out_dir} is an existing file, not a directory; pass a directory (the checkpoint goes to "
            f"DIR/{CHECKPOINT_NAME}), e.g. --out runs/mine."
        )
    parent = next((p for p in [out_dir, *out_dir.absolute().parents] if p.exists()), None)
    if parent is None or not parent.is_dir():
        raise UsageError(f"--out {out_dir}: {parent} is not a directory, so {out_dir} cannot be created there.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out_dir}: {parent} is not writable by you; choose a directory you can write to.")

    data = given.get("data")
    if given.get("resume") and data is None:
        return out_dir, None
    path = find_tinyshakespeare(data)  # CorpusNotFoundError names where it looked and what to do
    text = read_corpus(path, "--data" if data is not None else "The training text")
    if context_len is not None:
        fraction = _presets_with(given)[1]["train_fraction"]
        n_train = int(fraction * len(text))
        shortest = min(n_train, len(text) - n_train)
        if shortest <= context_len:
            part = "training" if n_train == shortest else "validation"
            raise UsageError(
                f"the training text ({path}) has {len(text):,} characters: its {part} part ({shortest:,}) is not "
                f"longer than the window (--context-len {context_len}). Use a longer text or a smaller --context-len."
            )
    return out_dir, text


def _presets_with(given: dict) -> tuple:
    """The chosen preset's model config with the given model options, and its train values (a dict) with the given
    training options; nothing is validated by the dataclasses here (the flags were checked as they were parsed)."""
    model_cfg, train_cfg = presets()[given.get("preset", "default")]
    model_cfg = dataclasses.replace(model_cfg, **{f: given[f] for _, f, _, _ in MODEL_OPTIONS if f in given})
    train_values = {**dataclasses.asdict(train_cfg), **{f: given[f] for _, f, _, _ in TRAIN_OPTIONS if f in given}}
    return model_cfg, train_values


def cmd_train(args: argparse.Namespace) -> int:
    """``train``: check everything, lock ``--out``, then load PyTorch and train (see the module docstring)."""
    from gptedu.checkpoint import RunLock

    out_dir, text = check_train_args(args)
    created = not out_dir.exists()
    lock = None
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, only rank 0 writes checkpoints
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            lock = RunLock(out_dir).acquire()
        except OSError as exc:
            raise UsageError(
                f"--out {out_dir}: cannot write there ({exc.strerror or exc}); choose another directory."
            ) from None
    try:
        return _train(args, out_dir, text)
    finally:
        if lock is not None:
            lock.release()
            if created and not any(p.name != lock.path.name for p in out_dir.iterdir()):
                lock.path.unlink(missing_ok=True)  # a start that failed leaves nothing behind
                out_dir.rmdir()


def _train(args: argparse.Namespace, out_dir: Path, text: str | None) -> int:
    from gptedu.distributed import shutdown_distributed
    from gptedu.trainer import Trainer, budget_text

    given = vars(args)
    ckpt = out_dir / CHECKPOINT_NAME
    if given.get("resume"):
        overrides = _train_overrides(given)
        overrides["out_dir"] = str(out_dir)
        trainer = Trainer.from_checkpoint(ckpt, text=text, **overrides)
    else:
        model_cfg, train_cfg = _configs_from_args(args)
        trainer = Trainer(train_cfg, model_cfg, text=text)
        if ckpt.is_file() and trainer.dist.is_main:
            print(
                f"{ckpt} holds another run's model; it stays until this run writes its first checkpoint, then it "
                "is kept as a numbered ckpt.N.pt beside it (--resume continues a run instead).",
                file=sys.stderr,
            )

    main_rank = trainer.dist.is_main
    if main_rank:
        n_params = sum(p.numel() for p in trainer.model.parameters())
        c = trainer.model_config
        print(
            f"Model: {c.num_layers} layers, {c.num_heads} heads, d_model {c.d_model}, d_ff {c.d_ff}, "
            f"context {c.context_len}, vocab {c.vocab_size}: {n_params / 1e6:.2f}M parameters. "
            f"Device {trainer.device}, {trainer.dist.world_size} process(es). "
            f"Plan: {budget_text(trainer.config)} (whichever ends first; the schedule follows it) "
            f"from step {trainer.step}.",
            flush=True,
        )
    try:
        history = trainer.train()
    except KeyboardInterrupt:
        if not trainer.dist.enabled and trainer.step > 0:
            try:
                path = trainer.save_checkpoint(ckpt)
            except KeyboardInterrupt:  # Ctrl-C again: the save it interrupted finished first (see gptedu.checkpoint)
                raise _Interrupted(
                    f"interrupted again while saving; every checkpoint in {out_dir} is complete."
                ) from None
            raise _Interrupted(f"interrupted at step {trainer.step}; saved {path}. Continue with --resume.") from None
        raise _Interrupted(f"interrupted at step {trainer.step}; {out_dir} holds the last checkpoints saved.") from None
    finally:
        shutdown_distributed()
    if main_rank:
        val = history["val_loss"][-1] if history["val_loss"] else float("nan")  # the summary came from train()
        print(f"Checkpoint: {ckpt} (val loss {val:.4f}, best {min(history['val_loss'], default=val):.4f}).")
        n_sample = given.get("sample_tokens", 300)
        if n_sample > 0:
            text = trainer.sample(
                _sample_prompt(trainer.tokenizer), n_sample, temperature=0.8, seed=trainer.config.seed
            )
            print(f"--- sample (temperature 0.8) ---\n{text}")
    return 0


# --- generate ------------------------------------------------------------------------------------------------------


def cmd_generate(args: argparse.Namespace) -> int:
    """``generate``: check the prompt and the checkpoint's checksums, then load PyTorch and sample."""
    from gptedu.checkpoint import verify_checkpoint_file

    if args.prompt == "":
        raise UsageError('the prompt is empty; give the model something to continue, e.g. --prompt "ROMEO:".')
    verify_checkpoint_file(args.checkpoint)

    import torch

    from gptedu.checkpoint import load_for_generation
    from gptedu.device import pick_device, pick_threads, use_threads
    from gptedu.trainer import generate_ids

    use_threads(args.threads or pick_threads("generate"))
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
    command = "train" if argv is None and "train" in sys.argv[1:2] else "generate"
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # a mistake (one line already printed, status 2), or --help (status 0)
            return exc.code if isinstance(exc.code, int) else 2
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        command = args.command
        return _run(args)
    except (KeyboardInterrupt, _Interrupted) as exc:
        if os.environ.get("GPTEDU_DEBUG"):
            raise
        what = str(exc) if isinstance(exc, _Interrupted) else "interrupted; no checkpoint was being written."
        print(f"\n{PROG} {command}: {what}", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    from gptedu.checkpoint import CheckpointError, RunLockedError
    from gptedu.corpus import CorpusError, CorpusNotFoundError

    command = {"train": cmd_train, "generate": cmd_generate}[args.command]
    try:
        return command(args)
    except (
        UsageError,
        CheckpointError,
        CorpusError,
        CorpusNotFoundError,
        RunLockedError,
        ValueError,
        FloatingPointError,
    ) as exc:
        if os.environ.get("GPTEDU_DEBUG"):
            raise
        message = _in_flags(" ".join(str(exc).split()))  # one line, in the command line's words
        print(f"{PROG} {args.command}: error: {message}", file=sys.stderr)
        return 2


def _in_flags(message: str) -> str:
    """Replace configuration field names (``max_time``, ``lr``...) in a message from the library by their flags."""
    names = {field: flag for flag, field, _, _ in MODEL_OPTIONS + TRAIN_OPTIONS if "_" in field or field == "lr"}
    pattern = re.compile(r"(?<![\w-])(" + "|".join(sorted(map(re.escape, names), key=len, reverse=True)) + r")\b(=?)")
    return pattern.sub(lambda m: names[m.group(1)] + (" " if m.group(2) else ""), message)


if __name__ == "__main__":
    sys.exit(main())
