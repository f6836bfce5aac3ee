"""Runs inside a jail (no ``gptedu``, no network, ``nobody``): the student's code on the grading cases. ONE job.

The grader starts this file in a fresh jail *before* it has a job for it (``VerifyServer`` in
:mod:`gptedu.grading.verify`): it imports torch while the grader does other work, then reads one job
from its standard input (``pack_files`` bytes: ``job.json`` with the student's code cells and the imports,
``cases.pt``, ``grading_runner.py`` (a copy of :mod:`gptedu.grading.runner`), the reference-copy package of
prerequisite classes, the files handed in beside the notebook), writes them into a fresh folder of its private
``/tmp``, runs them, and writes to its standard output, after ``MARKER``, a ``torch.save`` of
``{case key: run_case outputs}`` plus ``"_cells"`` (what each code cell raised, if anything). Then it exits, and its
jail (memory, ``/tmp``, processes) ends with it: no job can leave anything for the next.

Nothing in here is trusted by the grader: whatever this process writes is only ever *compared* with the
reference, in nbgrader's own process, which never ran student code.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import tempfile
import traceback
import types

MARKER = b"\n@@gptedu-verify-outputs@@\n"


class _NoIPython:
    """``get_ipython()`` for code that calls it: every attribute is a no-op, so magics and hooks do nothing."""

    def __getattr__(self, name):
        return _NoIPython()

    def __call__(self, *args, **kwargs):
        return _NoIPython()

    def __iter__(self):
        return iter(())


def _poison_torch_attention(torch) -> None:
    """Make PyTorch's ready-made attention raise: an exercise's output must come from the student's own code."""

    def forbidden(*args, **kwargs):
        raise RuntimeError("PyTorch's built-in attention is not available while grading: this exercise asks you "
                           "to compute attention yourself.")

    import torch.nn.functional as F  # noqa: N812

    for owner, name in ((F, "scaled_dot_product_attention"), (F, "multi_head_attention_forward"),
                        (torch._C._nn, "scaled_dot_product_attention"), (torch, "_native_multi_head_attention")):
        if hasattr(owner, name):
            setattr(owner, name, forbidden)
    torch.nn.MultiheadAttention.forward = forbidden


class _BlockReference:
    """Import hook refusing ``gptedu`` (the jail does not contain it anyway; this covers the unsandboxed fallback)."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "gptedu" or name.startswith("gptedu."):
            raise ModuleNotFoundError(f"No module named {name!r} (the reference is not available while grading)")
        return None


def _block_reference() -> None:
    sys.meta_path.insert(0, _BlockReference)
    for name in [m for m in sys.modules if m == "gptedu" or m.startswith("gptedu.")]:
        del sys.modules[name]


def run_job(job_dir: str) -> bytes:
    """Run the job in ``job_dir`` (the student's cells, then every case); returns ``MARKER`` + the saved outputs."""
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, job_dir)
    with open(os.path.join(job_dir, "job.json")) as f:
        job = json.load(f)
    import grading_runner  # the copy of gptedu.grading.runner

    cases = torch.load(os.path.join(job_dir, "cases.pt"), weights_only=True)
    _poison_torch_attention(torch)

    student = types.ModuleType("student")
    student.__dict__["get_ipython"] = lambda: _NoIPython()
    sys.modules["student"] = student
    cell_errors: list[str] = []
    try:
        exec(compile(job["prelude"], "<grader prelude>", "exec"), student.__dict__)
    except Exception:  # noqa: BLE001 - reported, the student's cells still run
        cell_errors.append("prelude: " + traceback.format_exc(limit=2))
    real_stdout = sys.stdout

    def out_of_time(signum, frame):
        raise TimeoutError("this cell took too long when re-run for grading")

    signal.signal(signal.SIGALRM, out_of_time)
    for index, source in job["cells"]:
        sys.stdout = io.StringIO()  # the student's prints are not needed here
        signal.setitimer(signal.ITIMER_REAL, job.get("cell_seconds", 60))
        try:
            exec(compile(source, f"<cell {index}>", "exec"), student.__dict__)
        except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt included
            cell_errors.append(f"cell {index}: {type(exc).__name__}: {exc}")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            sys.stdout = real_stdout

    outputs: dict = {"_cells": cell_errors}
    for spec in job["specs"]:
        obj = student.__dict__.get(spec["target"])
        module = getattr(obj, "__module__", "student") or ""
        for key, case in cases[spec["name"]]:
            if obj is not None and module != "student":
                result = {"_status": "forbidden", "_forbidden": [f"{module}.{spec['target']}"],
                          "_message": f"{spec['target']} is not defined by your code (it comes from {module})."}
            else:
                try:
                    result = grading_runner.run_case(obj, case)
                except BaseException as exc:  # noqa: BLE001
                    result = {"_status": "error", "_forbidden": [],
                              "_message": f"grading stopped: {type(exc).__name__}: {exc}"}
            outputs[key] = result
    buffer = io.BytesIO()
    torch.save(outputs, buffer)
    return MARKER + buffer.getvalue()


def pack_files(files: dict[str, bytes]) -> bytes:
    """``{relative path: content}`` -> one byte string (4-byte header length, JSON index, contents)."""
    head = json.dumps([[path, len(content)] for path, content in files.items()]).encode()
    return len(head).to_bytes(4, "big") + head + b"".join(files.values())


def unpack_files(data: bytes, dest: str) -> None:
    """Write what :func:`pack_files` packed under ``dest`` (no absolute paths, no ``..``)."""
    size = int.from_bytes(data[:4], "big")
    offset = 4 + size
    for path, length in json.loads(data[4:offset]):
        parts = [p for p in str(path).split("/") if p not in ("", ".", "..")]
        if parts:
            target = os.path.join(dest, *parts)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as f:
                f.write(data[offset:offset + length])
        offset += length


def main() -> int:
    _block_reference()
    import torch

    torch.set_num_threads(1)
    data = sys.stdin.buffer.read()  # waits for the job; the grader closes the pipe after it
    if not data:
        return 0
    job_dir = tempfile.mkdtemp(prefix="job-")  # in the jail: its private /tmp
    unpack_files(data, job_dir)
    del data
    os.chdir(job_dir)
    out = memoryview(run_job(job_dir))
    while out:  # straight to fd 1: the grader reads everything after the last marker
        out = out[os.write(1, out):]
    return 0


if __name__ == "__main__":
    sys.exit(main())
