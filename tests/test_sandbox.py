"""The grading sandbox, tested from inside submissions graded by the real nbgrader (shared ``class_batch``).

From an answer cell: reading ``source/``, the gradebook or another student's work fails, writing into the course
fails, the network is unreachable, root cannot be regained; a memory bomb is stopped by the memory limit and a fork
bomb by the process limit, with a defined grade and no effect on the others. Plus the jail on its own and the
fallback warning where the sandbox cannot run.
"""

from __future__ import annotations

import json
import subprocess
import sys

import class_batch as cb
import course_kit as kit
import pytest

needs_root = pytest.mark.skipif(not kit.sandbox_possible(),
                                reason="the grading sandbox needs root on Linux, with namespaces")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    return cb.graded_class(tmp_path_factory)


@pytest.fixture(scope="module")
def probe(graded):
    line = next(x for x in cb.stream_text(graded["course"], "prober").splitlines() if x.startswith("PROBE"))
    return json.loads(line[len("PROBE"):])


@pytest.mark.slow
@needs_root
@pytest.mark.parametrize("action", ["read_source", "read_gradebook", "read_other_submission",
                                    "read_other_autograded", "write_course", "write_up_from_cwd", "network_tcp",
                                    "network_dns", "become_root"])
def test_submission_cannot_reach_outside_its_sandbox(probe, action):
    assert probe[action] != "ALLOWED", probe


@pytest.mark.slow
@needs_root
def test_submission_sees_no_course_files_and_no_home(probe):
    assert probe["list_course"] == ["autograded"]  # just the path down to its own (copied) folder
    assert set(probe["list_root_home"]) <= {".pyenv"}  # only the Python installation, if it lives there


@pytest.mark.slow
@needs_root
def test_submission_runs_unprivileged_in_a_private_copy_of_its_folder(graded, probe):
    assert probe["uid"] != 0
    assert probe["write_own_folder"] == "ALLOWED"  # a scratch copy: writes vanish with the kernel
    course = graded["course"]
    assert not (course / "hacked.txt").exists()
    assert not (course / "autograded" / "prober" / kit.ASSIGNMENT / "scratch.txt").exists()
    assert cb.total(graded["scores"]["prober"]) == 20


@pytest.mark.slow
@needs_root
def test_memory_bomb_is_stopped_with_a_defined_grade(graded):
    assert cb.total(graded["scores"]["memory_bomb"]) == 0
    assert "MemoryError" in cb.all_outputs(graded["course"], "memory_bomb")


@pytest.mark.slow
@needs_root
def test_fork_bomb_is_capped_and_cleaned_up(graded):
    line = next(x for x in cb.stream_text(graded["course"], "fork_bomb").splitlines() if x.startswith("FORKED"))
    forked = int(line.split()[1])
    assert 0 < forked < 64  # RLIMIT_NPROC of the grading user (installed with --nproc 64 for the tests)
    assert graded["scores"]["fork_bomb"] is not None
    # every process it started died with its kernel: none of the grading user's processes is left
    left = subprocess.run(["pgrep", "-u", "gptedu-grader"], capture_output=True, text=True).stdout.split()
    assert left == []
    # and the students graded after it were not affected
    assert cb.total(graded["scores"]["perfect"]) == 20


@needs_root
def test_jail_hides_the_reference_package_and_the_network(tmp_path):
    env = kit.sandbox_env(tmp_path)
    code = ("import os, socket\n"
            "try:\n    import gptedu\n    print('REFERENCE VISIBLE')\nexcept ImportError:\n    print('no reference')\n"
            "try:\n    socket.create_connection(('1.1.1.1', 443), timeout=2)\n    print('NETWORK')\n"
            "except OSError:\n    print('no network')\n"
            "print('uid', os.getuid(), 'pid', os.getpid())\n")
    res = subprocess.run([sys.executable, "-m", "gptedu.grading.sandbox", "exec", "--no-reference", "--workdir",
                          str(tmp_path), "--", "python", "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert "no reference" in res.stdout and "no network" in res.stdout
    assert "uid 0" not in res.stdout and "pid 1" in res.stdout  # its own process namespace


def test_fallback_warns_and_uses_the_normal_kernel(monkeypatch, capsys):
    from traitlets.config import Config

    from gptedu.grading import sandbox
    from gptedu.grading.sandbox_nbgrader import configure_nbgrader

    monkeypatch.delenv("GPTEDU_REQUIRE_SANDBOX", raising=False)
    monkeypatch.delenv("GPTEDU_NO_SANDBOX", raising=False)
    monkeypatch.setattr(sandbox, "problems", lambda: ["nbgrader is not running as root"])
    c = Config()
    assert configure_nbgrader(c) is False
    err = capsys.readouterr().err
    assert "WARNING" in err and "NOT used" in err and "not running as root" in err
    assert "kernel_name" not in c.ExecutePreprocessor
    with pytest.raises(RuntimeError, match="not running as root"):
        configure_nbgrader(Config(), require=True)


def test_problems_names_the_missing_setup(tmp_path):
    from gptedu.grading import sandbox

    found = sandbox.problems(settings_path=tmp_path / "nowhere.json")
    assert any("install" in reason for reason in found)
