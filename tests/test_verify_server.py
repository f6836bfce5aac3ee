"""The verification server (one per grading process, a fresh fork -- and jail -- per job) keeps jobs apart.

Whatever one job does (monkeypatching torch, planting files in its folder or in /tmp, leaving a process behind),
the next job -- another notebook, or another student -- starts from the server's clean state; a job that never
ends is killed at its time limit and the server goes on. Run unsandboxed (state only) and, as root with
namespaces, jailed (state and files), which is how a class is graded.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import course_kit as kit
import pytest
import torch

from gptedu.grading import runner, verify
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


@pytest.fixture(scope="module", params=["unsandboxed", "jailed"])
def server(request, tmp_path_factory):
    if request.param == "jailed":
        if not kit.sandbox_possible():
            pytest.skip("the grading sandbox needs root on Linux, with namespaces")
        kernels = tmp_path_factory.mktemp("jupyter") / "kernels"
        res = subprocess.run([sys.executable, "-m", "gptedu.grading.sandbox", "install", "--kernels-dir",
                              str(kernels), "--memory-mb", "3072", "--nproc", "64"],
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stdout + res.stderr
        srv = verify.VerifyServer(True, str(kernels / "gptedu-sandbox" / "sandbox.json"))
    else:
        srv = verify.VerifyServer(False)
    srv.jailed_mode = request.param
    yield srv
    srv.stop()
    Path("/tmp/gptedu-planted-by-job-1").unlink(missing_ok=True)  # unsandboxed, job 1 wrote the real /tmp


def test_a_job_cannot_leave_anything_for_the_next(server):
    start = time.monotonic()
    code, out, err = server.run(_job(TAMPER), timeout=60)
    assert code == 0, err
    assert any("job 1 done" in e for e in _cell_errors(out)), err
    # the process job 1 left behind is killed; its open output gets a short grace, not the whole time limit
    assert time.monotonic() - start < 30
    code, out, err = server.run(_job(INSPECT), timeout=60)
    assert code == 0, err
    (report,) = [e for e in _cell_errors(out) if "seen:" in e]
    if server.jailed_mode == "jailed":
        assert report.endswith("seen: nothing"), report
    else:  # no jail: a fresh process per job, but the machine's /tmp and HOME are shared
        assert "torch.allclose patched" not in report and "module state" not in report, report
        assert "file in the job folder" not in report, report


def test_a_job_that_never_ends_is_stopped_and_the_server_goes_on(server):
    start = time.monotonic()
    code, out, err = server.run(_job(HANG), timeout=3)
    assert code is None  # what run_in_sandbox reports as "did not finish within ..."
    assert time.monotonic() - start < 20
    code, out, err = server.run(_job(INSPECT), timeout=60)
    assert code == 0, err
    assert any("seen:" in e for e in _cell_errors(out))


def test_baseline_switches_every_speed_up_off(monkeypatch):
    """``GPTEDU_GRADING_BASELINE=1`` (what ``bench_autograde.py --baseline`` compares with) is the original pipeline."""
    from traitlets.config import Config

    from gptedu.grading import sandbox
    from gptedu.grading.sandbox_nbgrader import SandboxExecute, configure_nbgrader

    monkeypatch.setattr(sandbox, "problems", lambda: ["test"])
    fast, base = Config(), Config()
    configure_nbgrader(fast, baseline=False)
    configure_nbgrader(base, baseline=True)
    assert fast.Autograde.autograde_preprocessors[:3] == [verify.StartVerification, SandboxExecute,
                                                          verify.VerifyAnswers]
    assert base.Autograde.autograde_preprocessors[:2] == [SandboxExecute, verify.VerifyAnswers]
    assert (fast.VerifyAnswers.reuse_process, base.VerifyAnswers.reuse_process) == (True, False)
    assert (fast.SandboxExecute.prestart_kernel, base.SandboxExecute.prestart_kernel) == (True, False)
    assert fast.KernelManager.shutdown_wait_time == 1.0 and "shutdown_wait_time" not in base.KernelManager


def test_the_nbgrader_glue_loads_without_torch():
    """nbgrader loads the course configuration for every command: it must not pay for importing torch."""
    code = ("import sys\nimport gptedu.grading.sandbox_nbgrader, gptedu.grading.verify\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "from gptedu import Head\nassert 'torch' in sys.modules and Head.__module__ == 'gptedu.char.attention'\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
