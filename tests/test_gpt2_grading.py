"""Part 2's graded notebooks (assignment ``gpt2``): solutions earn every point, stubs none, typical mistakes none.

The code under test is the notebook's own: its cells are executed in a fresh namespace, as a kernel would, with the
solution regions kept (full points), replaced by the student stub (zero), or edited into a realistic mistake (zero
for that component, with the expected hint in the report).
"""

from __future__ import annotations

import ast
import os
import re
import sys
import types
from pathlib import Path

import nbformat
import pytest

from gptedu.grading import grade_component
from gptedu.grading.components import all_components

SPECS = {c.name: c for c in all_components()}

os.environ.setdefault("MPLBACKEND", "Agg")
SOURCE = Path(__file__).resolve().parents[1] / "autograder" / "source" / "gpt2"
_SOLUTION = re.compile(r"^([ \t]*)### BEGIN SOLUTION.*?### END SOLUTION[ \t]*$", re.MULTILINE | re.DOTALL)
_counter = 0


def notebook_namespace(name: str, replace: dict[str, str] | None = None, stub: bool = False) -> dict:
    """Run the notebook's code cells (not its test cells) in a fresh module namespace and return it."""
    global _counter
    _counter += 1
    nb = nbformat.read(SOURCE / f"{name}.ipynb", as_version=4)
    mod = types.ModuleType(f"__student_{name}_{_counter}")
    sys.modules[mod.__name__] = mod
    ns = mod.__dict__
    ns["QUICK"] = True
    unused = set(replace or {})
    first_code = True
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or meta.get("grade"):
            continue
        # Like the sandbox: the setup cell, the answers, and cells of plain imports/assignments (demos are skipped).
        if not (first_code or meta.get("solution") or _is_simple(cell.source)):
            continue
        first_code = False
        source = cell.source
        if meta.get("solution"):
            for old, new in (replace or {}).items():
                if old in source:
                    source = source.replace(old, new)
                    unused.discard(old)
            if stub:
                source = _SOLUTION.sub(lambda m: f"{m.group(1)}raise NotImplementedError()", source)
        source = source.replace("plt.show()", "plt.close('all')")
        try:
            exec(compile(source, f"<{name}>", "exec"), ns)  # noqa: S102 - the course's own notebook
        except NotImplementedError:
            if not stub:
                raise
    assert not unused, f"mistake snippets not found in the notebook: {sorted(unused)}"
    return ns


def _is_simple(source: str) -> bool:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    return all(isinstance(node, ast.Import | ast.ImportFrom | ast.Assign) for node in tree.body)


def specs_of(notebook: str) -> list[str]:
    return [name for name, spec in SPECS.items() if spec.notebook == notebook]


NOTEBOOKS = ["10_gpt2_blocks", "11_bpe_tokenizer", "12_pretraining_sampling", "13_kv_cache"]


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_solutions_earn_full_points(notebook):
    ns = notebook_namespace(notebook)
    assert specs_of(notebook)
    for spec in specs_of(notebook):
        result = grade_component(spec, ns)
        assert result.points == result.max_points > 0, result.report(hidden=True)


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_untouched_stubs_earn_nothing(notebook):
    ns = notebook_namespace(notebook, stub=True)
    for spec in specs_of(notebook):
        result = grade_component(spec, ns)
        assert result.points == 0, spec
        assert result.failures and result.failures[0].status == "not_attempted", (spec, result.failures[:1])


def test_notebook_headers_state_the_points():
    for notebook in NOTEBOOKS:
        nb = nbformat.read(SOURCE / f"{notebook}.ipynb", as_version=4)
        cells = [c.metadata.get("nbgrader", {}) for c in nb.cells]
        total = sum(m.get("points", 0) for m in cells if m.get("grade"))
        registry = sum(SPECS[s].max_points for s in specs_of(notebook))
        assert total == registry
        assert f"Points in this notebook: {total}**" in nb.cells[0].source
        part2 = sum(spec.max_points for spec in SPECS.values() if spec.notebook[:3] in ("10_", "11_", "12_", "13_",
                                                                                          "14_"))
        assert f"Part 2 total: {part2} points" in nb.cells[0].source
        ids = {m["grade_id"] for m in cells if m.get("grade")}
        assert ids == {gid for s in specs_of(notebook) for gid in SPECS[s].points}


# The typical mistakes of notebooks 10-14 are in the catalogue, tests/mistakes/ (test_mistakes.py).
