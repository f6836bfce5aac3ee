"""Checkpoints: everything needed to resume a run or to generate text, written so a crash never loses a good one.

A checkpoint is one ``torch.save`` file holding a dict:

==================  =====================================================================
``format``          ``"gptedu-char"`` (what kind of file this is) and ``version`` (its layout)
``model_state``     the model's ``state_dict()``
``model_config``    ``CharGPTConfig`` as a dict (enough to rebuild the model)
``train_config``    ``TrainConfig`` as a dict
``tokenizer_chars`` the vocabulary, in id order (enough to rebuild the tokenizer)
``optimizer_state`` the optimizer's ``state_dict()`` (AdamW's moment estimates)
``step``            how many optimizer steps were taken
``history``         the loss history (see ``gptedu.trainer``)
``rng``             random-number states (PyTorch, Python, and each rank's batch generator)
==================  =====================================================================

It is loaded with ``weights_only=True``: only tensors and plain Python containers, never arbitrary code.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gptedu.char.model import CharGPTConfig
from gptedu.data import CharTokenizer

CHECKPOINT_FORMAT = "gptedu-char"
CHECKPOINT_VERSION = 1
REQUIRED_KEYS = ("model_state", "model_config", "tokenizer_chars")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: unreadable, from something else, or not matching the model."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint path does not exist."""


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``state`` to ``path`` atomically: to a temporary file beside it, then renamed over it.

    A crash or a full disk mid-write leaves the previous checkpoint at ``path`` untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)  # atomic on POSIX and Windows when both are on the same filesystem
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint``; raise ``CheckpointError`` with the fix if it is unusable."""
    path = Path(path)
    if path.is_dir():
        inner = path / "ckpt.pt"
        if not inner.is_file():
            raise CheckpointNotFoundError(f"{path} is a directory without a ckpt.pt in it; pass the checkpoint file.")
        path = inner
    if not path.is_file():
        raise CheckpointNotFoundError(
            f"No checkpoint at {path}. Train one first (python -m gptedu train --out DIR writes DIR/ckpt.pt) "
            "or fix the path."
        )
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; a truncated copy loses its directory
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint: it is damaged (an interrupted copy or save?) or some other kind "
            "of file. Re-train, or use another checkpoint."
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, pickle garbage, a text file...: all mean "not a usable checkpoint"
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = next((line for line in lines if "WeightsUnpickler error" in line), lines[0] if lines else "")
        raise CheckpointError(
            f"Could not read the checkpoint {path} ({type(exc).__name__}: {detail[:200]}). The file is damaged "
            "(an interrupted copy?), holds objects a safe load refuses, or is not a gptedu checkpoint; "
            "re-train or use another file."
        ) from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is a PyTorch file but not a gptedu checkpoint (no format={CHECKPOINT_FORMAT!r} entry). "
            "Pass a file written by gptedu's trainer."
        )
    if state.get("version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint layout version {state['version']}, newer than this gptedu understands "
            f"({CHECKPOINT_VERSION}); upgrade gptedu."
        )
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}; it was not written by gptedu's trainer.")
    return state


def model_config_from(state: dict[str, Any], path: str | os.PathLike[str] = "checkpoint") -> CharGPTConfig:
    """The ``CharGPTConfig`` stored in a loaded checkpoint."""
    try:
        return CharGPTConfig(**state["model_config"])
    except TypeError as exc:
        raise CheckpointError(f"{path} holds a model config this gptedu cannot read ({exc}).") from exc


def load_model_state(model: nn.Module, model_state: dict[str, torch.Tensor], path: str | os.PathLike[str]) -> None:
    """``model.load_state_dict`` with an error that names what does not fit."""
    own = model.state_dict()
    missing = sorted(set(own) - set(model_state))
    unexpected = sorted(set(model_state) - set(own))
    wrong_shape = [k for k in own if k in model_state and own[k].shape != model_state[k].shape]
    if missing or unexpected or wrong_shape:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}")
        if wrong_shape:
            parts.append(
                "shape mismatch "
                + ", ".join(
                    f"{k}: model {tuple(own[k].shape)} vs file {tuple(model_state[k].shape)}" for k in wrong_shape[:5]
                )
            )
        raise CheckpointError(
            f"The weights in {path} do not fit this model ({'; '.join(parts)}). The checkpoint was made with a "
            "different architecture or config; build the model from the checkpoint's own model_config."
        )
    model.load_state_dict(model_state)


def load_for_generation(
    path: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    model_factory: Any | None = None,
) -> tuple[nn.Module, CharTokenizer]:
    """Rebuild the trained model (in eval mode, on ``device``) and its tokenizer from a checkpoint.

    ``model_factory(CharGPTConfig) -> nn.Module`` overrides how the model is built; by default it is the
    trainer's ``build_model`` with the run's ``fused`` setting (plain ``GPTModel`` otherwise).
    """
    state = load_checkpoint(path, map_location=device)
    cfg = model_config_from(state, path)
    if model_factory is None:
        from gptedu.trainer import build_model  # local import: the trainer imports this module

        model = build_model(cfg, fused=bool(state.get("train_config", {}).get("fused", False)))
    else:
        model = model_factory(cfg)
    load_model_state(model, state["model_state"], path)
    model.to(device).eval()
    return model, CharTokenizer(state["tokenizer_chars"])
