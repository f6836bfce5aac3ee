"""Notebook 14 (instruction fine-tuning): solutions earn every point, stubs none, typical mistakes lose points.

Same harness as ``test_gpt2_grading`` (the notebook's own cells executed in a fresh namespace, as the sandbox runs
them); the end-to-end nbgrader run of the whole ``gpt2`` assignment is in ``test_notebooks``.
"""

from __future__ import annotations

import nbformat
import pytest
from test_gpt2_grading import SOURCE, notebook_namespace, specs_of

from gptedu.grading import grade_component
from gptedu.grading.components import all_components

SPECS = {c.name: c for c in all_components()}

NOTEBOOK = "14_instruction_finetuning"


@pytest.fixture(scope="module")
def solved():
    return notebook_namespace(NOTEBOOK)


def test_solutions_earn_full_points(solved):
    assert set(specs_of(NOTEBOOK)) == {"format_prompt", "collate_instructions"}
    for spec in specs_of(NOTEBOOK):
        result = grade_component(spec, solved)
        assert result.points == result.max_points > 0, result.report(hidden=True)


def test_untouched_stubs_report_not_attempted():
    ns = notebook_namespace(NOTEBOOK, stub=True)
    for spec in specs_of(NOTEBOOK):
        result = grade_component(spec, ns)
        assert result.points == 0, spec
        assert result.failures[0].status == "not_attempted", result.failures[:1]


def test_header_states_the_points_of_the_test_cells():
    nb = nbformat.read(SOURCE / f"{NOTEBOOK}.ipynb", as_version=4)
    graded = [c.metadata["nbgrader"] for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    total = sum(m["points"] for m in graded)
    assert total == sum(SPECS[s].max_points for s in specs_of(NOTEBOOK)) == 20
    visible = sum(m["points"] for m in graded if m["grade_id"].endswith("_visible"))
    assert f"**Points in this notebook: {total}** (self-checks {visible} + hidden tests {total - visible})" \
        in nb.cells[0].source
    assert {m["grade_id"] for m in graded} == {gid for s in specs_of(NOTEBOOK) for gid in SPECS[s].points}
    part2 = sum(spec.max_points for spec in SPECS.values() if spec.notebook[:3] in ("10_", "11_", "12_", "13_", "14_"))
    assert f"**Part 2 total: {part2} points.**" in nb.cells[0].source


# Its typical mistakes are in the catalogue, tests/mistakes/finetune/ (test_mistakes.py).
