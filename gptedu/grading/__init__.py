"""Checks for the notebook exercises, comparing the student's code with the ``gptedu`` reference.

In a notebook::

    from gptedu.grading import check
    check("head", Head)                 # visible self-check: prints a report, raises CheckFailed on failure
    check("head", Head, hidden=True)    # what the hidden test cell runs

Programmatically::

    from gptedu.grading import grade_component
    result = grade_component("head", Head)      # GradeResult: .points, .max_points, .failures, .report()

Layout: ``specs`` (the registry: cases + compare, uses the reference), ``runner`` (``run_case``, torch only — safe to
copy into a sandbox that cannot import ``gptedu``), ``report`` (``Failure``, ``GradeResult``), ``api``.
"""

from gptedu.grading.api import CheckFailed, check, grade_component, run_cases
from gptedu.grading.report import Failure, GradeResult
from gptedu.grading.runner import run_case
from gptedu.grading.specs import SPECS, Spec, get_spec, spec_for_grade_id

__all__ = [
    "SPECS",
    "CheckFailed",
    "Failure",
    "GradeResult",
    "Spec",
    "check",
    "get_spec",
    "grade_component",
    "run_case",
    "run_cases",
    "spec_for_grade_id",
]
