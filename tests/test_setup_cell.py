"""The notebooks' setup cell installs something that exists and is enough (issue 13, finding 7).

In a fresh virtual environment that has only torch (the pinned CPU wheel; a student's Colab or laptop has one), the
first code cell of the released notebook 03, run from a notebook folder inside a copy of the repository, installs
``gptedu[plots]`` (the package and matplotlib; not the GPT-2 extra, not the course tools), and the notebook's
self-check then passes with the solution filled in. Outside any checkout, with neither ``$GPTEDU_PIP`` nor
``build.COURSE_REPO``, the cell stops with a message that says what to set instead of installing from a made-up
address.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from gptedu.grading import build

ROOT = build.REPO_ROOT
NOTEBOOK = "03_single_head.ipynb"


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "GPTEDU_PIP")}
    # PIP_NO_COMPILE: no byte-compiling of every installed file (most of an install's time for torch)
    env.update(MPLBACKEND="Agg", GPTEDU_QUICK="1", OMP_NUM_THREADS="1", PIP_NO_COMPILE="1", **extra)
    return env


def _cells() -> tuple[str, str]:
    """(setup cell, the solution cells and the first self-check of the release filled with the solution)."""
    sources = build.source_notebooks(ROOT, "gpt_from_scratch")
    release = nbformat.read(ROOT / "notebooks" / NOTEBOOK, as_version=4)
    filled = build.fill_with_solutions(release, sources[NOTEBOOK])
    setup = next(c.source for c in filled.cells if c.cell_type == "code")
    solutions = [c.source for c in filled.cells if c.metadata.get("nbgrader", {}).get("solution")]
    check = next(c.source for c in filled.cells if c.metadata.get("nbgrader", {}).get("grade"))
    return setup, "\n\n".join([*solutions, check])


def run_setup_then_check(setup: str, exercise: str, python: Path, cwd: Path) -> subprocess.CompletedProcess:
    code = setup + "\n\nimport gptedu\nprint('gptedu from', gptedu.__file__)\n\n" + exercise
    return subprocess.run([str(python), "-c", code], cwd=cwd, env=_clean_env(), capture_output=True, text=True,
                          timeout=900)


def _pip(python: Path, *args: str) -> None:
    proc = subprocess.run([str(python), "-m", "pip", "install", "-q", *args], env=_clean_env(),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
def test_setup_cell_installs_enough_for_a_part1_check(tmp_path):
    setup, exercise = _cells()
    assert "github.com/gptedu/gptedu" not in setup, "the setup cell must not install from a placeholder address"

    # a copy of the checkout, with the student's notebook folder inside it
    checkout = tmp_path / "gptedu-course"
    shutil.copytree(ROOT / "gptedu", checkout / "gptedu", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, checkout / name)
    (checkout / "notebooks").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    try:
        _check_in_fresh_venv(venv, setup, exercise, checkout, elsewhere)
    finally:
        shutil.rmtree(venv, ignore_errors=True)  # ~1.5 GB with torch


def _check_in_fresh_venv(venv: Path, setup: str, exercise: str, checkout: Path, elsewhere: Path) -> None:
    python = venv / "bin" / "python"
    _pip(python, "torch==2.13.0")

    # outside a checkout, nothing configured: a clear stop, nothing installed
    lost = run_setup_then_check(setup, exercise, python, elsewhere)
    assert lost.returncode != 0 and "set GPTEDU_PIP" in lost.stderr, lost.stderr[-2000:]
    assert "RuntimeError: gptedu is missing and this notebook is not in a gptedu checkout" in lost.stderr

    # inside the checkout: the cell installs it, and the self-check passes
    proc = run_setup_then_check(setup, exercise, python, checkout / "notebooks")
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    assert f"gptedu from {venv}" in proc.stdout, proc.stdout[-2000:]
    assert "✓" in proc.stdout and "✗" not in proc.stdout, proc.stdout[-3000:]
    freeze = subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True, text=True,
                            env=_clean_env()).stdout.lower()
    for optional in ("regex", "tiktoken", "safetensors", "nbgrader", "jupyter"):
        assert optional not in freeze, f"{optional} is installed: the check must work without it"


def test_course_repo_is_written_into_every_setup_cell():
    """The course's repository is set in one place (``build.COURSE_REPO``) and lands in every setup cell."""
    for assignment in ("gpt_from_scratch", "gpt2"):
        for name, nb in build.source_notebooks(ROOT, assignment).items():
            setup = next(c for c in nb.cells if c.cell_type == "code").source
            assert f"GPTEDU_REPO = {build.COURSE_REPO!r}" in setup, name
            assert "github.com/gptedu/gptedu" not in setup, name
            package = "gptedu[plots,gpt2]" if assignment == "gpt2" else "gptedu[plots]"
            assert f'f"{package} @ {{where}}"' in setup, name
            forked = build.with_course_repo(nb, "git+https://example.org/course/gptedu.git@v1")
            setup = next(c for c in forked.cells if c.cell_type == "code").source
            assert "GPTEDU_REPO = 'git+https://example.org/course/gptedu.git@v1'  # set by" in setup, name
    broken = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import torch")])
    with pytest.raises(build.SourceError, match="GPTEDU_REPO = None"):
        build.with_course_repo(broken)
