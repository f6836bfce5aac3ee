"""Checks for the notebook exercises, comparing the student's code with the ``gptedu`` reference.

In a notebook::

    from gptedu.grading import check
    check("head", Head)                 # visible self-check: prints a report, raises CheckFailed on failure
    check("head", Head, hidden=True)    # the hidden test cell: says the hidden tests run when graded (they
                                        # derive from the course secret; the grader sets the cell's score)

Programmatically::

    from gptedu.grading import grade_component
    result = grade_component("head", Head)      # GradeResult: .points, .max_points, .failures, .report()

Layout: ``components`` (one ``Component`` per exercise: cases + compare, uses the reference), ``runner``
(``run_case``, torch only — safe to copy into a sandbox that cannot import ``gptedu``), ``report`` (``Failure``,
``GradeResult``), ``api``.

The names below are loaded on first use (PEP 562), so that the nbgrader glue (``gptedu.grading.sandbox_nbgrader``,
``gptedu.grading.verify``), which nbgrader loads for every command, does not import torch until it grades.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "CheckFailed": "gptedu.grading.api",
    "check": "gptedu.grading.api",
    "grade_component": "gptedu.grading.api",
    "run_cases": "gptedu.grading.api",
    "Failure": "gptedu.grading.report",
    "GradeResult": "gptedu.grading.report",
    "run_case": "gptedu.grading.runner",
    "Component": "gptedu.grading.components",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    else:
        try:
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
