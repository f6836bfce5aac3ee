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


PROMPT_RETURN = 'return text + "\\n\\n### Response:\\n"'
# (spec, replacement in the solution, words expected in the report): each a realistic wrong answer.
MISTAKES = [
    ("format_prompt", {'    if entry.get("input", "").strip():\n        text +=': "    text +="},
     "leave the whole '### Input:' section out"),
    ("format_prompt", {'if entry.get("input", "").strip():': 'if entry.get("input", ""):'}, "empty (or blank)"),
    ("format_prompt", {PROMPT_RETURN: PROMPT_RETURN + ' + entry["output"]'}, "the output is the target"),
    ("format_prompt", {PROMPT_RETURN: 'return text + "\\n\\n### Response:"'}, "exactly one newline"),
    ("format_prompt", {'text += "\\n\\n### Input:\\n" + entry["input"]': 'pass'}, "the input is missing"),
    ("collate_instructions", {"            y[j] = ignore_index\n": "            pass\n"}, "prompt is not masked"),
    ("collate_instructions", {"range(min(len(prompt) - 1, len(y)))": "range(min(len(prompt), len(y)))"},
     "one target too many is masked"),
    ("collate_instructions", {"range(min(len(prompt) - 1, len(y)))": "range(min(len(prompt) - 2, len(y)))"},
     "last prompt token is not masked"),
    ("collate_instructions", {"targets = torch.full((len(batch), length), ignore_index, dtype=torch.long)":
                              "targets = torch.full((len(batch), length), pad_id, dtype=torch.long)"},
     "padding in the targets is pad_id"),
    ("collate_instructions", {"inputs[row, : len(x)] = torch.tensor(x, dtype=torch.long)":
                              "inputs[row, length - len(x):] = torch.tensor(x, dtype=torch.long)"},
     "padded on the left"),
    ("collate_instructions", {"        y = s[1:][:length]\n": "        y = s[:-1][:length]\n"},
     "targets are not shifted"),
    ("collate_instructions", {"    if max_length is not None:\n        length = min(length, max_length)\n": ""},
     "max_length is ignored"),
    ("collate_instructions", {"inputs = torch.full((len(batch), length), pad_id, dtype=torch.long)":
                              "inputs = torch.full((len(batch), length), pad_id, dtype=torch.float)"},
     "torch.long"),
]


@pytest.mark.parametrize("spec, replace, hint", MISTAKES, ids=[f"{m[0]}-{i}" for i, m in enumerate(MISTAKES)])
def test_mistakes_lose_points_with_the_right_hint(spec, replace, hint):
    ns = notebook_namespace(NOTEBOOK, replace)
    result = grade_component(spec, ns)
    assert result.points < result.max_points, f"{spec} kept every point with {replace}"
    report = result.report(hidden=True)
    assert hint.lower() in report.lower(), report
