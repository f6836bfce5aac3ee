"""The catalogue of wrong (and correct-but-unusual) student answers in ``tests/mistakes/<component>/<name>.py``.

Each file is what a student would type into the answer cell of a part-1 notebook, preceded by a preamble that is
never executed by the harness (it repeats what the notebook's setup cell imports, so the file reads and lints on its
own) and three constants:

* ``COMPONENT``: the graded component the answer belongs to (``ALSO``: further components the same cell defines);
* ``EXPECT``: ``"caught"`` (must lose points in its own component), ``"undetectable"`` (known to pass: no observable
  effect, see the docstring), or ``"full"`` (correct but unusual: must get full points);
* ``HINTS``: words of which at least one should appear in the failure message (the likely cause); empty when no
  specific cause can be named;
* ``CAUSE_NAMED`` (default ``True``): ``False`` marks a mistake that the checks catch with only a generic cause; the
  report lists those as suggestions for better messages.

The line ``# --- answer cell ---`` separates that preamble from the code injected into a notebook's answer cell.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
MARKER = "# --- answer cell ---"
EXPECTATIONS = ("caught", "undetectable", "full")


@dataclass(frozen=True)
class Entry:
    """One student answer from the catalogue."""

    path: Path
    component: str
    also: tuple[str, ...]
    expect: str
    hints: tuple[str, ...]
    doc: str
    cause_named: bool = True

    @property
    def name(self) -> str:
        return f"{self.path.parent.name}/{self.path.stem}"

    @property
    def title(self) -> str:
        return self.doc.strip().splitlines()[0]

    @property
    def effect(self) -> str:
        """The docstring's "Expected effect" paragraph, on one line."""
        text = self.doc.split("Expected effect:", 1)[-1] if "Expected effect:" in self.doc else self.doc
        return " ".join(text.split())

    @property
    def components(self) -> tuple[str, ...]:
        return (self.component, *self.also)

    @property
    def source(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def preamble(self) -> str:
        """The code before the marker: the imports the notebook's setup cell provides, and the constants."""
        return self.source.split(MARKER, 1)[0]

    @property
    def answer_cell(self) -> str:
        """The code after the marker: what goes into the notebook's answer cell."""
        return self.source.split(MARKER, 1)[1].strip() + "\n"



def _constant(tree: ast.Module, name: str, default=None):
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    return default


def load(path: Path) -> Entry:
    source = path.read_text(encoding="utf-8")
    if MARKER not in source:
        raise ValueError(f"{path}: no '{MARKER}' line separating the preamble from the answer cell.")
    tree = ast.parse(source)
    doc = ast.get_docstring(tree) or ""
    component = _constant(tree, "COMPONENT")
    expect = _constant(tree, "EXPECT")
    if not doc or component is None or expect not in EXPECTATIONS:
        raise ValueError(f"{path}: needs a docstring, COMPONENT and EXPECT in {EXPECTATIONS}.")
    return Entry(
        path=path,
        component=component,
        also=tuple(_constant(tree, "ALSO", ())),
        expect=expect,
        hints=tuple(_constant(tree, "HINTS", ())),
        doc=doc,
        cause_named=bool(_constant(tree, "CAUSE_NAMED", True)),
    )


def entries() -> list[Entry]:
    """Every catalogued answer, sorted by folder then name."""
    files = sorted(p for p in HERE.glob("*/*.py") if not p.name.startswith("_") and p.parent.name != "baseline")
    return [load(p) for p in files]
