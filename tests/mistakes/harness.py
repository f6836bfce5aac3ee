"""Grade catalogued answers through the in-process grading API (``gptedu.grading.grade_component``).

A mistake is graded the way the notebook would grade it: the notebook's namespace is rebuilt from its setup cell and
the *correct* answer cells of every component it holds (from ``autograder/source`` when the notebook is there,
otherwise from ``tests/mistakes/baseline/``), the mistake's file is executed on top (replacing only its own
component), and every component of that notebook is graded. Components of other notebooks live in other kernels and
import their prerequisites from ``gptedu``, so a mistake cannot reach them; they are graded once, from their own
baselines (``baseline_results``).
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import types
import warnings
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from gptedu.grading import GradeResult, grade_component
from gptedu.grading.components import all_components

from .catalog import MARKER, Entry

SPECS = {c.name: c for c in all_components()}

REPO = Path(__file__).resolve().parents[2]
SOURCES = (REPO / "autograder" / "source" / "gpt_from_scratch", REPO / "autograder" / "source" / "gpt2")
BASELINE = Path(__file__).resolve().parent / "baseline"

# The graded components of part 1 (notebooks 01-09) and of both parts, in notebook order.
PART1 = [name for name, spec in SPECS.items() if spec.notebook[:2].isdigit() and int(spec.notebook[:2]) <= 9]
ALL = list(SPECS)


# The series' points table counts "GPT model (forward + generate)" as one 30-point exercise, graded in two test cells
# of 15. generate() is graded with a correct stand-in forward built from the model's own parts, so a forward mistake
# costs the forward cells only; a generate written around its own broken forward's output (e.g. a forward that
# returns the last position only) still loses generate points: that stays inside that exercise and is reported,
# not counted as a cascade.
EXERCISE_OF = {"gpt_forward": "GPT model", "gpt_generate": "GPT model"}


# Cascades found and reported, kept visible here instead of hidden: answer -> why. The test fails when one of them
# disappears (then delete it here) or when a new one appears.
KNOWN_CASCADES: dict[str, str] = {}  # none left: sample_next_token is graded with a correct top_k_filter stand-in


def exercise_of(component: str) -> str:
    return EXERCISE_OF.get(component, component)


def notebook_of(component: str) -> str:
    return SPECS[component].notebook


def components_of(notebook: str) -> list[str]:
    return [name for name in ALL if SPECS[name].notebook == notebook]


@cache
def notebook_sources(notebook: str) -> tuple[str, tuple[str, ...], str]:
    """``(setup cell, correct answer cells, origin)`` of a notebook.

    From ``autograder/source`` (first code cell, every ``solution`` cell, and the cells of plain imports and assignments
    that the answers may use) when that notebook exists and defines
    every graded target of the notebook; else from ``tests/mistakes/baseline/<notebook>.py``.
    """
    path = next((folder / f"{notebook}.ipynb" for folder in SOURCES if (folder / f"{notebook}.ipynb").is_file()),
                SOURCES[0] / f"{notebook}.ipynb")
    if path.is_file():
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = [c for c in cells if c["cell_type"] == "code"]
        setup = "".join(code[0]["source"]) if code else ""
        answers = tuple("".join(c["source"]) for c in code[1:]
                        if c.get("metadata", {}).get("nbgrader", {}).get("solution")
                        or (not c.get("metadata", {}).get("nbgrader", {}).get("grade")
                            and _is_plain("".join(c["source"]))))
        text = "\n".join(answers)
        if answers and all(SPECS[name].target in text for name in components_of(notebook)):
            return setup, answers, str(path.relative_to(REPO))
    fallback = BASELINE / f"{notebook}.py"
    return "", (fallback.read_text(encoding="utf-8"),), str(fallback.relative_to(REPO))


def _is_plain(source: str) -> bool:
    """A cell of imports and assignments only (e.g. ``from gptedu.gpt2 import KVCache``), which the answers use."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    return all(isinstance(node, ast.Import | ast.ImportFrom | ast.Assign) for node in tree.body)


def _exec(source: str, ns: dict, where: str) -> None:
    exec(compile(source, where, "exec"), ns)  # noqa: S102 - the course's own cells and our catalogue


def notebook_namespace(notebook: str) -> dict:
    """A fresh namespace holding the notebook's setup and its correct answers, as a kernel would after running them."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    setup, answers, origin = notebook_sources(notebook)
    ns: dict = {"__name__": "__main__", "QUICK": True}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if setup:
            _exec(setup, ns, f"{origin}:setup")
        for i, cell in enumerate(answers):
            try:
                _exec(cell, ns, f"{origin}:answer{i}")
            except Exception:  # noqa: BLE001 - a plain cell that needs a demo's names: the answers do not use it
                if "### BEGIN SOLUTION" in cell:
                    raise
    return ns


@dataclass
class Outcome:
    """What grading one catalogued answer found, per component of its notebook."""

    entry: Entry
    results: dict[str, GradeResult] = field(default_factory=dict)

    def lost(self, component: str) -> float:
        r = self.results[component]
        return r.max_points - r.points

    @property
    def own(self) -> tuple[str, ...]:
        return tuple(c for c in self.entry.components if c in self.results)

    @property
    def others(self) -> tuple[str, ...]:
        return tuple(c for c in self.results if c not in self.entry.components)

    @property
    def caught(self) -> bool:
        return any(self.lost(c) > 0 for c in self.own)

    @property
    def collateral(self) -> dict[str, float]:
        """Points lost in other exercises (a cascade): should be empty."""
        own = {exercise_of(c) for c in self.own}
        return {c: self.lost(c) for c in self.others if self.lost(c) > 0 and exercise_of(c) not in own}

    @property
    def same_component(self) -> dict[str, float]:
        """Points lost in the other test cells of the same exercise (e.g. generate, for a forward bug)."""
        own = {exercise_of(c) for c in self.own}
        return {c: self.lost(c) for c in self.others if self.lost(c) > 0 and exercise_of(c) in own}

    @property
    def points_lost(self) -> float:
        return sum(self.lost(c) for c in self.results)

    @property
    def text(self) -> str:
        """Every failure message and likely cause of the answer's own components, as one string; where only hidden
        cases failed, also the text the hidden test's feedback shows (its check and cause, nothing of the case)."""
        parts = []
        for c in self.own:
            result = self.results[c]
            hidden_only = all(got == most for gid, (got, most) in result.per_grade_id.items()
                              if not gid.endswith("_hidden"))
            for f in result.failures:
                parts.append(f"[{f.check}] {f.message} -> {f.cause}")
                if hidden_only:
                    parts.append(f.render(hidden=True))
        return "\n".join(parts)

    @property
    def first_cause(self) -> str:
        """The likely cause the student reads: the first failure naming an expected cause, else the first failure."""
        failures = [f for c in self.own for f in self.results[c].failures]
        hints = [h.lower() for h in self.entry.hints]
        for f in failures:
            if any(h in f"[{f.check}] {f.message} -> {f.cause}".lower() for h in hints):
                return f.cause if any(h in f.cause.lower() for h in hints) else f"{f.message} -> {f.cause}"
        return (failures[0].cause or failures[0].message) if failures else ""

    @property
    def hint_found(self) -> bool | None:
        """Whether a failure message names one of the expected causes; ``None`` when no hint is expected."""
        if not self.entry.hints:
            return None
        low = self.text.lower()
        return any(h.lower() in low for h in self.entry.hints)


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _functions_of(obj) -> list[types.FunctionType]:
    """The functions of a function or class (methods, static/class methods, properties), decorators unwrapped."""
    values = [obj] if isinstance(obj, types.FunctionType) else list(vars(obj).values()) if isinstance(obj, type) else []
    found = []
    for value in values:
        for candidate in (value, getattr(value, "__func__", None), getattr(value, "fget", None)):
            if isinstance(candidate, types.FunctionType):
                found.append(inspect.unwrap(candidate))
    return found


def global_names_used(obj, ns: dict) -> set[str]:
    """Every global name the code of ``obj`` can look up in ``ns``, following the notebook's own classes/functions."""
    seen: set[str] = set()
    todo = [obj]
    while todo:
        for fn in _functions_of(todo.pop()):
            if fn.__globals__ is not ns:
                continue
            for name in _code_names(fn.__code__) - seen:
                seen.add(name)
                if name in ns:
                    todo.append(ns[name])
    return seen


@cache
def _baseline_result(component: str) -> GradeResult:
    return grade_component(component, notebook_namespace(notebook_of(component)), hidden=True)


def grade_entry(entry: Entry, full: bool = False) -> Outcome:
    """Grade every component of the answer's notebook with the answer substituted where it belongs.

    A component whose code cannot reach any name the answer (re)defines is graded exactly as in the baseline, so its
    cached baseline result is reused (grading is deterministic); ``full=True`` grades it again anyway.
    """
    notebook = notebook_of(entry.component)
    ns = notebook_namespace(notebook)
    before = dict(ns)
    # Only the answer cell runs, as in the notebook: its preamble (imports for reading the file on its own) stands
    # for the notebook's setup cell, which has already run. Blank lines keep the line numbers of tracebacks right.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _exec("\n" * entry.preamble.count("\n") + entry.source.split(MARKER, 1)[1], ns, str(entry.path))
    changed = {name for name, value in ns.items() if name not in before or before[name] is not value}
    outcome = Outcome(entry)
    for component in components_of(notebook):
        target = SPECS[component].target
        reachable = {target} | global_names_used(ns.get(target), ns)
        if full or component in entry.components or reachable & changed:
            outcome.results[component] = grade_component(component, ns, hidden=True)
        else:
            outcome.results[component] = _baseline_result(component)
    return outcome


def baseline_results() -> dict[str, GradeResult]:
    """Every component graded on its notebook's correct answers (the control: all full points)."""
    return {component: _baseline_result(component) for component in ALL}
