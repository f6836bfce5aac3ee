"""Runs inside a jail (no ``gptedu``, no network, ``nobody``): the student's code on the grading cases.

Started by ``VerifyServer`` (:mod:`gptedu.grading.verify`) before there is work, it imports torch, then answers
runs of ONE student's code from standard input. A run is ``pack_files`` bytes (``job.json``, ``cases.pt``,
``grading_runner.py``, the reference copy, the student's files), run in a child forked for it that writes, after
``MARKER``, a ``torch.save`` of ``{case key: run_case outputs}`` plus ``"_cells"`` (what each cell raised). After a
run every process it left is killed and ``/tmp`` and ``/dev/shm`` are emptied; this process never holds a run's
bytes, so no run finds another's reference copy. In the jail this process is pid 1 and not dumpable, so no run can
read or write its memory (``/proc/1/mem``, ptrace), and the jail refuses SysV IPC and POSIX message queues
(:mod:`gptedu.grading.sandbox`): a run leaves nothing that the next run could read. Nothing here is trusted: the
grader only compares its outputs.
"""

from __future__ import annotations

import contextlib
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


class _BlockReference:
    """Import hook refusing ``gptedu`` (the jail does not contain it anyway; this covers the unsandboxed fallback)."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "gptedu" or name.startswith("gptedu."):
            raise ModuleNotFoundError(f"No module named {name!r} (the reference is not available while grading)")
        return None


def run_job(job_dir: str) -> bytes:
    """Run the job in ``job_dir`` (the student's cells, then every case); returns ``MARKER`` + the saved outputs."""
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, job_dir)
    with open(os.path.join(job_dir, "job.json")) as f:
        job = json.load(f)
    import grading_runner  # the copy of gptedu.grading.runner

    cases = torch.load(os.path.join(job_dir, "cases.pt"), weights_only=True)

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


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _in_jail() -> bool:
    """Run by bubblewrap with ``--as-pid-1``: the init of a pid namespace of its own."""
    return os.getpid() == 1


def _not_dumpable() -> None:
    """``prctl(PR_SET_DUMPABLE, 0)``: a process without capabilities (a run) can no longer ptrace this one or open
    its ``/proc/<pid>/mem``, even under the same uid. Inherited by the children forked for runs."""
    import ctypes

    if ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")


RUN_CPU_SECONDS = 900  # a run's CPU time, whatever it does with signals (the grader's own timeout comes first)


def _end_with_parent(parent: int) -> None:
    """A run never outlives its runner: it watches its parent (unjailed, nothing else would end an orphan) and a
    hard CPU-time limit, inherited by whatever it starts, ends it even if it ignores signals."""
    import resource
    import threading
    import time

    resource.setrlimit(resource.RLIMIT_CPU, (RUN_CPU_SECONDS, RUN_CPU_SECONDS + 5))

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, daemon=True).start()


def _run_forked(size: int, jailed: bool) -> tuple[int, bytes]:
    """One run (its ``size`` bytes read from stdin by the child forked for it): (exit code, stdout). Afterwards
    nothing of it is left: in the jail every other process is killed (``kill(-1)``)."""
    import threading

    job_dir = tempfile.mkdtemp(prefix="job-")  # in the jail: its private /tmp; removed after the run
    out_r, out_w = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            data = _read_exact(0, size) or b""  # first, before anything can fail: the stream stays in step
            os.close(out_r)
            os.dup2(out_w, 1)  # the run's own stdout: the reply channel stays with the parent
            os.close(out_w)
            os.close(0)
            os.setsid()
            _end_with_parent(parent)
            unpack_files(data, job_dir)
            os.chdir(job_dir)
            _write_all(1, run_job(job_dir))
            code = 0
        except BaseException:  # noqa: BLE001 - reported on stderr, the parent goes on
            traceback.print_exc()
        os._exit(code)
    os.close(out_w)
    chunks: list[bytes] = []

    def drain() -> None:
        kept = 0
        for chunk in iter(lambda: os.read(out_r, 1 << 20), b""):
            if kept < STDOUT_CAP:
                chunks.append(chunk[: STDOUT_CAP - kept])
            kept += len(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    _, status = os.waitpid(pid, 0)
    try:
        if jailed:
            os.kill(-1, signal.SIGKILL)  # every process of the jail but this one, its init: what the run left
        else:
            os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    while jailed:  # as init, this process inherits the run's orphans: reap them all
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
    reader.join(timeout=10)
    os.close(out_r)
    for folder in ((job_dir,) if not jailed else ("/tmp", "/dev/shm")):  # the next run finds nothing of this one
        _wipe(folder, keep_top=jailed)
    return os.waitstatus_to_exitcode(status), b"".join(chunks)


def _wipe(folder: str, keep_top: bool) -> None:
    """Remove everything in ``folder`` (and ``folder`` itself unless ``keep_top``), whatever its permissions."""
    import shutil

    for root, dirs, _ in os.walk(folder):
        for name in dirs:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(root, name), 0o700)
    for entry in (os.listdir(folder) if os.path.isdir(folder) else []):
        path = os.path.join(folder, entry)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(path)
    if not keep_top:
        shutil.rmtree(folder, ignore_errors=True)


STDOUT_CAP = 256 * 2**20


PRELOADED = ("matplotlib.pyplot", "regex", "tqdm.auto", "torch.utils.data", "torch.nn.functional")


def _preload() -> None:
    """Import what the notebooks' first cells import once, before any fork (``matplotlib.pyplot``: 0.4-0.6 s)."""
    import importlib

    os.environ.setdefault("MPLBACKEND", "Agg")  # no display in the jail; the notebook's plots are not graded here
    for name in PRELOADED:
        with contextlib.suppress(Exception):
            importlib.import_module(name)


def _own_settings() -> tuple:
    """What a run could change in this process (same uid, no ptrace needed: ``prlimit``, ``sched_setaffinity``,
    ``setpriority``, ``ioprio_set``, ``oom_score_adj``) and so pass to the next run, which inherits it by fork."""
    import ctypes
    import resource

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    limits = [resource.getrlimit(getattr(resource, n)) for n in sorted(dir(resource)) if n.startswith("RLIMIT_")]
    with open("/proc/self/oom_score_adj") as f:
        oom = f.read()
    ioprio = libc.syscall({"x86_64": 252, "aarch64": 31}.get(os.uname().machine, -1), 1, 0)  # ioprio_get(self)
    return limits, sorted(os.sched_getaffinity(0)), os.getpriority(os.PRIO_PROCESS, 0), ioprio, oom


def main() -> int:
    """Import torch, then answer runs from stdin (8-byte length + ``pack_files`` bytes) with replies on stdout
    (8-byte length, 4-byte exit code, the run's stdout)."""
    sys.meta_path.insert(0, _BlockReference)  # a fresh ``-I`` Python: no gptedu module is loaded yet
    import torch

    torch.set_num_threads(1)
    _preload()
    jailed = _in_jail()
    if jailed:
        _not_dumpable()
    settings = _own_settings()
    while True:
        head = _read_exact(0, 8)
        if not head:
            return 0
        code, out = _run_forked(int.from_bytes(head, "big"), jailed)
        if _own_settings() != settings:  # the run changed this process: no results, and the jail ends with it
            return 3
        _write_all(1, len(out).to_bytes(8, "big") + code.to_bytes(4, "big", signed=True) + out)


if __name__ == "__main__":
    sys.exit(main())
