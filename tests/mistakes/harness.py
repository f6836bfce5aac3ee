"""Grade catalogued answers through the in-process grading API (``gptedu.grading.grade_component``).

A mistake is graded the way the notebook would grade it: the notebook's namespace is rebuilt from its setup cell and
the *correct* answer cells of every component it holds (from ``autograder/source`` when the notebook is there,
otherwise from ``tests/mistakes/baseline/``), the mistake's file is executed on top (replacing only its own
component), and every component of that notebook is graded. Components of other notebooks live in other kernels and
import their prerequisites from ``gptedu``, so a mistake cannot reach them; they are graded once, from their own
baselines (``baseline_results``).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from gptedu.grading import SPECS, GradeResult, grade_component

from .catalog import MARKER, Entry

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "autograder" / "source" / "gpt_from_scratch"
BASELINE = Path(__file__).resolve().parent / "baseline"

# The graded components of part 1 (notebooks 01-09), in notebook order.
PART1 = [name for name, spec in SPECS.items() if spec.notebook[:2].isdigit() and int(spec.notebook[:2]) <= 9]


# The homework grades "GPT model (forward + generate)" as one 30-point component; the course splits it into two test
# cells of 15. generate() calls the student's own forward, so a forward mistake also costs the generate points: that
# stays inside the homework's component and is reported, not counted as a cascade.
HOMEWORK_COMPONENT = {"gpt_forward": "GPT model", "gpt_generate": "GPT model"}


_NB09 = ("sample_next_token calls the student's own top_k_filter (as a student writes notebook 09; see "
         "tests/mistakes/baseline/09_generation.py until the course's notebook 09 exists), so a top_k_filter bug also "
         "fails sample_next_token's top-k checks. Fix in the course: give sample_next_token the reference filter "
         "under another name, as notebook 07 gives GPTModel its ReferenceDecoder.")
# Cascades found and reported, kept visible here instead of hidden: answer -> why. The test fails when one of them
# disappears (then delete it here) or when a new one appears.
KNOWN_CASCADES = {
    "sampling/topk_drops_to_zero": _NB09,
    "sampling/topk_keeps_k_minus_one": _NB09,
    "sampling/topk_over_batch_axis": _NB09,
    "sampling/topk_returns_values": _NB09,
}


def homework_component(component: str) -> str:
    return HOMEWORK_COMPONENT.get(component, component)


def notebook_of(component: str) -> str:
    return SPECS[component].notebook


def components_of(notebook: str) -> list[str]:
    return [name for name in PART1 if SPECS[name].notebook == notebook]


@cache
def notebook_sources(notebook: str) -> tuple[str, tuple[str, ...], str]:
    """``(setup cell, correct answer cells, origin)`` of a notebook.

    From ``autograder/source`` (first code cell + every ``solution`` cell) when that notebook exists and defines
    every graded target of the notebook; else from ``tests/mistakes/baseline/<notebook>.py``.
    """
    path = SOURCE / f"{notebook}.ipynb"
    if path.is_file():
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = [c for c in cells if c["cell_type"] == "code"]
        setup = "".join(code[0]["source"]) if code else ""
        answers = tuple("".join(c["source"]) for c in code
                        if c.get("metadata", {}).get("nbgrader", {}).get("solution"))
        text = "\n".join(answers)
        if answers and all(SPECS[name].target in text for name in components_of(notebook)):
            return setup, answers, str(path.relative_to(REPO))
    fallback = BASELINE / f"{notebook}.py"
    return "", (fallback.read_text(encoding="utf-8"),), str(fallback.relative_to(REPO))


def _exec(source: str, ns: dict, where: str) -> None:
    exec(compile(source, where, "exec"), ns)  # noqa: S102 - the course's own cells and our catalogue


def notebook_namespace(notebook: str) -> dict:
    """A fresh namespace holding the notebook's setup and its correct answers, as a kernel would after running them."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    setup, answers, origin = notebook_sources(notebook)
    ns: dict = {"__name__": "__main__"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if setup:
            _exec(setup, ns, f"{origin}:setup")
        for i, cell in enumerate(answers):
            _exec(cell, ns, f"{origin}:answer{i}")
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
        """Points lost in other homework components (a cascade): should be empty."""
        own = {homework_component(c) for c in self.own}
        return {c: self.lost(c) for c in self.others if self.lost(c) > 0 and homework_component(c) not in own}

    @property
    def same_component(self) -> dict[str, float]:
        """Points lost in the other test cells of the same homework component (e.g. generate, for a forward bug)."""
        own = {homework_component(c) for c in self.own}
        return {c: self.lost(c) for c in self.others if self.lost(c) > 0 and homework_component(c) in own}

    @property
    def points_lost(self) -> float:
        return sum(self.lost(c) for c in self.results)

    @property
    def text(self) -> str:
        """Every failure message and likely cause of the answer's own components, as one string."""
        parts = []
        for c in self.own:
            for f in self.results[c].failures:
                parts.append(f"[{f.check}] {f.message} -> {f.cause}")
        return "\n".join(parts)

    @property
    def first_cause(self) -> str:
        for c in self.own:
            for f in self.results[c].failures:
                return f.cause or f.message
        return ""

    @property
    def hint_found(self) -> bool | None:
        """Whether a failure message names one of the expected causes; ``None`` when no hint is expected."""
        if not self.entry.hints:
            return None
        low = self.text.lower()
        return any(h.lower() in low for h in self.entry.hints)


def grade_entry(entry: Entry) -> Outcome:
    """Grade every component of the answer's notebook with the answer substituted where it belongs."""
    notebook = notebook_of(entry.component)
    ns = notebook_namespace(notebook)
    # The preamble stands for the notebook's setup cell: it only fills in names the notebook does not define, so
    # e.g. notebook 07's own TransformerDecoder is not replaced by the reference one a preamble imports.
    preamble: dict = {"__name__": ns["__name__"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _exec(entry.preamble, preamble, f"{entry.path}:preamble")
        for name, value in preamble.items():
            ns.setdefault(name, value)
        # Blank lines in place of the preamble keep the line numbers of tracebacks right.
        _exec("\n" * entry.preamble.count("\n") + entry.source.split(MARKER, 1)[1], ns, str(entry.path))
    outcome = Outcome(entry)
    for component in components_of(notebook):
        outcome.results[component] = grade_component(component, ns, hidden=True)
    return outcome


def baseline_results() -> dict[str, GradeResult]:
    """Every part-1 component graded on its notebook's correct answers (the control: all full points)."""
    results = {}
    for notebook in dict.fromkeys(notebook_of(c) for c in PART1):
        ns = notebook_namespace(notebook)
        for component in components_of(notebook):
            results[component] = grade_component(component, ns, hidden=True)
    return results
