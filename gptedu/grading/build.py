"""Regenerate the course from its text sources, ``autograder/src/<assignment>/NN_name.py`` (jupytext percent
format; each ``# %%`` header carries the cell's id and nbgrader metadata: ``autograder/README.md``, "Authoring"):

    python -m gptedu.grading.build                # every assignment; executes the solutions (training in full)
    python -m gptedu.grading.build --quick        # solutions executed with GPTEDU_QUICK=1 (short training)
    python -m gptedu.grading.build --no-execute   # sources only (fast); outputs kept where no code cell changed
    python -m gptedu.grading.build --check        # exit 1 if a generated copy is stale (sources, not outputs)
    python -m gptedu.grading.build --format-sources   # rewrite autograder/src in jupytext's canonical layout

It writes ``autograder/source/<assignment>/*.ipynb`` (nbgrader's instructor notebooks), ``notebooks/`` (the release,
from the real ``nbgrader generate_assignment``) and ``solutions/`` (markers, hidden tests and nbgrader metadata
removed, executed so outputs show on GitHub). A cell with nbgrader metadata must carry an id (grading restores a
stripped cell's metadata by id); another cell gets ``auto-<index>``.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import nbformat

from gptedu.grading.intake import nbgrader_env

REPO_ROOT = Path(__file__).resolve().parents[2]
_MARKER_LINE = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.MULTILINE)
_HIDDEN_BLOCK = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS[ \t]*\n?", re.MULTILINE | re.DOTALL)


def course_dir(root: Path = REPO_ROOT) -> Path:
    return root / "autograder"


# Where the setup cell installs gptedu from outside a checkout (a pip location such as
# "git+https://github.com/<your-course>/gptedu.git@v1"); None: the notebook asks for $GPTEDU_PIP. A course sets it
# once and runs the build, which writes the line `GPTEDU_REPO = ...` of every setup cell (autograder/README.md).
COURSE_REPO: str | None = None
_REPO_LINE = re.compile(r"^GPTEDU_REPO = .*$", re.MULTILINE)

NOTEBOOK_METADATA = {
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}
# What jupytext writes: no YAML header, and of the cell metadata only the id and nbgrader's.
_JUPYTEXT_OPTIONS = {"notebook_metadata_filter": "-all", "cell_metadata_filter": "id,nbgrader"}


def sources_dir(root: Path = REPO_ROOT) -> Path:
    """The text sources: ``autograder/src/<assignment>/NN_name.py`` (jupytext percent format)."""
    return course_dir(root) / "src"


def assignments(root: Path = REPO_ROOT) -> list[str]:
    folder = sources_dir(root)
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and any(p.glob("*.py"))) if folder.is_dir() else []


# What jupytext records about a text's layout (blank lines between cells): not part of the notebook;
# `--format-sources` rewrites the text in jupytext's canonical layout.
_JUPYTEXT_LAYOUT = {"lines_to_next_cell", "lines_to_end_of_cell_marker"}


class SourceError(ValueError):
    """A text source that cannot become a notebook (the message names the file and the cell)."""


def read_source(path: Path) -> nbformat.NotebookNode:
    """The instructor notebook of one percent-format source: cell ids and nbgrader metadata from the cell headers,
    no outputs, the fixed notebook metadata."""
    import jupytext

    nb = jupytext.reads(path.read_text(encoding="utf-8"), fmt="py:percent")
    out = nbformat.v4.new_notebook(metadata=copy.deepcopy(NOTEBOOK_METADATA))
    seen: set[str] = set()
    for index, cell in enumerate(nb.cells):
        meta = {k: v for k, v in cell.metadata.items() if k not in _JUPYTEXT_LAYOUT}
        cell_id = meta.pop("id", None)
        unknown = set(meta) - {"nbgrader"}
        if unknown:
            raise SourceError(f"{path}: cell {index} has metadata {sorted(unknown)} in its `# %%` line; "
                              "only id=... and nbgrader={...} are kept")
        if cell_id is None:
            if "nbgrader" in meta:
                raise SourceError(f"{path}: cell {index} ({meta['nbgrader'].get('grade_id')}) has nbgrader metadata "
                                  'but no id: add id="..." (unique in the notebook) to its `# %%` line; grading '
                                  "finds a cell's metadata by its id")
            cell_id = f"auto-{index:02d}"
        if cell_id in seen:
            raise SourceError(f"{path}: cell {index} repeats the id {cell_id!r}; ids must be unique in a notebook")
        seen.add(cell_id)
        new_cell = {"markdown": nbformat.v4.new_markdown_cell, "code": nbformat.v4.new_code_cell}.get(
            cell.cell_type, nbformat.v4.new_raw_cell)
        new = new_cell(cell.source, metadata=meta)
        new.id = cell_id
        out.cells.append(new)
    return out


def write_source(nb: nbformat.NotebookNode) -> str:
    """The percent-format text of an instructor notebook (the inverse of ``read_source``)."""
    import jupytext

    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        meta = {"id": cell.id} if cell.get("id") and not cell.id.startswith("auto-") else {}
        meta.update(cell.metadata)
        cell.metadata = meta
    nb.metadata = {"jupytext": dict(_JUPYTEXT_OPTIONS)}
    return jupytext.writes(nb, fmt="py:percent")


def copy_course(root: Path, dest: Path, assignment_names: list[str] | None = None) -> Path:
    """A fresh course in ``dest`` (no gradebook): ``nbgrader_config.py``, and ``source/<assignment>`` with the
    notebooks generated from the text sources (so a stale committed ``.ipynb`` never leaks into a release) and any
    other files of the committed ``source/<assignment>``."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(course_dir(root) / "nbgrader_config.py", dest / "nbgrader_config.py")
    for name in assignment_names or assignments(root):
        committed = course_dir(root) / "source" / name
        target = dest / "source" / name
        if committed.is_dir():
            shutil.copytree(committed, target,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pt", "*.ipynb"))
        target.mkdir(parents=True, exist_ok=True)
        for file_name, nb in source_notebooks(root, name).items():
            nbformat.write(nb, target / file_name)
    return dest


def run_nbgrader(course: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``nbgrader <args>`` with the course as working directory (so its config is read)."""
    if args[0] == "autograde":  # through gptedu's intake (the course configuration refuses plain nbgrader autograde)
        command = [sys.executable, "-m", "gptedu.grading.autograde_class"]
    else:  # the nbgrader CLI of this interpreter's environment
        script = Path(sys.executable).with_name("nbgrader")
        command = [str(script), args[0]] if script.exists() else [sys.executable, "-m", "nbgrader", args[0]]
    proc = subprocess.run([*command, *args[1:]], cwd=course, capture_output=True, text=True,
                          env=nbgrader_env())
    if check and proc.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


def generate_release(course: Path, assignment: str) -> dict[str, nbformat.NotebookNode]:
    """``nbgrader generate_assignment --force`` in ``course``; returns the released notebooks by file name."""
    run_nbgrader(course, "generate_assignment", assignment, "--force")
    release = course / "release" / assignment
    return {p.name: without_outputs(nbformat.read(p, as_version=4)) for p in sorted(release.glob("*.ipynb"))}


def without_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` with the outputs and execution counts of its code cells cleared (in place)."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


def solution_notebook(source_nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The instructor source turned into a public solution: no markers, no hidden tests, no nbgrader metadata."""
    nb = copy.deepcopy(source_nb)
    for cell in nb.cells:
        cell.source = _MARKER_LINE.sub("", _HIDDEN_BLOCK.sub("", cell.source)).rstrip("\n")
        cell.metadata.pop("nbgrader", None)
    return without_outputs(nb)


def execute(nb: nbformat.NotebookNode, workdir: Path, quick: bool, timeout: int = 1200) -> float:
    """Execute ``nb`` in place with ``workdir`` as cwd; returns the wall time in seconds."""
    from nbclient import NotebookClient

    with mock.patch.dict(os.environ):  # the kernel inherits the environment; restored afterwards
        os.environ.pop("GPTEDU_QUICK", None)
        if quick:
            os.environ["GPTEDU_QUICK"] = "1"
        start = time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(workdir)}}).execute()
        return time.perf_counter() - start


def with_course_repo(nb: nbformat.NotebookNode, repo: str | None = None) -> nbformat.NotebookNode:
    """``nb`` with the ``GPTEDU_REPO = ...`` line of its setup cell (the first code cell) set to ``repo``
    (default ``COURSE_REPO``); raises ``SourceError`` when the setup cell has no such line."""
    repo = COURSE_REPO if repo is None else repo
    setup = next((c for c in nb.cells if c.cell_type == "code"), None)
    if setup is None or not _REPO_LINE.search(setup.source):
        raise SourceError("the first code cell must be the setup cell, with a line `GPTEDU_REPO = None` "
                          "(copy it from another notebook of the series)")
    line = f"GPTEDU_REPO = {repo!r}  # set by the course build (gptedu.grading.build.COURSE_REPO)"
    setup.source = _REPO_LINE.sub(lambda _: line, setup.source, count=1)
    return nb


def source_notebooks(root: Path, assignment: str) -> dict[str, nbformat.NotebookNode]:
    """The instructor notebooks of ``assignment`` by file name (``01_data.ipynb``), read from the text sources,
    with the course's repository written into the setup cell."""
    folder = sources_dir(root) / assignment
    notebooks = {}
    for path in sorted(folder.glob("[0-9]*.py")):
        nb = read_source(path)  # its errors name the file
        try:
            notebooks[path.with_suffix(".ipynb").name] = with_course_repo(nb)
        except SourceError as err:
            raise SourceError(f"{path}: {err}") from None
    return notebooks


def format_sources(root: Path = REPO_ROOT, log=print) -> list[Path]:
    """Rewrite each text source in jupytext's canonical form (what a test expects); returns the files changed."""
    changed = []
    for assignment in assignments(root):
        for path in sorted((sources_dir(root) / assignment).glob("[0-9]*.py")):
            text = write_source(read_source(path))
            if text != path.read_text(encoding="utf-8"):
                path.write_text(text, encoding="utf-8")
                changed.append(path)
                log(f"formatted {path.relative_to(root)}")
    return changed


def write_instructor_notebooks(root: Path, log=print) -> None:
    """``autograder/source/<assignment>/*.ipynb`` from the text sources; a notebook without a source is removed."""
    for assignment in assignments(root):
        folder = course_dir(root) / "source" / assignment
        folder.mkdir(parents=True, exist_ok=True)
        notebooks = source_notebooks(root, assignment)
        for name, nb in notebooks.items():
            nbformat.write(nb, folder / name)
            log(f"autograder/source/{assignment}/{name}")
        for old in folder.glob("*.ipynb"):
            if old.name not in notebooks:
                old.unlink()
                log(f"removed autograder/source/{assignment}/{old.name} (no source)")


def build(root: Path = REPO_ROOT, execute_solutions: bool = True, quick: bool = False,
          only: list[str] | None = None, log=print) -> dict[str, float]:
    """Write ``notebooks/`` and ``solutions/``; returns each solution's execution time (empty without execution)."""
    times: dict[str, float] = {}
    write_instructor_notebooks(root, log)
    (root / "notebooks").mkdir(exist_ok=True)
    (root / "solutions").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gptedu-build-") as tmp:
        course = copy_course(root, Path(tmp) / "course")
        for assignment in assignments(root):
            for name, nb in generate_release(course, assignment).items():
                nbformat.write(nb, root / "notebooks" / name)
                log(f"notebooks/{name}")
            for name, nb in source_notebooks(root, assignment).items():
                sol = solution_notebook(nb)
                if execute_solutions and (only is None or any(name.startswith(o) for o in only)):
                    times[name] = execute(sol, root / "solutions", quick)
                    log(f"solutions/{name} executed in {times[name]:.1f} s")
                elif (root / "solutions" / name).exists():
                    sol = with_committed_outputs(sol, nbformat.read(root / "solutions" / name, as_version=4))
                nbformat.write(sol, root / "solutions" / name)
    return times


def with_committed_outputs(sol: nbformat.NotebookNode, committed: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``sol`` with the outputs of ``committed`` (an executed copy) while the code that runs is unchanged: edits to
    markdown or to the setup cell's install block (never run by the build) keep them; any other code change drops
    them (run the build with execution)."""
    if [(c.cell_type, c.source) for c in sol.cells] == [(c.cell_type, c.source) for c in committed.cells]:
        return committed
    if _code_that_runs(sol) != _code_that_runs(committed):
        return sol
    sol = copy.deepcopy(sol)
    old_code = [c for c in committed.cells if c.cell_type == "code"]
    for new_cell, old_cell in zip((c for c in sol.cells if c.cell_type == "code"), old_code, strict=True):
        new_cell.outputs, new_cell.execution_count = old_cell.outputs, old_cell.execution_count
        if "execution" in old_cell.metadata:  # nbclient's timestamps of that run
            new_cell.metadata["execution"] = old_cell.metadata["execution"]
    sol.metadata = committed.metadata
    return sol


_INSTALL_BLOCK = re.compile(r"\A.*?\"pip\", \"install\".*?\n", re.DOTALL)


def _code_that_runs(nb: nbformat.NotebookNode) -> list[str]:
    """The code cells' sources, the setup cell's install block (it only runs where gptedu is missing) left out."""
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    return [_INSTALL_BLOCK.sub("", sources[0], count=1), *sources[1:]] if sources else []


def _differences(folder: Path, label: str, expected: dict[str, nbformat.NotebookNode], source: str,
                 key: Callable = lambda nb: nb) -> list[str]:
    """How the notebooks in ``folder`` differ from ``expected`` (file name -> notebook, compared by ``key``)."""
    committed = {p.name for p in folder.glob("*.ipynb")}
    return ([f"{label}/{name} is missing" for name in sorted(set(expected) - committed)]
            + [f"{label}/{name} has no {source} any more" for name in sorted(committed - set(expected))]
            + [f"{label}/{name} differs from its {source}" for name in sorted(set(expected) & committed)
               if key(nbformat.read(folder / name, as_version=4)) != key(expected[name])])


def stale_instructor_notebooks(root: Path = REPO_ROOT) -> list[str]:
    """``autograder/source/<assignment>/*.ipynb`` that differ from their text source (cells, ids, metadata)."""
    return [problem for a in assignments(root) for problem in _differences(
        course_dir(root) / "source" / a, f"autograder/source/{a}", source_notebooks(root, a),
        f"text source in autograder/src/{a}")]


def stale_copies(root: Path = REPO_ROOT, releases: dict[str, dict] | None = None) -> list[str]:
    """Generated copies that differ from what the build would write now: ``autograder/source`` (whole notebooks),
    ``notebooks/`` and ``solutions/`` (cell types and sources, not outputs). ``releases`` (assignment -> {file
    name: notebook}) may pass releases already generated from the current sources, to save nbgrader runs."""
    problems = stale_instructor_notebooks(root)
    expected: dict[str, dict[str, nbformat.NotebookNode]] = {"notebooks": {}, "solutions": {}}
    with tempfile.TemporaryDirectory(prefix="gptedu-check-") as tmp:
        course = copy_course(root, Path(tmp) / "course")
        for assignment in assignments(root):
            expected["notebooks"].update((releases or {}).get(assignment) or generate_release(course, assignment))
            for name, nb in source_notebooks(root, assignment).items():
                expected["solutions"][name] = solution_notebook(nb)
    for folder, notebooks in expected.items():
        problems += _differences(root / folder, folder, notebooks, "source",
                                 key=lambda nb: [(c.cell_type, c.source.rstrip("\n")) for c in nb.cells])
    return problems


def fill_with_solutions(release_nb: nbformat.NotebookNode, source_nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A student who solved everything: each answer cell of the release gets the source's solution code."""
    solutions = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source_nb.cells
                 if c.metadata.get("nbgrader", {}).get("solution")}
    nb = copy.deepcopy(release_nb)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            cell.source = solutions[meta["grade_id"]]
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="execute solutions with GPTEDU_QUICK=1 (short training)")
    parser.add_argument("--no-execute", action="store_true", help="write sources; unchanged code keeps outputs")
    parser.add_argument("--only", nargs="*", help="execute only these notebooks (name prefixes, e.g. 03 08)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a committed copy is stale")
    parser.add_argument("--format-sources", action="store_true",
                        help="rewrite autograder/src in jupytext's canonical layout, then exit")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository root (default: this checkout)")
    args = parser.parse_args(argv)
    if args.format_sources:
        format_sources(args.root)
        return 0
    if args.check:
        problems = stale_copies(args.root)
        for p in problems:
            print(p)
        if problems:
            print("Run: python -m gptedu.grading.build")
        return 1 if problems else 0
    times = build(args.root, execute_solutions=not args.no_execute, quick=args.quick, only=args.only)
    for name, seconds in times.items():
        print(f"{name:40s} {seconds:7.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
