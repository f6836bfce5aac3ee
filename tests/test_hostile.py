"""Bad and hostile submissions in the shared class batch (``class_batch``), graded by the real nbgrader.

Every submission ends with a defined grade and a message; none crashes the batch or changes another student's
grade; tampering that makes wrong code pass the in-kernel tests gets no points; a correct but unusual answer gets
full points; grading twice gives the same scores. Needs root and Linux namespaces (the sandbox).
"""

from __future__ import annotations

import json
import re

import class_batch as cb
import course_kit as kit
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not kit.sandbox_possible(),
                                                   reason="the grading sandbox needs root on Linux, with namespaces")]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    return cb.graded_class(tmp_path_factory)


def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def test_batch_completes_and_only_the_unreadable_notebooks_fail(graded):
    run = graded["run"]
    assert run.returncode == 1, "the wrapper reports the notebooks it could not grade"
    assert "[intake] invalid_json/03_single_head: could not grade: the notebook is not valid JSON" in run.stderr
    failed = [line for line in run.stderr.splitlines() if "error processing assignment 'ps1' for student" in line]
    assert failed == [], failed  # intake stopped every broken file before nbgrader
    assert graded["loops"].returncode == 0, graded["loops"].stderr[-3000:]


def test_correct_and_unusual_but_correct_get_full_points(graded):
    for student in ("perfect", "unusual", "prints_megabytes", "prober"):
        assert cb.total(graded["scores"][student]) == 20, (student, cb.all_outputs(graded["course"], student)[:3000])


def test_no_script_of_a_submission_reaches_formgrader(graded):
    """formgrader shows the autograded notebook on the Jupyter server's origin: a student's HTML or JavaScript there
    would run as the instructor. The page formgrader renders holds the student's text, never a live tag."""
    from nbconvert.exporters import HTMLExporter
    from nbgrader.server_extensions.formgrader import handlers
    from traitlets.config import Config

    assert cb.total(graded["scores"]["scripts"]) == 20
    config = Config()
    config.HTMLExporter.template_name = "formgrade"
    config.HTMLExporter.extra_template_basedirs = [handlers.template_path]
    html, _ = HTMLExporter(config=config).from_notebook_node(
        cb.autograded_nb(graded["course"], "scripts"),
        resources={"base_url": "", "notebook_id": "n", "index": 0, "total": 1, "submission_id": "s"})
    assert "Notes &lt;img src=x onerror=" in html  # the student's text is there, as text
    live = re.findall(r"<[a-zA-Z][^<>]*PWNED|<script[^>]*>[^<]*PWNED", html)  # a tag, or a script, carrying it
    assert live == [], live


def test_untouched_stub_gets_zero(graded):
    assert cb.total(graded["scores"]["stub"]) == 0


@pytest.mark.parametrize("student", sorted(cb.TAMPER))
def test_tampering_gets_no_points(graded, student):
    assert cb.total(graded["scores"][student]) == 0
    nb = cb.autograded_nb(graded["course"], student)
    for grade_id in ("test_head_visible", "test_head_hidden"):
        outputs = _cell(nb, grade_id).outputs  # the trusted verdict alone, whatever the submission displayed
        assert [o.get("ename") for o in outputs] == ["CheckFailed"], json.dumps(outputs)[:2000]


@pytest.mark.parametrize("student", ["tamper_torch", "tamper_grading", "tamper_reference"])
def test_what_the_tampered_kernel_displayed_is_not_in_the_graded_notebook(graded, student):
    """The attack makes the kernel's check print success (plain nbgrader scores it: tests/test_trusted_scores.py);
    the graded notebook shows the trusted verdict in its place."""
    for grade_id in ("test_head_visible", "test_head_hidden"):
        cell = _cell(cb.autograded_nb(graded["course"], student), grade_id)
        shown = json.dumps(cell.outputs, ensure_ascii=False)
        assert "all checks passed" not in shown and "✓" not in shown


@pytest.mark.parametrize("student,reason", [
    ("sdpa", "scaled_dot_product_attention"),
    ("wraps_reference", "gptedu"),
    ("import_error", "ModuleNotFoundError"),
    ("kernel_suicide", "KernelDied"),
    ("loop_plain", "KeyboardInterrupt"),
])
def test_bad_code_gets_zero_with_a_reason(graded, student, reason):
    assert cb.total(graded["scores"][student]) == 0
    assert reason in cb.all_outputs(graded["course"], student)


@pytest.mark.parametrize("student,reason", [
    ("loop_swallows_interrupt", "KernelUnresponsive"),
    ("loop_slow_cells", "time limit"),
])
def test_a_stopped_kernel_costs_the_cells_it_stopped_not_the_scores(graded, student, reason):
    """The kernel was stopped after the answer was defined: the message stays in the notebook, and the scores come
    from the trusted run of the student's functions (correct here), as for everyone."""
    assert cb.total(graded["scores"][student]) == 20
    assert reason in cb.all_outputs(graded["course"], student)


def test_megabytes_of_output_are_cut(graded):
    path = graded["course"] / "autograded" / "prints_megabytes" / kit.ASSIGNMENT / f"{kit.NOTEBOOK}.ipynb"
    assert path.stat().st_size < 2_000_000
    assert "output cut by the grader" in path.read_text()


def test_edited_locked_tests_are_restored(graded):
    assert cb.total(graded["scores"]["edits_tests"]) == 0  # the wrong code meets the real tests again
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded['course'] / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook(kit.NOTEBOOK, kit.ASSIGNMENT, "edits_tests")
        assert {g.name: g.max_score for g in nb.grades if g.name.startswith("test_")} == {
            "test_head_visible": 10, "test_head_hidden": 10}


def test_deleted_tests_and_stripped_metadata_are_repaired_and_graded(graded):
    for student in ("deletes_tests", "stripped_metadata", "stripped_no_ids"):
        assert cb.total(graded["scores"][student]) == 20, (student, cb.all_outputs(graded["course"], student)[:3000])


def test_unreadable_and_missing_notebooks_score_zero(graded):
    assert cb.total(graded["scores"]["invalid_json"]) == 0
    placeholder = graded["course"] / "autograded" / "invalid_json" / kit.ASSIGNMENT / f"{kit.NOTEBOOK}.ipynb"
    assert "could not grade" in placeholder.read_text()  # what formgrader and the feedback show
    assert cb.total(graded["scores"]["missing_notebook"]) == 0
    # the submission itself is kept as handed in
    assert "this is not json" in (graded["course"] / "submitted" / "invalid_json" / kit.ASSIGNMENT /
                                  f"{kit.NOTEBOOK}.ipynb").read_text()


def test_grading_twice_gives_the_same_scores(graded):
    """Determinism: a second autograde (--force) of two submissions gives identical per-cell scores."""
    course, env = graded["course"], graded["env"]
    before = {s: graded["scores"][s] for s in ("unusual", "sdpa")}
    res = kit.autograde(course, "--force", "--student", "[us][nd][up]*", env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    regraded = [line for line in res.stderr.splitlines() if "Autograding" in line]
    assert len(regraded) == 2, regraded
    assert {s: kit.cell_scores(course, s) for s in before} == before
