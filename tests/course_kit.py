"""A tiny nbgrader course for the grading-loop tests: one notebook (the course's ``03_single_head``, ``Head``).

Built in a temporary folder: ``nbgrader_config.py`` (the real ``configure_nbgrader`` with short time limits), the
source notebook, ``generate_assignment``; then submissions are written into ``submitted/`` and the real nbgrader
CLI grades them. The sandbox kernelspec is installed into a private ``JUPYTER_PATH`` (``sandbox_env``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENT = "ps1"
NOTEBOOK = "03_single_head"
SOURCE = REPO / "autograder" / "source" / "gpt_from_scratch" / f"{NOTEBOOK}.ipynb"
ANSWER_ID = "head_solution"
# the course's setup cell without its Colab install and plotting imports (they only cost time in these tests)
SETUP = "import math\nimport os\n\nimport torch\nfrom torch import nn\n\ntorch.set_num_threads(1)\ntorch.manual_seed(0)"

def strip_markers(source: str) -> str:
    lines = source.splitlines(keepends=True)
    return "".join(line for line in lines if "### BEGIN" not in line and "### END" not in line)

CONFIG = '''\
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "gptedu-test"
c.CourseDirectory.db_url = "sqlite:///{db}"
from gptedu.grading.intake import configure_intake  # noqa: E402
configure_intake(c)
from gptedu.grading.sandbox_nbgrader import configure_nbgrader  # noqa: E402
configure_nbgrader(c, notebook_timeout={notebook_timeout}, cell_timeout={cell_timeout}, iopub_timeout=5)
c.VerifyAnswers.timeout = 60
'''


def _meta(grade_id: str, *, solution=False, grade=False, locked=False, points=0) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution,
            "task": False}
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def source_notebook() -> nbformat.NotebookNode:
    """The course's ``03_single_head`` source (setup, answer and test cells), plus a free-text question (2 points,
    graded by hand)."""
    nb = nbformat.read(SOURCE, as_version=4)
    # keep the setup cell, the answer and the test cells; the demos and plots only cost time here
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells = [c for i, c in enumerate(nb.cells) if i == first_code or "nbgrader" in c.metadata]
    nb.cells[0].source = SETUP
    nb.cells.append(nbformat.v4.new_markdown_cell("Why must the mask be applied before the softmax?"))
    nb.cells.append(nbformat.v4.new_markdown_cell("YOUR ANSWER HERE",
                                                  metadata=_meta("explain_mask", solution=True, grade=True, points=2)))
    return nb


def head_solution() -> str:
    """The instructor's ``Head`` with the solution markers removed (what a perfect student hands in)."""
    nb = nbformat.read(SOURCE, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == ANSWER_ID)
    return strip_markers(cell.source)


def nbgrader(course: Path, *args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the real nbgrader CLI in the course folder; ``autograde`` in a course with gptedu's intake goes through
    ``python -m gptedu.grading.autograde_class`` (the course refuses plain ``nbgrader autograde``)."""
    if args[:1] == ("autograde",) and "configure_intake" in (course / "nbgrader_config.py").read_text():
        own, extra, rest = [], [], list(args[2:])
        while rest:
            arg = rest.pop(0)
            if arg == "--force":
                own.append(arg)
            elif arg.startswith("--student="):
                own += ["--student", arg.split("=", 1)[1]]
            elif arg == "--student":
                own += ["--student", rest.pop(0)]
            else:
                extra.append(arg)
        return subprocess.run([sys.executable, "-m", "gptedu.grading.autograde_class", args[1], *own, "--", *extra],
                              cwd=course, env=env, capture_output=True, text=True, timeout=timeout)
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True,
                          text=True, timeout=timeout)


def autograde(course: Path, *args: str, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """``python -m gptedu.grading.autograde_class ps <args>`` in the course folder (intake, then nbgrader)."""
    return subprocess.run([sys.executable, "-m", "gptedu.grading.autograde_class", ASSIGNMENT, *args], cwd=course,
                          env=env, capture_output=True, text=True, timeout=timeout)


def make_course(root: Path, env: dict, notebook_timeout: int = 120, cell_timeout: int = 20) -> Path:
    course = root / "course"
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(CONFIG.format(db=course / "gradebook.db",
                                                             notebook_timeout=notebook_timeout,
                                                             cell_timeout=cell_timeout))
    nbformat.write(source_notebook(), course / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    from gptedu.grading import secret

    secret.init(course)  # the hidden cases derive from it; autograde refuses without one
    res = nbgrader(course, "generate_assignment", ASSIGNMENT, "--force", env=env)
    assert res.returncode == 0, res.stderr
    return course


def release_notebook(course: Path) -> nbformat.NotebookNode:
    return nbformat.read(course / "release" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)


def answer_index(nb) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == ANSWER_ID)


def submit(course: Path, student: str, nb=None, answer: str | None = None, raw: str | None = None,
           extra_files: dict[str, str] | None = None) -> Path:
    """Write ``submitted/<student>/ps1/03_single_head.ipynb``: the release with ``answer`` in the answer cell,
    or the notebook ``nb``, or the raw text ``raw`` (e.g. invalid JSON)."""
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "timestamp.txt").write_text("2026-01-30 10:00:00.000000 UTC")
    path = folder / f"{NOTEBOOK}.ipynb"
    for name, text in (extra_files or {}).items():
        (folder / name).write_text(text)
    if raw is not None:
        path.write_text(raw)
        return path
    if nb is None:
        nb = release_notebook(course)
        if answer is not None:
            nb.cells[answer_index(nb)].source = answer
    nbformat.write(nb, path)
    return path


def cell_scores(course: Path, student: str) -> dict[str, float | None]:
    """grade id -> score of the student's notebook, from the gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook(NOTEBOOK, ASSIGNMENT, student)
        return {g.name: g.score for g in nb.grades}


def outputs_of(course: Path, student: str, grade_id: str) -> str:
    nb = nbformat.read(course / "autograded" / student / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    return json.dumps(cell.get("outputs", []))


def sandbox_possible() -> bool:
    """bubblewrap runs here (``python -m gptedu.grading.sandbox check``); no root needed."""
    if os.environ.get("CI"):  # CI must exercise the sandbox: a machine that cannot run it fails, never skips
        return True
    from gptedu.grading import sandbox

    return not sandbox.problems()


def sandbox_env(tmp: Path) -> dict:
    """Environment with the sandbox kernelspec installed in a private JUPYTER_PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # nbgrader runs `alembic`
    data = tmp / "jupyter"
    # small limits keep the memory and fork bombs of the tests light on a shared machine
    res = subprocess.run([sys.executable, "-m", "gptedu.grading.sandbox", "install", "--kernels-dir",
                          str(data / "kernels"), "--memory-mb", "1536", "--nproc", "64"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    env["JUPYTER_PATH"] = str(data)
    env["GPTEDU_REQUIRE_SANDBOX"] = "1"
    env.pop("GPTEDU_UNSANDBOXED", None)
    return env
