"""The instructor's loop end to end on a simulated class, with the real nbgrader CLI (shared ``class_batch``).

autograde (sandboxed, verified) -> the class report that separates "scored 0" from "failed to grade" -> a free-text
answer graded by hand (what formgrader stores) -> generate_feedback (hidden tests redacted) -> export (grades.csv).
"""

from __future__ import annotations

import csv
import subprocess
import sys

import class_batch as cb
import course_kit as kit
import pytest

from gptedu.grading import autograde_class

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not kit.sandbox_possible(),
                                                   reason="the grading sandbox needs root on Linux, with namespaces")]

EXPECTED = {  # per-cell autograded scores of the simulated class
    "perfect": {"test_head_visible": 10, "test_head_hidden": 10},
    "partial": {"test_head_visible": 10, "test_head_hidden": 0},  # mask of fixed size: fails on longer inputs
    "stub": {"test_head_visible": 0, "test_head_hidden": 0},
    "tamper_reference": {"test_head_visible": 0, "test_head_hidden": 0},
    "unusual": {"test_head_visible": 10, "test_head_hidden": 10},
}


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    graded = cb.graded_class(tmp_path_factory)
    course, env = graded["course"], graded["env"]
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:  # what formgrader stores for a manual grade
        grade = gb.find_grade("explain_mask", kit.NOTEBOOK, kit.ASSIGNMENT, "perfect")
        grade.manual_score = 2
        gb.db.commit()
    feedback = [kit.nbgrader(course, "generate_feedback", kit.ASSIGNMENT, f"--student={pattern}", "--force", env=env)
                for pattern in ("p[ae]r*", "tamper_reference")]
    export = kit.nbgrader(course, "export", env=env)
    return {**graded, "feedback": feedback, "export": export}


def test_per_cell_scores(loop):
    for student, expected in EXPECTED.items():
        found = {k: v for k, v in loop["scores"][student].items() if k.startswith("test_")}
        assert found == expected, student


def test_report_separates_scored_zero_from_failed_to_grade(loop):
    course = loop["course"]
    rows = {r.student: r for r in autograde_class.class_report(course, kit.ASSIGNMENT)}
    assert rows["stub"].status == "graded" and rows["stub"].score == 0
    assert rows["perfect"].status == "graded" and rows["perfect"].needs_manual_grade is False
    assert rows["invalid_json"].status == "failed to grade" and "not valid JSON" in rows["invalid_json"].message
    assert rows["missing_notebook"].status == "not submitted"
    assert rows["kernel_suicide"].status == "graded"  # a defined 0, not a failure to grade
    failed = {s for s, r in rows.items() if r.status == "failed to grade"}
    assert failed == {"invalid_json", *cb.REJECTED}, failed
    for student, reason in cb.REJECTED.items():
        assert rows[student].message.startswith("could not grade: ") and reason in rows[student].message, student
        assert rows[student].score == 0


def test_report_command(loop):
    """The wrapper checks, grades and reports; here it grades one broken notebook again (--force)."""
    course = loop["course"]
    res = subprocess.run([sys.executable, "-m", "gptedu.grading.autograde_class", kit.ASSIGNMENT, "--report",
                          str(course / "report.csv"), "--force", "--student", "invalid_json"], cwd=course,
                         env=loop["env"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 1, res.stdout + res.stderr
    with open(course / "report.csv") as f:
        rows = {(r["student"], r["notebook"]): r for r in csv.DictReader(f)}
    assert rows[("invalid_json", kit.NOTEBOOK)]["status"] == "failed to grade"
    assert rows[("perfect", kit.NOTEBOOK)]["status"] == "graded"
    assert "failed to grade" in res.stdout


def test_hostile_files_beside_a_correct_notebook(loop):
    """Links (gradebook, source, /etc/shadow, /dev/zero, another student, the course secret) and a FIFO beside a
    correct notebook: full points, nothing but the notebook copied, and the report names what was left out."""
    course = loop["course"]
    assert cb.total(loop["scores"]["links_beside"]) == 20
    folder = course / "autograded" / "links_beside" / kit.ASSIGNMENT
    assert sorted(p.name for p in folder.iterdir()) == [f"{kit.NOTEBOOK}.ipynb", "timestamp.txt"]
    assert "[intake] links_beside: not read, not followed: gradebook.db (a symbolic link)" in loop["run"].stderr
    assert "pipe (a FIFO)" in loop["run"].stderr


def test_feedback_is_written_without_hidden_tests(loop):
    for run in loop["feedback"]:
        assert run.returncode == 0, run.stderr[-3000:]
    folder = loop["course"] / "feedback"
    for student in ("perfect", "partial", "tamper_reference"):
        html = (folder / student / kit.ASSIGNMENT / f"{kit.NOTEBOOK}.html").read_text()
        assert "BEGIN HIDDEN TESTS" not in html and "hidden=True" not in html, student
        assert "Traceback (most recent call last)" not in html
    partial = (folder / "partial" / kit.ASSIGNMENT / f"{kit.NOTEBOOK}.html").read_text()
    assert "most likely cause" in partial  # the checks' message for the student is kept
    tampered = (folder / "tamper_reference" / kit.ASSIGNMENT / f"{kit.NOTEBOOK}.html").read_text()
    assert "CheckFailed" in tampered


def test_export_has_every_student_with_manual_points(loop):
    assert loop["export"].returncode == 0, loop["export"].stderr[-2000:]
    with open(loop["course"] / "grades.csv") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    assert set(rows) >= set(EXPECTED) | {"invalid_json", "missing_notebook"} | set(cb.REJECTED)
    assert float(rows["perfect"]["score"]) == 22  # 20 autograded + 2 graded by hand
    assert float(rows["partial"]["score"]) == 10
    assert float(rows["stub"]["score"]) == 0
    assert float(rows["tamper_reference"]["score"]) == 0
    assert float(rows["perfect"]["max_score"]) == 22
    for student in cb.REJECTED:  # the report's "could not grade" is a 0 here too (no score from a linked file)
        assert float(rows[student]["score"]) == 0, student
    assert float(rows["links_beside"]["score"]) == 20
