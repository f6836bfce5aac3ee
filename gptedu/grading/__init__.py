"""Checks for the notebook exercises, comparing the student's code with the ``gptedu`` reference.

In a notebook: ``check("head", Head)`` prints a self-check report (raises ``CheckFailed`` on failure);
``check("head", Head, hidden=True)`` is the hidden test cell. Programmatically: ``grade_component("head", Head)``
returns a ``GradeResult`` (``.points``, ``.max_points``, ``.failures``, ``.report()``).

These names are imported on first use (PEP 562): the nbgrader glue (``sandbox_nbgrader``, ``verify``), which
nbgrader loads for every command, must not import torch until it grades.
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
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
