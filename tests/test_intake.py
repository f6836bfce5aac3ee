"""Intake and the failure rules, against plain nbgrader (the attack or fault reproduced) and here (held).

A two-notebook course with trivial code (no torch, the normal kernel: intake does not depend on the sandbox) is
built once; the same hostile and broken class is graded by plain ``nbgrader autograde`` (a copy of the course
without gptedu's configuration) and by ``python -m gptedu.grading.autograde_class``.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from gptedu.grading import autograde_class, intake

pytestmark = pytest.mark.slow

PLAIN = '''c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "intake-test"
c.CourseDirectory.db_url = "sqlite:///" + {db!r}
c.Exchange.root = {exchange!r}
c.Execute.timeout = 20
c.OverwriteCells.add_missing_cells = True
'''
OURS = PLAIN + '''from gptedu.grading.intake import configure_intake  # noqa: E402
configure_intake(c)
c.FileNameCollectorPlugin.named_regexp = r".*/(?P<student_id>[a-z0-9]+)_(?P<file_id>[^/]*)"
'''
NOTEBOOKS = ("a", "b")
POINTS = 5
SECRET_TEXT = "course secret: never copied"


def _meta(grade_id, **kw):
    meta = {"grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3, "solution": False,
            "task": False, **kw}
    return {"nbgrader": meta}


def _source(name: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
                                  metadata=_meta(f"{name}_sol", solution=True)),
        nbformat.v4.new_code_cell("assert f(2) == 4\n### BEGIN HIDDEN TESTS\nassert f(3) == 6\n"
                                  "### END HIDDEN TESTS", metadata=_meta(f"{name}_test", grade=True, locked=True,
                                                                         points=POINTS)),
    ]
    return nb


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop(intake.ENV, None)
    return env


def nbgrader(course: Path, *args: str, timeout: int = 300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=_env(), capture_output=True,
                          text=True, timeout=timeout, **kw)


def wrapper(course: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gptedu.grading.autograde_class", *args], cwd=course, env=_env(),
                          capture_output=True, text=True, timeout=600)


def _course(root: Path, config: str) -> Path:
    course = root / "course"
    for name in NOTEBOOKS:
        (course / "source" / "ps").mkdir(parents=True, exist_ok=True)
        nbformat.write(_source(name), course / "source" / "ps" / f"{name}.ipynb")
    (course / ".gptedu").mkdir()
    (course / ".gptedu" / "secret").write_text(SECRET_TEXT)
    (root / "exchange").mkdir()
    os.chmod(root / "exchange", 0o777)
    (course / "nbgrader_config.py").write_text(config.format(db=str(course / "gradebook.db"),
                                                             exchange=str(root / "exchange")))
    res = nbgrader(course, "generate_assignment", "ps", "--force")
    assert res.returncode == 0, res.stderr[-3000:]
    return course


def _answer(course: Path, name: str, code: str = "return 2 * x") -> nbformat.NotebookNode:
    nb = nbformat.read(course / "release" / "ps" / f"{name}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == f"{name}_sol")
    cell.source = cell.source.replace("raise NotImplementedError()", code)
    return nb


def _folder(course: Path, student: str) -> Path:
    folder = course / "submitted" / student / "ps"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _submit_class(course: Path, dev_zero: bool) -> None:
    """The class: three correct students, hostile ones (links, special files, a hard link), broken ones."""
    for student in ("good1", "good2", "good3"):
        for name in NOTEBOOKS:
            nbformat.write(_answer(course, name), _folder(course, student) / f"{name}.ipynb")
    (_folder(course, "good1") / "timestamp.txt").write_text("2026-01-30 10:00:00.000000 UTC")
    (_folder(course, "good1") / "submission_secret.txt").write_text("0123abcd")
    # hostile: a.ipynb is a link to good1's notebook, b.ipynb wrong; links beside them
    hostile = _folder(course, "hostile")
    (hostile / "a.ipynb").symlink_to(course / "submitted" / "good1" / "ps" / "a.ipynb")
    nbformat.write(_answer(course, "b", "return x"), hostile / "b.ipynb")
    (hostile / "gradebook.db").symlink_to(course / "gradebook.db")
    (hostile / "shadow").symlink_to("/etc/shadow")
    (hostile / "secret").symlink_to(course / ".gptedu" / "secret")
    (hostile / "friend.ipynb.txt").symlink_to(course / "submitted" / "good2" / "ps" / "b.ipynb")
    if dev_zero:  # plain nbgrader would copy it forever: see test_plain_nbgrader_copies_dev_zero_forever
        (hostile / "data.bin").symlink_to("/dev/zero")
    # a hard link to a file of the course (the instructor's solution of b), a correct a
    hardlink = _folder(course, "hardlink")
    nbformat.write(_answer(course, "a"), hardlink / "a.ipynb")
    shutil.copy(course / "source" / "ps" / "b.ipynb", course / "b_solution.ipynb")
    os.link(course / "b_solution.ipynb", hardlink / "b.ipynb")
    # a FIFO where a notebook should be, and one beside: plain nbgrader fails the student
    fifo = _folder(course, "fifo")
    os.mkfifo(fifo / "a.ipynb")
    os.mkfifo(fifo / "pipe")
    nbformat.write(_answer(course, "b"), fifo / "b.ipynb")
    # JSON that Python's json cannot parse safely, beside a correct notebook
    digits = _folder(course, "digits")
    nb = _answer(course, "a")
    (digits / "a.ipynb").write_text(nbformat.writes(nb).replace('"metadata": {', '"metadata": {"n": ' + "9" * 5000
                                                                + ", ", 1))
    nbformat.write(_answer(course, "b"), digits / "b.ipynb")
    deep = _folder(course, "deep")
    (deep / "a.ipynb").write_text(nbformat.writes(_answer(course, "a")).replace(
        '"metadata": {', '"metadata": {"n": ' + "[" * 100_000 + "]" * 100_000 + ", ", 1))
    nbformat.write(_answer(course, "b"), deep / "b.ipynb")
    # valid JSON that nbgrader fails on (its answer and test cells deleted: OverwriteCells raises KeyError)
    kaput = _folder(course, "kaput")
    nbformat.write(_answer(course, "a"), kaput / "a.ipynb")
    nb = _answer(course, "b")
    nb.cells = [nbformat.v4.new_code_cell("x = 1")] + [c for c in nb.cells if "nbgrader" not in c.metadata]
    nbformat.write(nb, kaput / "b.ipynb")


def _grades_csv(course: Path) -> dict[str, float]:
    res = nbgrader(course, "export")
    assert res.returncode == 0, res.stderr[-2000:]
    with open(course / "grades.csv") as f:
        return {r["student_id"]: float(r["score"]) for r in csv.DictReader(f)}


def _scores(course: Path, student: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {nb.name: nb.score for nb in gb.find_submission("ps", student).notebooks}


def _students(course: Path) -> list[str]:
    """The students `nbgrader export` writes a row for."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return [s.id for s in gb.students]


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """The class graded by plain nbgrader (no intake); the correct students are not needed there."""
    course = _course(tmp_path_factory.mktemp("plain with space"), PLAIN)
    _submit_class(course, dev_zero=False)
    run = nbgrader(course, "autograde", "ps", "--CourseDirectory.student_id_exclude=good1,good2,good3")
    return {"course": course, "run": run, "csv": _grades_csv(course)}


@pytest.fixture(scope="module")
def ours(tmp_path_factory):
    """The same class graded through intake."""
    course = _course(tmp_path_factory.mktemp("ours with space"), OURS)
    _submit_class(course, dev_zero=True)
    before = {p: (p.lstat().st_mode, p.lstat().st_mtime_ns) for p in (course / "submitted").rglob("*")}
    run = wrapper(course, "ps")
    with open(course / "autograded" / "autograde-report-ps.csv") as f:
        report = {(r["student"], r["notebook"]): r for r in csv.DictReader(f)}
    return {"course": course, "run": run, "report": report, "before": before, "csv": _grades_csv(course)}


# ----------------------------------------------------------------------------------- the attacks, reproduced
def test_plain_nbgrader_copies_what_links_point_to(plain):
    course = plain["course"]
    folder = course / "autograded" / "hostile" / "ps"
    assert (folder / "secret").read_text() == SECRET_TEXT  # the course secret, copied for the kernel to read
    assert (folder / "gradebook.db").read_bytes()[:15] == b"SQLite format 3"
    assert not (folder / "gradebook.db").is_symlink()


def test_plain_nbgrader_gives_a_linked_notebook_its_targets_points(plain):
    assert _scores(plain["course"], "hostile")["a"] == POINTS  # good1's work
    assert _scores(plain["course"], "hardlink")["b"] == POINTS  # the instructor's solution


def test_plain_nbgrader_loses_a_whole_student_for_one_notebook(plain):
    course = plain["course"]
    assert "error processing assignment 'ps' for student 'kaput'" in plain["run"].stderr
    assert not (course / "autograded" / "kaput" / "ps" / "a.ipynb").exists()  # the graded a.ipynb removed ...
    assert plain["csv"]["kaput"] == POINTS  # ... while grades.csv keeps its score: they disagree
    for student in ("fifo", "digits", "deep"):  # a correct b.ipynb lost with the bad a.ipynb (fifo: no row)
        assert plain["csv"].get(student, 0) == 0, student


def test_plain_nbgrader_copies_dev_zero_forever(plain):
    """A link to /dev/zero beside the notebook: nbgrader writes an endless file (stopped here by a 20 MB file
    size limit: the write fails with EFBIG, "File too large"). Held: ``test_links_are_neither_followed_nor_copied``
    (the hostile student there has the same link)."""
    course = plain["course"]
    folder = _folder(course, "zero")
    nbformat.write(_answer(course, "a"), folder / "a.ipynb")
    (folder / "data.bin").symlink_to("/dev/zero")
    limit = 20 * 2**20

    def cap():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    res = nbgrader(course, "autograde", "ps", "--student=zero", timeout=60, preexec_fn=cap)
    assert res.returncode == 1 and "File too large" in res.stderr, res.stderr[-2000:]
    assert "data.bin" in res.stderr.split("File too large")[0][-3000:]


def test_python_json_fails_on_long_numbers_and_deep_nesting():
    with pytest.raises(ValueError):
        json.loads("9" * 5000)
    with pytest.raises(RecursionError):
        json.loads("[" * 100_000 + "]" * 100_000)


# ------------------------------------------------------------------------------------------------- held here
def test_correct_students_get_full_points(ours):
    for student in ("good1", "good2", "good3"):
        assert ours["csv"][student] == 2 * POINTS, student
        for name in NOTEBOOKS:
            assert ours["report"][(student, name)]["status"] == "graded"


def test_links_are_neither_followed_nor_copied(ours):
    course = ours["course"]
    for folder in (course / "autograded").glob("*/ps"):
        for path in folder.iterdir():
            assert path.is_file() and not path.is_symlink(), path
            assert path.name.endswith(".ipynb") or path.name in intake.KEPT_FILES, path
    assert SECRET_TEXT not in "".join(p.read_text(errors="replace") for p in (course / "autograded").rglob("*")
                                      if p.is_file())


def test_a_linked_notebook_earns_nothing_and_says_why(ours):
    row = ours["report"][("hostile", "a")]
    assert row["status"] == "failed to grade" and float(row["score"]) == 0
    assert row["message"].startswith("could not grade: a.ipynb is a symbolic link")
    assert "Hand in the notebook file itself" in row["message"]
    assert ours["report"][("hostile", "b")]["status"] == "graded"  # its other notebook graded (wrong: 0)
    assert ours["csv"]["hostile"] == 0
    hard = ours["report"][("hardlink", "b")]
    assert hard["status"] == "failed to grade" and "hard link" in hard["message"]
    assert ours["csv"]["hardlink"] == POINTS  # its own a.ipynb


@pytest.mark.parametrize("student,bad,reason", [
    ("fifo", "a", "a FIFO"), ("digits", "a", "more than 100 digits"), ("deep", "a", "nested more than 64 levels"),
    ("kaput", "b", "nbgrader could not process this notebook (KeyError")])
def test_one_bad_notebook_costs_that_notebook_only(ours, student, bad, reason):
    row = ours["report"][(student, bad)]
    assert row["status"] == "failed to grade" and reason in row["message"], row
    assert float(row["score"]) == 0
    good = "b" if bad == "a" else "a"
    assert ours["report"][(student, good)]["status"] == "graded"
    assert float(ours["report"][(student, good)]["score"]) == POINTS
    assert ours["csv"][student] == POINTS  # grades.csv agrees with the report


def test_the_gradebook_agrees_with_the_report(ours):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{ours['course'] / 'gradebook.db'}") as gb:
        for (student, name), row in ours["report"].items():
            snb = gb.find_submission_notebook(name, "ps", student)
            assert snb.score == float(row["score"]), (student, name)
            assert not snb.needs_manual_grade


def test_the_submissions_are_untouched_and_no_copy_is_left(ours):
    course = ours["course"]
    after = {p: (p.lstat().st_mode, p.lstat().st_mtime_ns) for p in (course / "submitted").rglob("*")}
    assert after == ours["before"]
    assert not (course / intake.STAGING).exists()


def test_exit_code_and_summary(ours):
    assert ours["run"].returncode == 1, ours["run"].stderr[-3000:]
    assert "failed to grade" in ours["run"].stdout
    assert "[intake] hostile: not read, not followed: data.bin (a symbolic link), friend.ipynb.txt (a symbolic " \
           "link)" in ours["run"].stderr


def test_no_warning_on_a_normal_run(ours):
    warnings = [line for line in ours["run"].stderr.splitlines()
                if ("WARNING" in line or "Warning" in line) and "Kernel is running over TCP" not in line]
    # what is left is about the hostile students (their files), never about a correct student
    assert not [w for w in warnings if "good" in w or "checksum" in w or "not in session" in w], warnings


def test_feedback_holds_the_graded_notebook_and_why_it_could_not_grade(ours):
    course = ours["course"]
    res = nbgrader(course, "generate_feedback", "ps", "--force")
    assert res.returncode == 0, res.stderr[-3000:]
    names = sorted(p.name for p in (course / "feedback" / "hostile" / "ps").iterdir())
    assert names == ["a.html", "b.html"], names
    assert "could not grade" in (course / "feedback" / "hostile" / "ps" / "a.html").read_text()


def _inbound(root: Path, course: Path, student: str) -> Path:
    """A submission in the exchange's inbound, as ``nbgrader submit`` leaves it, with a link to the course secret."""
    stamp = "2026-01-30 10:00:00.000000 UTC"
    folder = root / "exchange" / "intake-test" / "inbound" / f"{student}+ps+{stamp}+0123abcd"
    folder.mkdir(parents=True)
    nbformat.write(_answer(course, "a"), folder / "a.ipynb")
    (folder / "timestamp.txt").write_text(stamp)
    (folder / "secret").symlink_to(course / ".gptedu" / "secret")
    return folder


def test_collect_copies_regular_files_only(tmp_path):
    """Plain ``nbgrader collect`` copies what a link in the inbound points to (the course secret here); the course's
    collector copies regular files only, never blocks on a FIFO or reads /dev/zero, and names what it left out."""
    plain = _course(tmp_path / "plain", PLAIN)
    _inbound(tmp_path / "plain", plain, "mallory")
    res = nbgrader(plain, "collect", "ps")
    assert res.returncode == 0, res.stderr[-3000:]
    assert (plain / "submitted" / "mallory" / "ps" / "secret").read_text() == SECRET_TEXT  # the attack works there

    course = _course(tmp_path / "ours", OURS)
    inbound = _inbound(tmp_path / "ours", course, "mallory")
    (inbound / "zeros").symlink_to("/dev/zero")
    os.mkfifo(inbound / "pipe")
    os.symlink(inbound / "a.ipynb", inbound / "b.ipynb")
    res = nbgrader(course, "collect", "ps", timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    got = course / "submitted" / "mallory" / "ps"
    assert sorted(p.name for p in got.iterdir()) == ["a.ipynb", "timestamp.txt"], sorted(got.iterdir())
    assert not any(p.is_symlink() for p in got.iterdir())
    assert nbformat.read(got / "a.ipynb", as_version=4).cells  # the notebook itself came through intact
    for name in ("secret", "zeros", "pipe", "b.ipynb"):
        assert f"not collected: {name}: " in res.stderr, (name, res.stderr[-3000:])


def test_release_feedback_for_a_class_with_zip_students(ours, tmp_path):
    """Plain nbgrader stops for the whole class at the first student without timestamp.txt; here the others get
    their feedback and the zip students are named."""
    course = ours["course"]
    if not (course / "feedback" / "good1").exists():
        assert nbgrader(course, "generate_feedback", "ps", "--force").returncode == 0
    plain = tmp_path / "plain"
    shutil.copytree(course, plain, symlinks=True, ignore=shutil.ignore_patterns("submitted"))
    (plain / "nbgrader_config.py").write_text((course / "nbgrader_config.py").read_text().split(
        "from gptedu.grading.intake")[0])
    res = nbgrader(plain, "release_feedback", "ps")
    assert "FileNotFoundError" in res.stderr and "timestamp.txt" in res.stderr
    res = nbgrader(course, "release_feedback", "ps")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Releasing feedback for student 'good1'" in res.stderr
    assert "no feedback released to 'good2'" in res.stderr and "Send them" in res.stderr


def test_a_failed_regrade_leaves_no_stale_score(ours):
    course = ours["course"]
    folder = course / "submitted" / "good3" / "ps"
    saved = (folder / "a.ipynb").read_text()
    try:
        (folder / "a.ipynb").write_text('{"cells": [ not json')
        res = wrapper(course, "ps", "--force", "--student", "good3")
        assert res.returncode == 1
        assert _scores(course, "good3") == {"a": 0, "b": POINTS}  # was 10: the broken notebook now counts 0
    finally:
        (folder / "a.ipynb").write_text(saved)


def test_plain_autograde_is_refused_with_the_command_to_run(ours):
    res = nbgrader(ours["course"], "autograde", "ps", "--force")
    assert res.returncode != 0
    assert "python -m gptedu.grading.autograde_class" in res.stderr
    assert "Autograding" not in res.stderr


def test_self_check_grades_the_solutions_and_leaves_no_row(ours):
    course = ours["course"]
    res = wrapper(course, "ps", "--self-check")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert "self-check passed" in res.stdout
    assert autograde_class.SELF_CHECK_STUDENT not in _students(course)  # no row in grades.csv
    assert not (course / "autograded" / autograde_class.SELF_CHECK_STUDENT).exists()


def test_self_check_fails_when_a_solution_loses_points(ours, tmp_path):
    course = ours["course"]
    source = course / "source" / "ps" / "b.ipynb"
    saved = source.read_text()
    try:
        source.write_text(saved.replace("return 2 * x", "return 3 * x"))
        res = wrapper(course, "ps", "--self-check")
        assert res.returncode == 1 and "self-check FAILED" in res.stderr and "b" in res.stderr
    finally:
        source.write_text(saved)
    assert autograde_class.SELF_CHECK_STUDENT not in _students(course)


def test_zip_students_get_their_file_time_and_can_be_late(ours):
    course = ours["course"]
    archive = course / "downloaded" / "ps" / "archive"
    archive.mkdir(parents=True)
    with zipfile.ZipFile(archive / "lms.zip", "w") as z:
        for name in NOTEBOOKS:
            info = zipfile.ZipInfo(f"zipper_{name}.ipynb", date_time=(2026, 2, 1, 12, 30, 0))
            z.writestr(info, nbformat.writes(_answer(course, name)))
    res = nbgrader(course, "zip_collect", "ps")
    assert res.returncode == 0, res.stderr[-3000:]
    stamp = (course / "submitted" / "zipper" / "ps" / "timestamp.txt").read_text()
    assert stamp.startswith("2026-02-01 12:30:00"), stamp
    res = nbgrader(course, "db", "assignment", "add", "ps", "--duedate=2026-02-01 12:00:00 UTC")
    assert res.returncode == 0, res.stderr[-2000:]
    res = wrapper(course, "ps", "--student", "zipper")
    assert res.returncode == 0, res.stderr[-3000:]
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assert gb.find_submission("ps", "zipper").total_seconds_late == 30 * 60


# ------------------------------------------------------------------------------------------- intake alone
def test_intake_reads_only_regular_files(tmp_path):
    folder = tmp_path / "s" / "ps"
    folder.mkdir(parents=True)
    good = nbformat.writes(_source("a"))
    (folder / "a.ipynb").write_text(good)
    os.mkfifo(folder / "b.ipynb")
    (folder / "c.ipynb").symlink_to("/dev/zero")
    (folder / "d.ipynb").write_text(good)
    os.link(folder / "d.ipynb", tmp_path / "d-elsewhere")
    (folder / "e.ipynb").write_text(good + " " * 2000)
    sub = intake.check_submission(folder, ["a", "b", "c", "d", "e"], tmp_path / "dest",
                                  intake.Limits(notebook_bytes=len(good) + 1000))
    assert sub.staged == ["a"]
    assert "a FIFO" in sub.rejected["b"] and "a symbolic link" in sub.rejected["c"]
    assert "hard link" in sub.rejected["d"] and "over the" in sub.rejected["e"]
    assert "Clear the outputs" in sub.rejected["e"] and "Clear" not in sub.rejected["b"]  # the fix that applies
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == ["a.ipynb"]


@pytest.mark.parametrize("text,reason", [
    ('{"a": ' + "1" * 5000 + "}", "more than 100 digits"),
    ("[" * 100_000 + "]" * 100_000, "nested more than 64 levels"),
    ('{"cells": [ not json', "not valid JSON (line 1"),
    ('{"a": "[[[[[[ 9999999 \\" [[["}', "not a Jupyter notebook"),  # brackets and digits in strings are text
    ("\xff\xfe", "not UTF-8"),
])
def test_notebook_problems_are_found_without_an_exception(text, reason):
    data = text.encode("latin-1") if text.startswith("\xff") else text.encode()
    assert reason in intake.notebook_problem(data)


def test_a_valid_notebook_passes():
    assert intake.notebook_problem(nbformat.writes(_source("a")).encode()) == ""


def test_two_workers_grade_the_same_as_one(ours):
    """--workers 2: disjoint students in two nbgrader processes writing one sqlite gradebook; or, where the
    sandbox has no per-job limits (no cgroups), a refusal that says why."""
    course = ours["course"]
    before = {s: _scores(course, s) for s in ("good1", "good2", "hostile", "kaput")}
    res = wrapper(course, "ps", "--force", "--workers", "2", "--student", "[gkh]*")
    if autograde_class._check_workers(2):
        assert res.returncode == 2 and "needs memory and process limits of its own" in res.stderr
        return
    assert res.returncode == 1, res.stdout[-2000:] + res.stderr[-3000:]  # kaput's b and hostile's a
    assert {s: _scores(course, s) for s in before} == before
    assert "database is locked" not in "".join(p.read_text() for p in (course / "autograded").glob("*.log"))


def test_workers_need_limits_of_their_own(monkeypatch):
    from gptedu.grading import sandbox

    monkeypatch.setattr(sandbox, "limits_mode", lambda: "rlimit", raising=False)
    assert "limits of its own" in autograde_class._check_workers(2)
    assert autograde_class._check_workers(1) == ""
    monkeypatch.setattr(sandbox, "limits_mode", lambda: "cgroup-v1", raising=False)
    assert autograde_class._check_workers(2) == ""


def test_formgrader_autograde_button_is_refused(monkeypatch, tmp_path):
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.converters import Autograde
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    monkeypatch.setattr(Autograde, "start", Autograde.start)  # put back after the test
    monkeypatch.setattr(sys, "argv", ["jupyter-lab"])
    monkeypatch.delenv(intake.ENV, raising=False)
    intake.configure_intake(Config())
    result = NbGraderAPI(CourseDirectory(root=str(tmp_path))).autograde("ps", "good1")
    assert result["success"] is False and "python -m gptedu.grading.autograde_class" in result["error"]


def test_nbgrader_stopping_changes_no_grade(ours):
    """nbgrader stopping for the whole run (here its configuration refuses, as when the sandbox cannot run) is not
    "every notebook could not be graded": exit code 2, nbgrader's message, and no grade changed."""
    course = ours["course"]
    config = course / "nbgrader_config.py"
    saved = config.read_text()
    before = {s: _scores(course, s) for s in ("good1", "good2")}
    try:
        config.write_text(saved + '\nimport sys\nif "autograde" in sys.argv:\n'
                                  '    raise SystemExit("gptedu: the sandbox cannot run here (test)")\n')
        res = wrapper(course, "ps", "--force", "--student", "good[12]")
    finally:
        config.write_text(saved)
    assert res.returncode == 2, res.stdout[-2000:] + res.stderr[-2000:]
    assert "the sandbox cannot run here (test)" in res.stderr and "no grade was changed" in res.stderr
    assert {s: _scores(course, s) for s in before} == before
    assert "could not grade" not in (course / "autograded" / "good1" / "ps" / "a.ipynb").read_text()


@pytest.mark.parametrize("argv", [["/venv/bin/nbgrader", "autograde", "ps"], ["-c", "autograde", "ps"],
                                  ["/usr/bin/python3", "--log-level=INFO"]],
                         ids=["nbgrader", "python -c", "unrecognised"])
def test_the_checked_copy_is_read_however_nbgrader_was_started(tmp_path, monkeypatch, argv):
    """autograde_class names its staging folder in the environment; the nbgrader it starts must read from there
    whatever its command line looks like (a launcher that runs nbgrader through ``python -c`` once made the
    command unrecognisable, and nbgrader then graded the raw submitted/ folder, following a link to /dev/zero)."""
    from traitlets.config import Config

    staged = f"{intake.STAGING}/run1/w0"
    (tmp_path / staged).mkdir(parents=True)
    (tmp_path / staged / intake.MARKER).write_text("x")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(intake.ENV, staged)
    monkeypatch.setattr(sys, "argv", argv)
    config = Config()
    intake.configure_intake(config)
    assert config.CourseDirectory.submitted_directory == staged
