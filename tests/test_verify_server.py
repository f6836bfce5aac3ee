"""The verification's jailed Pythons (started in advance; a jail serves one student's code only) keep jobs apart.

Whatever one job does (monkeypatching torch, planting files in its folder, in /tmp or in HOME, leaving a process
behind), the next job -- another notebook, or another student -- starts from a fresh process in a fresh jail, and
the next run of the same code from a fresh fork in an emptied jail; a job that never ends is killed at its time
limit and the next one runs; the reference package is not importable in the job. Jailed (how a class is graded)
and with ``GPTEDU_UNSANDBOXED=1`` (state only: a fresh process per job).
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gptedu.grading import runner, sandbox, verify
from gptedu.grading.verify_runner import MARKER

pytestmark = pytest.mark.slow

# Job 1: tampering of every kind, then it reports what it did (a cell that raises shows in "_cells").
TAMPER = """\
import builtins, os, subprocess, sys, torch
torch.allclose = lambda *a, **k: True
builtins.planted_by_job_1 = True
sys.modules["json"].planted = True
open("planted.txt", "w").write("from job 1")
open("/tmp/gptedu-planted-by-job-1", "w").write("from job 1")
os.makedirs(os.path.expanduser("~/.planted"), exist_ok=True)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(15)"], start_new_session=True)
raise RuntimeError("job 1 done")
"""

# Job 2: what a fresh process would see; each finding is reported.
INSPECT = """\
import builtins, json, os, torch
seen = []
if torch.allclose(torch.zeros(1), torch.ones(1)):
    seen.append("torch.allclose patched")
if hasattr(builtins, "planted_by_job_1") or hasattr(json, "planted"):
    seen.append("module state")
if os.path.exists("planted.txt"):
    seen.append("file in the job folder")
if os.path.exists("/tmp/gptedu-planted-by-job-1"):
    seen.append("file in /tmp")
if os.path.exists(os.path.expanduser("~/.planted")):
    seen.append("folder in HOME")
raise RuntimeError("seen: " + (", ".join(seen) or "nothing"))
"""

HANG = """\
import signal
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])  # the per-cell alarm cannot stop it
while True:
    pass
"""

REFERENCE = f"""\
import importlib, os, sys
found = [{sandbox.PACKAGE_DIR!r}] if os.path.exists({sandbox.PACKAGE_DIR!r}) else []
for name in ("gptedu", "gptedu.char.attention", "gptedu.grading.verify"):
    try:
        importlib.import_module(name)
        found.append(name)
    except ImportError:
        pass
found += [path for path in sys.path if os.path.exists(path + "/gptedu/__init__.py")]
raise RuntimeError("reference: " + (", ".join(found) or "none"))
"""


def _job(cell: str) -> dict[str, bytes]:
    """The files of a job with one student cell and no graded component."""
    cases = io.BytesIO()
    torch.save({}, cases)
    return {
        "job.json": json.dumps({"prelude": "import torch\n", "cells": [[0, cell]], "cell_seconds": 30,
                                "specs": []}).encode(),
        "cases.pt": cases.getvalue(),
        "grading_runner.py": Path(runner.__file__).read_bytes(),
    }


def _cell_errors(stdout: bytes) -> list[str]:
    start = stdout.rfind(MARKER)
    assert start >= 0, stdout[-2000:]
    return torch.load(io.BytesIO(stdout[start + len(MARKER):]), weights_only=True)["_cells"]


def _report(server, cell: str, prefix: str) -> str:
    code, out, err = server.run(_job(cell), timeout=120)
    assert code == 0, err
    (report,) = [e for e in _cell_errors(out) if prefix in e]
    return report


@pytest.fixture(scope="module", params=["jailed", "unsandboxed"])
def server(request):
    srv = verify.VerifyServer(request.param == "jailed")
    srv.mode = request.param
    srv.start_soon()
    yield srv
    srv.stop()
    Path("/tmp/gptedu-planted-by-job-1").unlink(missing_ok=True)  # unsandboxed, job 1 wrote the real /tmp


def test_a_job_cannot_leave_anything_for_the_next(server):
    start = time.monotonic()
    code, out, err = server.run(_job(TAMPER), timeout=120)
    assert code == 0, err
    assert any("job 1 done" in e for e in _cell_errors(out)), err
    # the process job 1 left behind is killed; the run does not wait for it
    assert time.monotonic() - start < 60
    report = _report(server, INSPECT, "seen:")
    if server.mode == "jailed":
        assert report.endswith("seen: nothing"), report
    else:  # no jail: a fresh process and folder per job, but the machine's /tmp is shared (the attack works)
        assert "file in /tmp" in report, report
        assert "torch.allclose patched" not in report and "module state" not in report, report
        assert "file in the job folder" not in report, report


def test_the_reference_is_not_importable_in_a_job(server):
    report = _report(server, REFERENCE, "reference:")
    if server.mode == "jailed":
        assert report.endswith("reference: none"), report
    else:  # unjailed the import hook refuses gptedu, but its files are there to read
        assert report.endswith(f"reference: {sandbox.PACKAGE_DIR}"), report


def test_a_job_that_never_ends_is_stopped_and_the_next_runs(server):
    start = time.monotonic()
    code, out, err = server.run(_job(HANG), timeout=3)
    assert code is None  # what run_in_sandbox reports as "did not finish within ..."
    assert time.monotonic() - start < 60
    assert "seen:" in _report(server, INSPECT, "seen:")


A, A_HIDDEN, B = ("student-a", "visible"), ("student-a", "hidden"), ("student-b", "visible")


def test_a_jail_serves_one_key_and_keeps_its_runs_apart():
    """Runs of one student and kind (e.g. the visible cases of every notebook) share a jail started in advance, but
    each is a fresh fork: what the first left (patched torch, files in /tmp and HOME, a process) is gone for the
    second. Another student's key gets another jail, and the first student's jails are ended."""
    srv = verify.VerifyServer(True)
    try:
        srv.start_soon()
        (first,) = srv._waiting
        code, out, err = srv.run(_job(TAMPER), timeout=120, key=A)
        assert code == 0, err
        assert srv._bound == {A: first} and first.poll() is None
        code, out, err = srv.run(_job(INSPECT), timeout=120, key=A)
        assert code == 0, err
        (report,) = [e for e in _cell_errors(out) if "seen:" in e]
        assert report.endswith("seen: nothing"), report
        assert srv._bound[A] is first
        code, _, err = srv.run(_job("x = 1"), timeout=120, key=A_HIDDEN)
        assert code == 0, err
        assert srv._bound[A] is first and srv._bound[A_HIDDEN] is not first  # the hidden runs: a jail of their own
        code, _, err = srv.run(_job("x = 1"), timeout=120, key=B)
        assert code == 0, err
        assert first.poll() is not None  # ended: it never serves other code
        assert list(srv._bound) == [B] and srv._bound[B] is not first
        assert "exec" in srv._bound[B].args and "--no-reference" in srv._bound[B].args  # a jail of its own
    finally:
        srv.stop()


def test_visible_and_hidden_runs_of_a_student_never_share_a_jail(monkeypatch, tmp_path):
    """Every run of one submission has one owner, and its kind (visible or hidden) is part of the jail's key."""
    import nbformat

    from gptedu.grading import components

    keys = []
    monkeypatch.setattr(verify.VerifyServer, "run", lambda self, files, timeout, key=None: (keys.append(key), (
        1, b"", ""))[1])
    source_nb = nbformat.read(Path(__file__).parents[1] / "autograder" / "source" / "gpt_from_scratch" /
                              "09_generation.ipynb", as_version=4)
    found = [c for c in components.all_components() if c.notebook == "09_generation"]
    verify.verify_components(found, [(0, "x = 1")], source_nb, b"a course secret", 60, str(tmp_path))
    assert {owner for owner, _ in keys} == {str(tmp_path.resolve())}
    assert [which for _, which in keys] == ["visible", "hidden"] * (len(keys) // 2), keys


# What a run could leave in its jail for the next run (the next notebook of the student) beside files: objects of the
# jail's IPC namespace, which outlive every process (SysV shared memory, semaphores, message queues; POSIX message
# queues), and the memory of a process that outlives the run (in the jail, pid 1: the server that forks the runs).
LEAVE_BEHIND = """import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
found = {"shmget": libc.shmget(0x6770, 4096, 0o1600), "semget": libc.semget(0x6771, 1, 0o1600),
         "msgget": libc.msgget(0x6772, 0o1600), "mq_open": libc.syscall(MQ_OPEN, b"gptedu-q", 0o100 | 2, 0o600, None),
         "inet": libc.socket(2, 1, 0), "inet6": libc.socket(10, 1, 0),
         "sysctl": os.access("/proc/sys/kernel/core_pattern", os.W_OK) - 1}
if PROBE_INIT:
    try:
        open("/proc/1/mem", "r+b", 0).close()
        found["/proc/1/mem"] = 0
    except OSError:
        found["/proc/1/mem"] = -1
    found["ptrace"] = libc.ptrace(16, 1, None, None)  # PTRACE_ATTACH
for key in ("shmget", "semget", "msgget"):  # remove what was made (the unjailed control)
    if found[key] >= 0:
        getattr(libc, key[:3] + "ctl")(found[key], 0, 0)  # IPC_RMID
if found["mq_open"] >= 0:
    libc.syscall(MQ_UNLINK, b"gptedu-q")
raise RuntimeError("left: " + " ".join(k for k, v in found.items() if v >= 0))
"""
_MQ = {"x86_64": ("240", "241"), "aarch64": ("180", "181")}


def test_a_run_can_leave_nothing_in_its_jails_kernel_objects_or_processes():
    """One jail serves every visible (or every hidden) run of a student, and the runs hold different reference
    copies, so whatever one run can leave that the next can read is a way to borrow a correct class (a red-team
    session carried notebook 10's reference classes through SysV shared memory: 55 of 70 points for stubs). In the
    jail every such object is refused: SysV and POSIX IPC by seccomp, and the jail's pid 1 is the runs' server, which
    is not dumpable (no ptrace, no /proc/1/mem). The control: a plain Python here can make each IPC object."""
    import platform

    mq_open, mq_unlink = _MQ[platform.machine()]
    cell = LEAVE_BEHIND.replace("MQ_OPEN", mq_open).replace("MQ_UNLINK", mq_unlink)
    srv = verify.VerifyServer(True)
    try:
        report = _report_keyed(srv, cell.replace("PROBE_INIT", "True"), "left:", A)
        assert report.endswith("left: "), report
    finally:
        srv.stop()
    plain = subprocess.run([sys.executable, "-c", cell.replace("PROBE_INIT", "False")], capture_output=True,
                           text=True, timeout=60)
    assert "left: shmget semget msgget mq_open inet inet6" in plain.stderr, plain.stderr
    assert ("sysctl" in plain.stderr) == (os.geteuid() == 0), plain.stderr  # as root, the host's sysctls are writable


SETTINGS = """import resource
before = resource.getrlimit(resource.RLIMIT_RSS)
resource.prlimit(os.getppid() if PARENT else 0, resource.RLIMIT_RSS, (123456789, before[1]))
raise RuntimeError(f"rss: {before[0]}")
"""


def test_a_run_that_changes_its_servers_settings_ends_the_jail():
    """The runs' server shares the runs' uid, so a run may set its limits, CPU affinity, priority (``prlimit``,
    ``sched_setaffinity``, ``setpriority``: no ptrace needed), which the next run would inherit by fork: a few dozen
    bytes per run (found by a red-team session). A run that changed its server gets no results and ends the jail;
    the next run gets a fresh one. A run that changes only its own settings keeps the jail."""
    srv = verify.VerifyServer(True)
    try:
        cell, default = "import os\n" + SETTINGS, f"rss: {resource.RLIM_INFINITY}"
        assert _report_keyed(srv, cell.replace("PARENT", "False"), "rss:", A).endswith(default)
        first = srv._bound[A]
        assert srv.run(_job("x = 1"), timeout=120, key=A)[0] == 0 and srv._bound[A] is first  # the jail stays
        code, out, err = srv.run(_job(cell.replace("PARENT", "True")), timeout=120, key=A)
        assert code == 1 and out == b"", (code, err)  # no results for the run that changed its server
        assert _report_keyed(srv, cell.replace("PARENT", "False"), "rss:", A).endswith(default)  # not 123456789
        assert srv._bound[A] is not first
    finally:
        srv.stop()


# Job 2 of a student: count, in this process's own writable memory (inherited from the jail's server by fork),
# the copies of what an earlier run of the same jail was sent (e.g. a reference copy that this notebook withholds),
# beside a control never sent anywhere (the search itself leaves a few copies of each needle).
MEMORY_SCAN = """\
def count(needle):
    found = 0
    with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            if "rw" not in fields[1] or (len(fields) > 5 and not fields[5].startswith("[heap")):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            try:
                mem.seek(start)
                found += mem.read(end - start).count(needle)
            except (OSError, OverflowError, ValueError):
                pass
    return found
sent, control = count(bytes.fromhex("{sent}")), count(bytes.fromhex("{control}"))
raise RuntimeError(f"copies: {{sent - control}}")
"""


def _copies(server, marker: bytes, key: tuple[str, str], extra: dict[str, bytes] | None = None) -> int:
    import secrets

    control = marker[:20] + secrets.token_hex(16).encode()
    report = _report_keyed(server, MEMORY_SCAN.format(sent=marker.hex(), control=control.hex()), "copies:", key,
                           extra)
    return int(report.rsplit(" ", 1)[1])


def test_a_run_cannot_find_an_earlier_runs_files_in_its_memory():
    """One jail serves every notebook of one student, and notebooks hand it different reference copies: the jail's
    server never holds a run's bytes (each forked child reads its own), so a later run that searches the memory it
    inherited finds nothing of an earlier one."""
    import secrets

    srv = verify.VerifyServer(True)
    try:
        marker = b"gptedu-memory-probe-" + secrets.token_hex(16).encode()
        first = {**_job("x = 1"), "reference_copy/withheld.py": marker * 64}  # a withheld class's source (3 KB)
        code, _, err = srv.run(first, timeout=120, key=A)
        assert code == 0, err
        assert _copies(srv, marker, A) < 8  # none of the 64 copies the earlier run was sent
        # the search works: it finds the copies that its own run was sent
        own = b"gptedu-memory-probe-" + secrets.token_hex(16).encode()
        assert _copies(srv, own, A, {"mine.txt": own * 64}) >= 64
    finally:
        srv.stop()


WRITABLE = """\
import os
found = []
for root, dirs, files in os.walk("/"):
    if root.startswith(("/proc", "/sys")):
        dirs[:] = []
    elif os.access(root, os.W_OK):
        found.append(root)
        dirs[:] = []
raise RuntimeError("writable: " + " ".join(sorted(found)))
"""


def test_a_run_can_write_only_where_the_next_run_finds_nothing():
    """bwrap's root and /dev are writable tmpfs by default, which a run could use to leave files for the next run
    of the same jail (the next notebook of the student); the jail's writable places are /tmp and /dev/shm (emptied
    after every run) and /dev/pts (pseudo-terminals, gone with their process)."""
    srv = verify.VerifyServer(True)
    try:
        report = _report_keyed(srv, WRITABLE, "writable:", A)
        assert report.split("writable: ")[1].split() == ["/dev/pts", "/dev/shm", "/tmp"], report
    finally:
        srv.stop()


def _report_keyed(server, cell: str, prefix: str, key: tuple[str, str], extra: dict[str, bytes] | None = None) -> str:
    code, out, err = server.run({**_job(cell), **(extra or {})}, timeout=120, key=key)
    assert code == 0, err
    (report,) = [e for e in _cell_errors(out) if prefix in e]
    return report


def test_the_pipeline_verifies_beside_the_kernel(monkeypatch):
    """One pipeline: the verification starts while the kernel runs, and a finished kernel gets 1 s to shut down."""
    from traitlets.config import Config

    from gptedu.grading.sandbox_nbgrader import SandboxExecute, configure_nbgrader

    monkeypatch.setattr(sandbox, "problems", lambda: [])
    monkeypatch.setattr(sandbox, "kernelspec_problems", lambda: [])
    c = Config()
    configure_nbgrader(c)
    assert c.Autograde.autograde_preprocessors[:3] == [verify.StartVerification, SandboxExecute, verify.VerifyAnswers]
    assert c.KernelManager.shutdown_wait_time == 1.0


def test_the_nbgrader_glue_loads_without_torch():
    """nbgrader loads the course configuration for every command: it must not pay for importing torch."""
    code = ("import sys\nimport gptedu.grading.sandbox_nbgrader, gptedu.grading.verify\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "from gptedu import Head\nassert 'torch' in sys.modules and Head.__module__ == 'gptedu.char.attention'\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr


ORPHAN_PARENT = r"""
import io, json, os, signal, sys, torch
from gptedu.grading import verify_runner
cases = io.BytesIO(); torch.save({}, cases)
prelude = "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True: pass  # gptedu-orphan-probe"
files = {"job.json": json.dumps({"prelude": prelude, "cells": [], "specs": []}).encode(),
         "cases.pt": cases.getvalue(), "grading_runner.py": b""}
data = verify_runner.pack_files(files)  # the child reads the run from standard input
read, write = os.pipe(); os.write(write, data); os.dup2(read, 0)
verify_runner._run_forked(len(data), jailed=False)
"""


def test_an_unjailed_run_never_outlives_its_runner(tmp_path):
    """Unjailed (GPTEDU_UNSANDBOXED=1, or a runner killed by its grader) nothing ends an orphaned run but the run
    itself: a spinning run whose runner is killed must end within seconds (a leaked one spun on through a whole
    suite)."""
    import os
    import signal

    parent = subprocess.Popen([sys.executable, "-c", ORPHAN_PARENT], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not _probe_pids() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _probe_pids(), "the run never started"
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 20
    while _probe_pids() and time.monotonic() < deadline:
        time.sleep(0.5)
    left = _probe_pids()
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "the run outlived its runner"


def _probe_pids() -> list[int]:
    """Processes whose job folder holds the probe's job (the forked run keeps the runner's command line)."""
    import os

    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
            job = Path(cwd) / "job.json"
            if "gptedu-orphan-probe" in job.read_text():
                found.append(int(entry))
        except OSError:
            continue
    return found
