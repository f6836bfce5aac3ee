"""Common mistakes must cost the right points (issue 4): the catalogue in ``tests/mistakes/`` graded in-process.

Every wrong answer must lose points in its own component and in no other component of its notebook (a cascade),
with a failure message that names the likely cause where the checks can tell it; every correct-but-unusual answer
must get full points; the known-undetectable ones must still pass (when a new check catches one, move it to
``EXPECT = "caught"``). ``python -m tests.mistakes.report`` prints the catch-rate table.
"""

from __future__ import annotations

import pytest
from mistakes.catalog import entries
from mistakes.harness import ALL, KNOWN_CASCADES, baseline_results, grade_entry

ENTRIES = entries()


def _summary(outcome) -> str:
    lines = [f"{outcome.entry.name}: {outcome.entry.title}"]
    for component, result in outcome.results.items():
        lines.append(f"  {component}: {result.points:g}/{result.max_points:g}")
        lines.extend(f"    - {f.check}: {f.message[:160]} -> {f.cause[:160]}" for f in result.failures[:3])
    return "\n".join(lines)


def test_catalogue_covers_every_component_of_both_parts():
    wrong = [e for e in ENTRIES if e.expect == "caught"]
    correct = [e for e in ENTRIES if e.expect == "full"]
    assert len(wrong) >= 30, f"only {len(wrong)} wrong implementations in the catalogue"
    assert len(correct) >= 6, f"only {len(correct)} correct-but-unusual implementations in the catalogue"
    missing = sorted(set(ALL) - {e.component for e in wrong})
    assert not missing, f"no catalogued mistake for the graded component(s) {missing}"
    unknown = sorted({c for e in ENTRIES for c in e.components} - set(ALL))
    assert not unknown, f"catalogue names components the registry does not know: {unknown}"


def test_correct_answers_of_every_notebook_get_full_points():
    """The control: the notebooks' own solutions (or the baselines) lose nothing, so every loss below is real."""
    lost = {c: r.report(hidden=True) for c, r in baseline_results().items() if r.points != r.max_points}
    assert not lost, "\n".join(lost.values())


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_catalogued_answer(entry):
    outcome = grade_entry(entry)
    summary = _summary(outcome)
    if entry.expect == "caught":
        assert outcome.caught, f"mistake not caught by its own component's checks\n{summary}"
        if entry.hints and entry.cause_named:
            assert outcome.hint_found, f"no failure message names the likely cause {entry.hints}\n{summary}"
    elif entry.expect == "full":
        lost = {c: outcome.lost(c) for c in outcome.own if outcome.lost(c) > 0}
        assert not lost, f"a correct (unusual) implementation lost points: {lost}\n{summary}"
    else:
        assert not outcome.caught, (
            f"a mistake listed as undetectable is now caught: set EXPECT = 'caught' in {entry.path.name}\n{summary}")
    if entry.name in KNOWN_CASCADES:
        assert outcome.collateral, (
            f"the known cascade of {entry.name} is gone: remove it from KNOWN_CASCADES in tests/mistakes/harness.py")
    else:
        assert not outcome.collateral, (
            f"the mistake also cost points in other components: {outcome.collateral}\n{summary}")


# ------------------------------------------------------------------------------- end to end through nbgrader
E2E = ["head/no_scaling", "head/mask_after_softmax", "head/linear_with_bias", "correct/head_einsum_large_negative"]


@pytest.mark.slow
def test_mistakes_through_real_nbgrader_autograde(tmp_path):
    """A few catalogued answers injected into notebook 03's answer cell, one student each, one autograde batch.

    The wrong ones must score 0 in both test cells, with the grader's verdict naming the likely cause in the visible
    test cell's output and the hidden one showing a cause but no case details; the correct-but-unusual one must score
    full points.
    """
    import os
    import sys
    from pathlib import Path

    pytest.importorskip("nbgrader")
    import course_kit as kit

    by_name = {e.name: e for e in ENTRIES}
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # nbgrader runs `alembic`
    env["GPTEDU_UNSANDBOXED"] = "1"  # the sandbox has its own tests; this one is about the checks' verdicts
    course = kit.make_course(tmp_path, env)
    students = {name: name.replace("/", "__") for name in E2E}
    for name, student in students.items():
        kit.submit(course, student, answer=by_name[name].answer_cell)
    proc = kit.nbgrader(course, "autograde", kit.ASSIGNMENT, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name, student in students.items():
        entry = by_name[name]
        scores = kit.cell_scores(course, student)
        graded = {g: s for g, s in scores.items() if g.startswith("test_head")}
        assert set(graded) == {"test_head_visible", "test_head_hidden"}, scores
        if entry.expect == "full":
            assert graded == {"test_head_visible": 10.0, "test_head_hidden": 10.0}, (name, scores)
            continue
        assert graded == {"test_head_visible": 0.0, "test_head_hidden": 0.0}, (name, scores)
        visible_output = kit.outputs_of(course, student, "test_head_visible")
        assert any(h.lower() in visible_output.lower() for h in entry.hints), (name, entry.hints, visible_output[:2000])
        hidden_output = kit.outputs_of(course, student, "test_head_hidden")  # the check and the cause, no details
        assert "most likely cause" in hidden_output and "of shape" not in hidden_output, (name, hidden_output[:2000])
