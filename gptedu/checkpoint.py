"""Checkpoints: everything needed to resume a run or to generate text, written so that none is ever lost.

A checkpoint is one ``torch.save`` file holding a dict:

==================  =====================================================================
``format``          ``"gptedu-char"`` (what kind of file this is) and ``version`` (its layout)
``run_id``          which training run wrote it (a resumed run keeps its id)
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

**Never lost.** ``save_checkpoint`` writes to a temporary file beside the target and renames it over the target
only when it is complete, so a crash, a full disk or Ctrl-C mid-write leaves the old file as it was. In a run
directory (``OUT/ckpt.pt``):

* the run's previous checkpoint is kept as ``ckpt.prev.pt`` (the one to restore if ``ckpt.pt`` is damaged);
* a checkpoint of *another* run (a fresh training into the same ``OUT``) is never overwritten: when the new run
  writes its first checkpoint, the old ``ckpt.pt`` (and its ``ckpt.prev.pt``) move to numbered files
  ``ckpt.1.pt``, ``ckpt.2.pt``, ... (higher is newer), which nothing ever touches again;
* ``RunLock`` lets one training at a time write into a directory (``python -m gptedu train`` takes it).

**Checksums.** ``torch.save`` writes a zip archive that stores a CRC-32 checksum of every entry (the pickled
structure and every tensor's bytes). PyTorch does not check them when loading, so bytes damaged in place (a bad
disk, a copy cut short then patched, zeros written over a tensor) would load as a silently different model.
``verify_checkpoint_file`` recomputes every entry's checksum (``zipfile.ZipFile.testzip``) and ``load_checkpoint``
refuses a file that fails, naming the file to restore.

This module imports PyTorch only when it reads or writes tensors, so the command line can check a checkpoint file
and lock a run directory before PyTorch has loaded.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import signal
import socket
import sys
import tempfile
import threading
import uuid
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gptedu.configs import CharGPTConfig

if TYPE_CHECKING:
    import torch
    from torch import nn

    from gptedu.data import CharTokenizer

CHECKPOINT_FORMAT = "gptedu-char"
CHECKPOINT_VERSION = 1
CHECKPOINT_NAME = "ckpt.pt"
LOCK_NAME = ".gptedu-train.lock"
REQUIRED_KEYS = ("model_state", "model_config", "tokenizer_chars")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: unreadable, from something else, or not matching the model."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint path does not exist."""


class CheckpointDamagedError(CheckpointError):
    """The file is a checkpoint whose bytes changed after it was written (its checksums do not match)."""


class RunLockedError(RuntimeError):
    """Another training is writing into the same run directory."""


def new_run_id() -> str:
    """A fresh id for a training run (stored in each of its checkpoints)."""
    return uuid.uuid4().hex


# --- names of the kept checkpoints ---------------------------------------------------------------------------------


def previous_path(path: str | os.PathLike[str]) -> Path:
    """Where the run's previous checkpoint is kept: ``ckpt.pt`` -> ``ckpt.prev.pt``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def _numbered(path: Path) -> list[tuple[int, Path]]:
    pattern = re.compile(rf"{re.escape(path.stem)}\.(\d+){re.escape(path.suffix)}")
    found = []
    if path.parent.is_dir():
        for entry in path.parent.iterdir():
            match = pattern.fullmatch(entry.name)
            if match:
                found.append((int(match.group(1)), entry))
    return sorted(found)


def history_paths(path: str | os.PathLike[str]) -> list[Path]:
    """The numbered checkpoints of earlier runs beside ``path`` (``ckpt.1.pt``, ``ckpt.2.pt``, ...), oldest first."""
    return [entry for _, entry in _numbered(Path(path))]


def _next_history_path(path: Path) -> Path:
    existing = _numbered(path)
    number = existing[-1][0] + 1 if existing else 1
    return path.with_name(f"{path.stem}.{number}{path.suffix}")


def restore_hint(path: str | os.PathLike[str]) -> str:
    """What to restore when ``path`` is damaged: its ``.prev`` file, else the newest numbered one, else a backup."""
    path = Path(path)
    for candidate in [previous_path(path), *reversed(history_paths(path))]:
        if candidate.is_file() and candidate != path:
            return f"re-train or restore {candidate} (copy it over {path.name}, or --checkpoint {candidate})"
    return "re-train, or restore it from a backup"


# --- checking a file without loading it ----------------------------------------------------------------------------


def resolve_checkpoint_path(path: str | os.PathLike[str]) -> Path:
    """``path`` itself, or ``path/ckpt.pt`` for a run directory; ``CheckpointNotFoundError`` when neither exists."""
    path = Path(path)
    if path.is_dir():
        inner = path / CHECKPOINT_NAME
        if not inner.is_file():
            raise CheckpointNotFoundError(
                f"{path} is a directory without a {CHECKPOINT_NAME} in it; pass the checkpoint file."
            )
        return inner
    if not path.is_file():
        raise CheckpointNotFoundError(
            f"No checkpoint at {path}. Train one first (python -m gptedu train --out DIR writes DIR/{CHECKPOINT_NAME}) "
            "or fix the path."
        )
    return path


def verify_checkpoint_file(path: str | os.PathLike[str]) -> Path:
    """Check that ``path`` (or ``path/ckpt.pt``) is a complete, undamaged ``torch.save`` archive; return its path.

    Recomputes the CRC-32 of every entry (needs no PyTorch). Raises ``CheckpointNotFoundError``,
    ``CheckpointError`` (not a PyTorch file at all) or ``CheckpointDamagedError`` (a checksum does not match).
    """
    path = resolve_checkpoint_path(path)
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; a truncated copy loses its directory
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint: it is damaged (an interrupted copy or save?) or some other kind "
            f"of file; {restore_hint(path)}."
        )
    try:
        with zipfile.ZipFile(path) as archive:
            bad_entry = archive.testzip()  # reads every entry and compares it with its stored CRC-32
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise CheckpointDamagedError(
            f"checkpoint damaged: {path} cannot be read as a whole ({type(exc).__name__}: {exc}); {restore_hint(path)}."
        ) from exc
    if bad_entry is not None:
        raise CheckpointDamagedError(
            f"checkpoint damaged: {path} changed after it was written (the checksum of its entry "
            f"{bad_entry.split('/', 1)[-1]!r} does not match); {restore_hint(path)}."
        )
    return path


# --- writing -------------------------------------------------------------------------------------------------------


def _run_id_of(path: Path) -> str | None:
    """The ``run_id`` stored in the checkpoint at ``path``; ``None`` when it has none or cannot be read."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # damaged or foreign: treat as another run's file, so it is kept, not replaced
        return None
    run_id = state.get("run_id") if isinstance(state, dict) else None
    return run_id if isinstance(run_id, str) else None


def _keep_as_history(old: Path, path: Path) -> Path:
    """Move ``old`` to the next free numbered name of ``path`` (``ckpt.N.pt``), never over an existing file."""
    target = _next_history_path(path)
    try:
        os.link(old, target)  # fails if target exists: nothing is overwritten
    except FileExistsError:
        return _keep_as_history(old, path)
    except OSError:  # a filesystem without hard links
        if target.exists():
            return _keep_as_history(old, path)
        os.replace(old, target)
        return target
    old.unlink()
    return target


def _install(tmp: Path, path: Path, run_id: str | None, log) -> None:
    """Put the finished file ``tmp`` at ``path``, keeping what was there (see the module docstring)."""
    prev = previous_path(path)
    for old in (prev, path):
        if old.exists() and (run_id is None or _run_id_of(old) != run_id):
            kept = _keep_as_history(old, path)
            log(f"{old} was written by another run; kept it as {kept}.")
    if path.exists():  # this run's previous checkpoint becomes ckpt.prev.pt; path stays valid throughout
        link = prev.with_name(f".{prev.name}.{os.getpid()}.tmp")
        try:
            link.unlink(missing_ok=True)
            os.link(path, link)
            os.replace(link, prev)
        except OSError:  # no hard links: a moment without `path`, but the same bytes are at `prev`
            link.unlink(missing_ok=True)
            os.replace(path, prev)
    os.replace(tmp, path)  # atomic on POSIX and Windows when both are on the same filesystem


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str], log=None) -> Path:
    """Write ``state`` to ``path`` without ever losing a checkpoint (see the module docstring).

    The file is written completely to a temporary name beside ``path`` first; a crash, a full disk or Ctrl-C
    mid-write leaves every existing checkpoint untouched. ``state["run_id"]`` (if present) tells this run's earlier
    checkpoint (kept as ``ckpt.prev.pt``) from another run's (kept as ``ckpt.N.pt``). ``log(message)`` is called
    when another run's file is moved aside (default: print to stderr).
    """
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    log = log or (lambda message: print(message, file=sys.stderr))
    state = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}
    with _interrupts_deferred():  # Ctrl-C waits for the save to finish (a second or so), then takes effect
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as fh:
                torch.save(state, fh)
                fh.flush()
                os.fsync(fh.fileno())
            _install(tmp, path, state.get("run_id"), log)
        except BaseException:  # an error (a full disk...): never leave a half-written file behind
            tmp.unlink(missing_ok=True)
            raise
    return path


@contextlib.contextmanager
def _interrupts_deferred():
    """Hold back SIGINT (Ctrl-C) inside the block and deliver it as ``KeyboardInterrupt`` at its end.

    Only the main thread can handle signals; elsewhere the block runs unprotected (the temporary file still keeps
    a half-written checkpoint from replacing a good one).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
    if caught:
        raise KeyboardInterrupt


# --- reading -------------------------------------------------------------------------------------------------------


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint``; raise ``CheckpointError`` with the fix if it is unusable.

    ``path`` may be a run directory (its ``ckpt.pt`` is read). The file's checksums are verified first.
    """
    import torch

    path = verify_checkpoint_file(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle garbage, objects a safe load refuses...: all mean "not a usable checkpoint"
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = next((line for line in lines if "WeightsUnpickler error" in line), lines[0] if lines else "")
        raise CheckpointError(
            f"Could not read the checkpoint {path} ({type(exc).__name__}: {detail[:200]}). It holds objects a safe "
            f"load refuses, or is not a gptedu checkpoint; {restore_hint(path)}."
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


def build_model(cfg: CharGPTConfig, fused: bool = False) -> nn.Module:
    """The character GPT for ``cfg``; ``fused=True`` asks for the fused-attention variant (same state_dict)."""
    from gptedu.char.model import GPTModel

    model = GPTModel.from_config(cfg)
    if not fused:
        return model
    try:
        from gptedu.char.fast import fuse
    except ImportError as exc:
        raise ValueError("fused=True needs gptedu.char.fast, which this install lacks; train without --fused.") from exc
    return fuse(model)


def load_for_generation(
    path: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    model_factory: Any | None = None,
) -> tuple[nn.Module, CharTokenizer]:
    """Rebuild the trained model (in eval mode, on ``device``) and its tokenizer from a checkpoint.

    ``model_factory(CharGPTConfig) -> nn.Module`` overrides how the model is built; by default it is
    ``build_model`` with the run's ``fused`` setting (plain ``GPTModel`` otherwise).
    """
    from gptedu.data import CharTokenizer

    state = load_checkpoint(path, map_location=device)
    cfg = model_config_from(state, path)
    if model_factory is None:
        model = build_model(cfg, fused=bool(state.get("train_config", {}).get("fused", False)))
    else:
        model = model_factory(cfg)
    load_model_state(model, state["model_state"], path)
    model.to(device).eval()
    return model, CharTokenizer(state["tokenizer_chars"])


# --- one training per directory ------------------------------------------------------------------------------------


class RunLock:
    """An exclusive lock on a run directory, held while a training writes into it.

    ``acquire()`` fails at once (``RunLockedError`` naming the process that holds it) instead of waiting. The lock
    is the operating system's (``flock`` on a file in the directory; ``msvcrt.locking`` on Windows), so a training
    that crashes or is killed releases it with its process: there is no stale lock to clean up.
    """

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock_fd(fd)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            raise RunLockedError(
                f"another training is writing into {self.directory} ({holder}); wait for it to finish or stop it, "
                "or train into another --out."
            ) from None
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "command": " ".join(sys.argv) if sys.argv and sys.argv[0] else "python",
        }
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(info).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            finally:
                os.close(self._fd)  # closing the descriptor releases the lock
                self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()


def _lock_fd(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    else:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096).decode() or "{}")
        return f"pid {info['pid']} on {info['host']}, started {info['started']}: {info['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not yet said which"
