"""In-process grading: ``check(name, obj)`` for the notebooks' cells, ``grade_component(name, obj)`` for tests."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch

from gptedu.grading.components import Component, of_notebook
from gptedu.grading.components import get as get_spec
from gptedu.grading.report import Failure, GradeResult
from gptedu.grading.runner import run_case


class CheckFailed(AssertionError):
    """A failed check. In a notebook it shows the report instead of a traceback (IPython's ``_render_traceback_``)."""

    def __init__(self, report: str):
        super().__init__(report)
        self.report = report

    def _render_traceback_(self) -> list[str]:
        return self.report.splitlines()


def _resolve(spec: Component, obj_or_namespace: Any) -> Any:
    if isinstance(obj_or_namespace, Mapping):
        return obj_or_namespace.get(spec.target)
    return obj_or_namespace


def run_cases(spec: Component, obj: Any, which: str) -> tuple[list[Failure], int]:
    """Run and compare every case of ``which`` (``"visible"``/``"hidden"``); returns (failures, cases run)."""
    failures: list[Failure] = []
    cases = spec.cases(hidden=(which == "hidden"))
    threads = torch.get_num_threads()
    rng_state = torch.get_rng_state()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nbgrader scores a test cell 0 if anything reaches stderr
            for case in cases:
                outputs = run_case(obj, case)
                found = spec.compare(case, outputs)
                failures.extend(found)
                if found and found[0].status in ("not_attempted", "load_error", "forbidden"):
                    break  # the same message would repeat for every case
    finally:
        torch.set_num_threads(threads)
        torch.set_rng_state(rng_state)
    return failures, len(cases)


def earlier_failures_note(spec: Component, namespace: Any) -> str:
    """A line naming the earlier exercises of the notebook that this one calls (its ``prerequisites``) whose own
    self-check fails, or ""."""
    if not isinstance(namespace, Mapping):
        return ""
    failing = []
    for earlier in of_notebook(spec.notebook):
        if earlier.target not in spec.prerequisites or earlier is spec:
            continue
        if namespace.get(earlier.target) is not None and run_cases(earlier, namespace[earlier.target], "visible")[0]:
            failing.append(earlier.target)
    if not failing:
        return ""
    names = " and ".join(f"your {t} from above" for t in failing)
    return (f"\n  Note: {spec.target} uses {names}, which failed its own check. This check ran with a correct "
            f"stand-in for it, so the verdict above is about {spec.target} alone; fix the earlier one there.")


def grade_component(name: str, obj_or_namespace: Any, hidden: bool = True) -> GradeResult:
    """Grade one component in-process: the student's class/function, or a namespace (``globals()``) holding it.
    ``hidden=False`` runs the visible cases only."""
    spec = get_spec(name)
    obj = _resolve(spec, obj_or_namespace)
    per_grade_id: dict[str, tuple[float, float]] = {}
    failures: list[Failure] = []
    total_cases = 0
    for grade_id, which in spec.grade_ids.items():
        if which == "hidden" and not hidden:
            continue
        found, n = run_cases(spec, obj, which)
        total_cases += n
        failures += found
        max_points = float(spec.points[grade_id])
        per_grade_id[grade_id] = (0.0 if found else max_points, max_points)
    return GradeResult(spec.name, spec.title, sum(p for p, _ in per_grade_id.values()),
                       sum(m for _, m in per_grade_id.values()), per_grade_id, failures, total_cases)


def check(name: str, obj_or_namespace: Any, hidden: bool = False) -> None:
    """A notebook cell's self-check (never a score): prints the visible cases' report, or raises
    :class:`CheckFailed` with it. ``hidden=True`` only says that the grader runs the hidden cases (from the course
    secret, which the notebook does not have)."""
    spec = get_spec(name)
    if hidden:
        print(f"{spec.title}: the hidden tests run when your notebook is graded, outside this notebook (other "
              "sizes, seeds and inputs than the self-check's). Passing the self-check above is the best preparation.")
        return
    failures, n = run_cases(spec, _resolve(spec, obj_or_namespace), "visible")
    text = GradeResult(spec.name, spec.title, 0.0, 0.0, {}, failures, n).report() + earlier_failures_note(
        spec, obj_or_namespace)
    if failures:
        raise CheckFailed(text)
    print(text)
