"""Runs inside the sandbox (no ``gptedu``, no network, unprivileged): the student's code on the grading cases.

Copied into a job folder with ``grading_runner.py`` (a copy of :mod:`gptedu.grading.runner`), the reference-copy
package of prerequisite classes, ``job.json`` (the student's code cells, the imports) and ``cases.pt``. It writes
to its standard output, after ``MARKER``, a ``torch.save`` of ``{case key: run_case outputs}`` plus ``"_cells"``
(what each code cell raised, if anything). Its working folder is an in-memory copy of the job folder.

Nothing in here is trusted by the grader: whatever this process writes is only ever *compared* with the
reference, in nbgrader's own process, which never ran student code.

``verify_runner.py serve [--sandbox sandbox.py --settings sandbox.json]`` is the verification server: it imports
torch ONCE, then reads jobs from its standard input and runs each one in a process forked for it (and, with
``--sandbox``, in a fresh jail: new namespaces, private in-memory folders, the grading user, the limits), exactly as
the one-shot run does, minus starting Python and importing torch again. Each job's files reach only the process
forked for it (the server passes their bytes on and wipes its own copy), so no job can find another job's files
or memory, and whatever a job changes dies with its process (see :func:`serve`).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import signal
import sys
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


def main(job_dir: str) -> int:
    _block_reference()
    data = run_job(job_dir)
    while data:  # straight to fd 1: the grader reads everything after the last marker
        data = data[os.write(1, data):]
    return 0


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


# ---------------------------------------------------------------------------------------- verification server
# Request (grader -> server): 4-byte length + JSON header {"size": n, "timeout": seconds}, then n bytes of job files
# (``pack_files``). Reply (server -> grader): 4-byte length + JSON {"code": exit code or null on timeout,
# "stderr": tail, "size": m}, then m bytes of the job's standard output.
STDOUT_CAP = 256 * 2**20
STDERR_CAP = 64 * 1024


def pack_files(files: dict[str, bytes]) -> bytes:
    """``{relative path: content}`` -> one byte string (4-byte header length, JSON index, contents)."""
    index = []
    for path, content in files.items():
        index.append([path, len(content)])
    head = json.dumps(index).encode()
    return len(head).to_bytes(4, "big") + head + b"".join(files.values())


def unpack_files(data) -> dict[str, bytes]:
    size = int.from_bytes(bytes(data[:4]), "big")
    index = json.loads(bytes(data[4:4 + size]))
    files, offset = {}, 4 + size
    for path, length in index:
        files[path] = bytes(data[offset:offset + length])
        offset += length
    return files


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_into(fd: int, buffer: bytearray) -> bool:
    view, done = memoryview(buffer), 0
    while done < len(buffer):
        got = os.readv(fd, [view[done:]])
        if not got:
            return False
        done += got
    return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def serve(sandbox_file: str | None = None, settings_file: str | None = None) -> int:
    """The verification server's loop (see the module docstring). Runs as root when it jails the jobs."""
    import importlib.util
    import selectors
    import time

    _block_reference()
    import torch

    torch.set_num_threads(1)
    _warm_up(torch)
    sandbox = jail_settings = None
    if sandbox_file:
        spec = importlib.util.spec_from_file_location("gptedu_jail", sandbox_file)
        sandbox = importlib.util.module_from_spec(spec)
        sys.modules["gptedu_jail"] = sandbox  # dataclasses look their module up there
        spec.loader.exec_module(sandbox)
        jail_settings = sandbox.SandboxSettings.load(settings_file)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_DFL)
    scratch = os.getcwd()
    while True:
        raw = _read_exact(0, 4)
        if raw is None:
            return 0
        header = json.loads(_read_exact(0, int.from_bytes(raw, "big")) or b"{}")
        buffer = bytearray(int(header["size"]))
        if not _read_into(0, buffer):
            return 0
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the job's launcher: only it (and the jail below it) ever decodes the job's files
            code = 121
            try:
                os.close(out_r)
                os.close(err_r)
                os.dup2(err_w, 2)  # a failure to start shows in the job's stderr
                files = unpack_files(buffer)
                devnull = os.open(os.devnull, os.O_RDONLY)
                if sandbox is not None:
                    workdir = "/tmp/gptedu-verify-job"
                    jail = sandbox.Jail(jail_settings, workdir=workdir, copy_workdir=True, allow_reference=False,
                                        workdir_files=files)
                    env = dict(sandbox._jail_env(), NBGRADER_EXECUTION="autograde")
                    code = sandbox.run_jailed_function(jail, functools.partial(_job_main, workdir), env,
                                                       (devnull, out_w, err_w))
                else:  # no sandbox available: a fresh process and folder per job, nothing more
                    os.setsid()
                    workdir = tempfile_dir(scratch)
                    for path, content in files.items():
                        target = os.path.join(workdir, *[p for p in path.split("/") if p not in ("", ".", "..")])
                        os.makedirs(os.path.dirname(target), exist_ok=True)
                        with open(target, "wb") as f:
                            f.write(content)
                    for number, fd in enumerate((devnull, out_w, err_w)):
                        os.dup2(fd, number)
                    os.closerange(3, 65536)
                    os.chdir(workdir)
                    code = _job_main(workdir)
            except BaseException as exc:  # noqa: BLE001
                with contextlib.suppress(Exception):
                    os.write(2, f"verification job failed to start: {type(exc).__name__}: {exc}\n".encode())
            os._exit(code)
        # the server keeps no copy of the job: wipe the bytes it read before the next job is forked
        buffer[:] = bytes(len(buffer))
        del buffer
        os.close(out_w)
        os.close(err_w)
        deadline = time.monotonic() + float(header.get("timeout", 300))
        sel = selectors.DefaultSelector()
        streams = {out_r: [STDOUT_CAP, 0, []], err_r: [STDERR_CAP, 0, []]}
        for fd in streams:
            sel.register(fd, selectors.EVENT_READ)
        status = timed_out = None
        while sel.get_map():
            now = time.monotonic()
            if status is None:
                done, raw_status = os.waitpid(pid, os.WNOHANG)
                if done:
                    status = raw_status
                    # the job has ended: its leftovers (a process it started) are killed, and what they hold
                    # open gets a short grace, not the job's whole time limit
                    _kill_job(pid, jailed=sandbox is not None)
                    deadline = min(deadline, now + 5)
            if now >= deadline:
                timed_out = status is None
                break
            for key, _ in sel.select(timeout=min(deadline - now, 0.2)):
                chunk = os.read(key.fd, 1 << 20)
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                cap, kept, chunks = streams[key.fd]
                if kept < cap:
                    chunks.append(chunk[: cap - kept])
                streams[key.fd][1] = kept + len(chunk)
        sel.close()
        if status is None:
            _kill_job(pid, jailed=sandbox is not None)
            _, status = os.waitpid(pid, 0)
        for fd in streams:
            os.close(fd)
        out = b"".join(streams[out_r][2])
        err = b"".join(streams[err_r][2]).decode(errors="replace")[-2000:]
        reply = json.dumps({"code": None if timed_out else os.waitstatus_to_exitcode(status), "stderr": err,
                            "size": len(out)}).encode()
        _write_all(1, len(reply).to_bytes(4, "big") + reply)
        _write_all(1, out)


def _warm_up(torch) -> None:
    """Load once, before any job is forked, what many jobs would each load again: the first optimizer step imports
    ``torch._dynamo`` (~3 s). The random state is put back, so a job starts where a fresh process starts."""
    state = torch.get_rng_state()
    weight = torch.nn.Parameter(torch.ones(3))
    for optimizer in (torch.optim.SGD([weight], lr=0.1, momentum=0.9), torch.optim.AdamW([weight], lr=0.1)):
        optimizer.zero_grad()
        (weight * weight).sum().backward()
        optimizer.step()
    torch.set_rng_state(state)


def _kill_job(pid: int, jailed: bool) -> None:
    """Kill a job's launcher; with a jail everything in it dies too (parent-death signal, end of its pid namespace),
    without one the job's session (it called ``setsid``) is killed."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if jailed:
            os.kill(pid, signal.SIGKILL)
        else:
            os.killpg(pid, signal.SIGKILL)


def tempfile_dir(parent: str) -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="job-", dir=parent)


def _job_main(job_dir: str) -> int:
    """One job, in its own process (jailed or not): its outputs go to stdout like the one-shot run's."""
    data = run_job(job_dir)
    _write_all(1, data)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        args = sys.argv[2:]
        sys.exit(serve(args[args.index("--sandbox") + 1] if "--sandbox" in args else None,
                       args[args.index("--settings") + 1] if "--settings" in args else None))
    sys.exit(main(sys.argv[1]))
