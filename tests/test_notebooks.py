"""The notebook series end to end: solutions execute, nbgrader grades them fully, the untouched release scores 0,
and the committed ``autograder/source``, ``notebooks/`` and ``solutions/`` match the text sources ``autograder/src``.

nbgrader runs once per session (fixture ``graded_course``): one ``generate_assignment`` and one ``autograde`` of two
simulated students — ``solver`` (every answer cell filled with the instructor's solution) and ``untouched`` (the
release as handed out).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import nbformat
import pytest

nbgrader = pytest.importorskip("nbgrader")

from gptedu.grading import build  # noqa: E402
from gptedu.grading.components import all_components  # noqa: E402

SPECS = {c.name: c for c in all_components()}

ROOT = build.REPO_ROOT
PART1 = "gpt_from_scratch"
PART1_TOTAL = 145
PART2 = "gpt2"
ASSIGNMENTS = [PART1, PART2]


@pytest.fixture(scope="session")
def graded_course(tmp_path_factory):
    """A temporary course: generated release, two submissions per assignment, autograded once."""
    from gptedu.grading import secret

    course = build.copy_course(ROOT, tmp_path_factory.mktemp("course") / "course")
    secret.init(course)  # the hidden cases derive from the course's secret; autograde refuses without one
    timings = {}
    releases = {}
    for assignment in ASSIGNMENTS:
        start = time.perf_counter()
        releases[assignment] = build.generate_release(course, assignment)
        timings[f"generate {assignment}"] = time.perf_counter() - start
        sources = build.source_notebooks(ROOT, assignment)
        for student in ("solver", "untouched"):
            folder = course / "submitted" / student / assignment
            folder.mkdir(parents=True, exist_ok=True)
            for name, release_nb in releases[assignment].items():
                nb = build.fill_with_solutions(release_nb, sources[name]) if student == "solver" else release_nb
                nbformat.write(nb, folder / name)
        start = time.perf_counter()
        # the sandbox has its own tests (tests/test_sandbox.py); this one is about the notebooks and their points
        previous = os.environ.get("GPTEDU_UNSANDBOXED")
        os.environ["GPTEDU_UNSANDBOXED"] = "1"
        try:
            proc = build.run_nbgrader(course, "autograde", assignment, "--force", check=False)
        finally:
            if previous is None:
                os.environ.pop("GPTEDU_UNSANDBOXED")
            else:
                os.environ["GPTEDU_UNSANDBOXED"] = previous
        timings[f"autograde {assignment} (2 students)"] = time.perf_counter() - start
        assert proc.returncode == 0, proc.stderr[-4000:]
    print("\nnbgrader timings:", {k: round(v, 1) for k, v in timings.items()})
    return course, releases


def _scores(course: Path, assignment: str, student: str) -> dict[str, dict[str, float]]:
    from nbgrader.api import Gradebook

    url = "sqlite:///" + str(course / "gradebook.db")
    with Gradebook(url) as gb:
        submission = gb.find_submission(assignment, student)
        return {nb.name: {g.name: g.score for g in nb.grades} for nb in submission.notebooks}


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solutions_score_full_points(graded_course, assignment):
    course, _ = graded_course
    scores = _scores(course, assignment, "solver")
    source = build.source_notebooks(ROOT, assignment)
    assert set(scores) == {Path(n).stem for n in source}
    lost = {(nb, gid): s for nb, grades in scores.items() for gid, s in grades.items()
            if s != _max_points(course, assignment, nb, gid)}
    assert not lost, f"solutions lost points: {lost}"
    for name in source:
        assert (course / "autograded" / "solver" / assignment / name).exists()
    if assignment == PART1:
        assert sum(s for grades in scores.values() for s in grades.values()) == PART1_TOTAL


def _max_points(course: Path, assignment: str, notebook: str, grade_id: str) -> float:
    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + str(course / "gradebook.db")) as gb:
        return gb.find_grade_cell(grade_id, notebook, assignment).max_score


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_untouched_release_scores_zero_without_crashing(graded_course, assignment):
    course, releases = graded_course
    scores = _scores(course, assignment, "untouched")
    assert set(scores) == {Path(n).stem for n in releases[assignment]}
    assert all(s == 0 for grades in scores.values() for s in grades.values()), scores
    for name in releases[assignment]:
        graded = nbformat.read(course / "autograded" / "untouched" / assignment / name, as_version=4)
        errors = [o for c in graded.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
        assert errors, f"{name}: an untouched notebook should fail its checks"
        # the checks say "not attempted" instead of a traceback into the grading code
        test_errors = [o for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade") for o in c.outputs
                       if o.output_type == "error"]
        assert test_errors and all(o.ename == "CheckFailed" for o in test_errors), name
        assert all("not attempted" in "\n".join(o.traceback) for o in test_errors), name


@pytest.mark.slow
def test_release_has_stubs_and_no_hidden_tests(graded_course):
    _, releases = graded_course
    for notebooks in releases.values():
        for name, nb in notebooks.items():
            text = "\n".join(c.source for c in nb.cells)
            assert "BEGIN HIDDEN TESTS" not in text and "hidden=True" not in text, name
            assert "### BEGIN SOLUTION" not in text, name
            assert "raise NotImplementedError()" in text, name
            assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), name


def test_grade_ids_map_to_registered_checks():
    """Every graded test cell of the sources belongs to a spec, with the spec's points (and vice versa)."""
    seen = {}
    for assignment in ASSIGNMENTS:
        for name, nb in build.source_notebooks(ROOT, assignment).items():
            for cell in nb.cells:
                meta = cell.metadata.get("nbgrader", {})
                if meta.get("grade") and cell.cell_type == "code":
                    seen[meta["grade_id"]] = (meta["points"], name)
    part1 = {gid: pts for spec in SPECS.values() if spec.notebook[:2] <= "09" for gid, pts in spec.points.items()}
    for gid, points in part1.items():
        assert gid in seen, f"{gid} has no test cell"
        assert seen[gid][0] == points, gid
    for gid, (_, name) in seen.items():
        if name[:2] <= "09":
            assert gid in part1, f"{name}: test cell {gid} is not in the registry"


def test_each_notebook_states_its_points():
    for name, nb in build.source_notebooks(ROOT, PART1).items():
        points = sum(c.metadata["nbgrader"]["points"] for c in nb.cells
                     if c.metadata.get("nbgrader", {}).get("grade"))
        header = nb.cells[0].source
        assert f"Points in this notebook: {points}**" in header, name
        assert f"Series total: {PART1_TOTAL} points" in header, name


def notebook_points() -> dict[str, int]:
    """Points of each notebook ("01" -> 15) from the nbgrader metadata of its graded cells."""
    return {name[:2]: sum(c.metadata["nbgrader"]["points"] for c in nb.cells
                          if c.metadata.get("nbgrader", {}).get("grade"))
            for assignment in ASSIGNMENTS for name, nb in build.source_notebooks(ROOT, assignment).items()}


def readme_points(text: str) -> dict[str, int]:
    """The points column of the README's tables: a row ``| 07 | ... | 10 + 30 |`` counts 40 for 07, a row
    ``| 10–14 | ... | 70, 35, 25, 30, 20 |`` gives one figure per notebook; ``| `08_training` | ... | 15 |`` too."""
    import re

    found: dict[str, int] = {}
    for line in text.splitlines():
        cols = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cols) < 3 or not line.startswith("|"):
            continue
        key = re.fullmatch(r"`?(\d\d)(?:_\w+`)?(?:[–-](\d\d))?", cols[0])
        if not key:
            continue
        first, last = int(key.group(1)), int(key.group(2) or key.group(1))
        figures = cols[-1].split(",")
        assert len(figures) == last - first + 1, f"README row {line!r}: one figure per notebook expected"
        for number, figure in zip(range(first, last + 1), figures, strict=True):
            assert re.fullmatch(r"\d+( \+ \d+)*", figure.strip()), f"README row {line!r}: {figure!r} is not points"
            found[f"{number:02d}"] = sum(int(x) for x in figure.split("+"))
    return found


def test_readme_points_match_the_notebooks():
    """The points columns of README.md and notebooks/README.md say what the graded cells are worth."""
    points = notebook_points()
    main = readme_points((ROOT / "README.md").read_text(encoding="utf-8"))
    assert main == points, f"README.md points {main} != notebooks' nbgrader points {points}"
    release = readme_points((ROOT / "notebooks" / "README.md").read_text(encoding="utf-8"))
    assert release and all(release[k] == points[k] for k in release), (release, points)
    assert readme_points("| 07 | x | y | 10 + 30 |\n| 10–11 | a | b | 70, 35 |") == {"07": 40, "10": 70, "11": 35}
    with pytest.raises(AssertionError, match="is not points"):
        readme_points("| 01 | `01_data.ipynb` | vocabulary | see header |")


@pytest.mark.slow
def test_committed_copies_are_fresh(graded_course):
    """notebooks/ and solutions/ have the sources the build would write now (outputs are not compared)."""
    _, releases = graded_course
    problems = build.stale_copies(ROOT, releases=releases)
    assert not problems, "stale copies (run `python -m gptedu.grading.build`): " + "; ".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "solutions").glob("[01][0-9]_*.ipynb")))
def test_solution_notebook_executes(name, tmp_path):
    """Each committed solution runs top to bottom in quick mode, with no error and nothing on stderr."""
    nb = nbformat.read(ROOT / "solutions" / name, as_version=4)
    for extra in (ROOT / "solutions").iterdir():
        if extra.suffix not in (".ipynb",) and extra.is_file():
            shutil.copy2(extra, tmp_path / extra.name)
    seconds = build.execute(nb, tmp_path, quick=True, timeout=300)
    stderr = [o.text for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "stream" and o.name == "stderr" and "tqdm" not in o.text and "%|" not in o.text]
    assert not stderr, f"{name} wrote to stderr: {stderr[:2]}"
    print(f"\n{name}: {seconds:.1f} s")


def test_every_notebook_is_valid_and_starts_with_the_colab_setup():
    """Valid nbformat 4 (what JupyterLab / Notebook 7 open), python3 kernel, and a first code cell that installs
    gptedu when it is missing (Colab)."""
    folders = [ROOT / "notebooks", ROOT / "solutions"] + [ROOT / "autograder" / "source" / a for a in ASSIGNMENTS]
    for folder in folders:
        for path in sorted(folder.glob("[01][0-9]_*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            nbformat.validate(nb)
            assert nb.metadata["kernelspec"]["name"] == "python3", path
            first_code = next(c for c in nb.cells if c.cell_type == "code").source
            assert 'find_spec("gptedu") is None' in first_code and '"pip", "install"' in first_code, path
            assert "GPTEDU_REPO = " in first_code and "github.com/gptedu/gptedu" not in first_code, path
            assert "NBGRADER_EXECUTION" in first_code and "GPTEDU_QUICK" in first_code, path


def test_text_sources_are_canonical_and_read_back_losslessly():
    """Each ``autograder/src`` file is exactly what jupytext writes for its notebook (so a diff shows only real
    edits), and the committed instructor notebooks equal what the build reads from it, ids and metadata included."""
    for assignment in ASSIGNMENTS:
        for path in sorted((build.sources_dir(ROOT) / assignment).glob("*.py")):
            nb = build.read_source(path)
            assert build.write_source(nb) == path.read_text(encoding="utf-8"), (
                f"{path} is not in jupytext's canonical layout: run `python -m gptedu.grading.build --format-sources`")
            assert all(c.get("id") for c in nb.cells), path
    assert build.stale_instructor_notebooks(ROOT) == []


def test_stale_instructor_notebook_is_reported(tmp_path):
    """An edit to a text source, a source without a notebook and a notebook without a source are all reported."""
    shutil.copytree(ROOT / "autograder" / "src", tmp_path / "autograder" / "src")
    shutil.copytree(ROOT / "autograder" / "source", tmp_path / "autograder" / "source")
    assert build.stale_instructor_notebooks(tmp_path) == []
    src = tmp_path / "autograder" / "src" / PART1 / "03_single_head.py"
    src.write_text(src.read_text(encoding="utf-8").replace('"points": 10', '"points": 11', 1), encoding="utf-8")
    (tmp_path / "autograder" / "source" / PART1 / "02_positional_encoding.ipynb").unlink()
    shutil.copy2(ROOT / "autograder" / "source" / PART1 / "01_data.ipynb",
                 tmp_path / "autograder" / "source" / PART1 / "99_orphan.ipynb")
    problems = build.stale_instructor_notebooks(tmp_path)
    assert any("03_single_head.ipynb differs" in p for p in problems), problems
    assert any("02_positional_encoding.ipynb is missing" in p for p in problems), problems
    assert any("99_orphan.ipynb has no text source" in p for p in problems), problems
    build.write_instructor_notebooks(tmp_path, log=lambda *_: None)
    assert build.stale_instructor_notebooks(tmp_path) == []


def test_source_errors_name_the_file_and_the_fix(tmp_path):
    graded = '# %% nbgrader={"grade": true, "grade_id": "t", "locked": true, "points": 1, "schema_version": 3, ' \
             '"solution": false, "task": false}\ncheck("x", globals())\n'
    path = tmp_path / "01_x.py"
    path.write_text('# %% [markdown] id="a"\n# # Title\n\n' + graded, encoding="utf-8")
    with pytest.raises(build.SourceError, match=r"01_x.py: cell 1 \(t\) has nbgrader metadata but no id: add id="):
        build.read_source(path)
    path.write_text('# %% [markdown] id="a"\n# # Title\n\n# %% id="a"\nx = 1\n', encoding="utf-8")
    with pytest.raises(build.SourceError, match="repeats the id 'a'"):
        build.read_source(path)
    path.write_text('# %% [markdown]\n# # Title\n\n# %% id="b"\nx = 1\n', encoding="utf-8")
    nb = build.read_source(path)
    assert [c.id for c in nb.cells] == ["auto-00", "b"] and nb.cells[0].source == "# Title"
    assert build.write_source(nb) == path.read_text(encoding="utf-8")
    # no blank line before the next cell: jupytext notes the layout; read the same, and --format-sources fixes it
    loose = '# %% [markdown] id="a"\n# # Title\n\n# %% id="b"\nx = 1\n# %% id="c"\ny = 2\n'
    path.write_text(loose, encoding="utf-8")
    nb = build.read_source(path)
    assert [(c.id, c.source, c.metadata) for c in nb.cells] == [("a", "# Title", {}), ("b", "x = 1", {}),
                                                                 ("c", "y = 2", {})]
    assert build.write_source(nb) != loose
    assert build.format_sources(tmp_path, log=lambda *_: None) == []  # not an assignment folder: untouched
    (tmp_path / "autograder" / "src" / "a1").mkdir(parents=True)
    moved = path.rename(tmp_path / "autograder" / "src" / "a1" / "01_x.py")
    assert build.format_sources(tmp_path, log=lambda *_: None) == [moved]
    assert moved.read_text(encoding="utf-8") == build.write_source(nb) and build.read_source(moved) == nb


def test_build_keeps_committed_outputs_only_while_the_code_is_unchanged():
    v4 = nbformat.v4

    def executed(code: str, text: str) -> nbformat.NotebookNode:
        cell = v4.new_code_cell(code, execution_count=1, outputs=[v4.new_output("stream", name="stdout", text=text)])
        cell.metadata["execution"] = {"iopub.status.idle": "2026-12-01T20:00:00Z"}
        cells = [v4.new_markdown_cell("old words"), cell]
        return v4.new_notebook(cells=cells, metadata={"language_info": {"name": "python"}})

    committed = executed("print(loss)", "1.539\n")
    text_edit = v4.new_notebook(cells=[v4.new_markdown_cell("new words"), v4.new_code_cell("print(loss)")])
    kept = build.with_committed_outputs(text_edit, committed)
    assert kept.cells[0].source == "new words", "the new text must be written"
    assert kept.cells[1].outputs == committed.cells[1].outputs and kept.cells[1].execution_count == 1
    assert kept.cells[1].metadata == committed.cells[1].metadata
    assert kept.metadata == committed.metadata
    assert text_edit.cells[1].outputs == [], "the fresh notebook must not be modified in place"
    assert build.with_committed_outputs(executed("print(loss)", "1.539\n"), committed) == committed

    for changed in (
        [v4.new_markdown_cell("old words"), v4.new_code_cell("print(loss * 2)")],  # a code cell edited
        [v4.new_code_cell("import torch"), v4.new_code_cell("print(loss)")],  # a code cell added
        [v4.new_markdown_cell("old words")],  # a code cell removed
    ):
        fresh = v4.new_notebook(cells=changed)
        assert all(not c.get("outputs") for c in build.with_committed_outputs(fresh, committed).cells)

    # the setup cell's install block never runs in the build: editing it keeps the outputs, editing the rest does not
    def with_setup(setup: str) -> nbformat.NotebookNode:
        return v4.new_notebook(cells=[v4.new_code_cell(setup), v4.new_code_cell("print(loss)")])

    old_setup = 'import os\nGPTEDU_PIP = "x"\nsubprocess.check_call(["pip", "install", GPTEDU_PIP])\n\nimport torch'
    committed = with_setup(old_setup)
    committed.cells[1].outputs = [v4.new_output("stream", name="stdout", text="1.539\n")]
    new_install = old_setup.replace('GPTEDU_PIP = "x"', 'GPTEDU_REPO = None')
    assert build.with_committed_outputs(with_setup(new_install), committed).cells[1].outputs
    assert build.with_committed_outputs(with_setup(new_install), committed).cells[0].source == new_install
    after_install = old_setup.replace("import torch", "import torch\ntorch.manual_seed(1)")
    assert not build.with_committed_outputs(with_setup(after_install), committed).cells[1].outputs
