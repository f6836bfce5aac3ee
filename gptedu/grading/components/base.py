"""The :class:`Component` description, and helpers shared by the parts' components."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gptedu.grading.report import Failure

# The secret of the public development course: tests and the mistakes suite use it. A real course passes its own
# (created by the instructor, kept in the course folder), so its hidden cases cannot be precomputed.
PUBLIC_DEV_SECRET = b"gptedu public development secret: not for grading a class"


@dataclass(frozen=True)
class Component:
    """One graded exercise: its test cells and points, its cases, and the comparison with the reference.

    ``points``: grade id -> points (``{"test_head_visible": 10, "test_head_hidden": 10}``). ``target``: the name the
    student defines. ``prerequisites``: name in the notebook -> reference class the notebook imports for it.
    ``make_cases(hidden, secret)`` builds plain-data cases; ``compare_fn(case, outputs)`` returns the failures.
    """

    name: str
    title: str
    target: str
    notebook: str
    points: dict[str, int]
    make_cases: Callable[[bool, bytes], list[dict]] = field(repr=False)
    compare_fn: Callable[[dict, dict], list[Failure]] = field(repr=False)
    prerequisites: dict[str, str] = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    @property
    def grade_ids(self) -> dict[str, str]:
        """grade id -> ``"visible"`` or ``"hidden"``."""
        return {gid: ("hidden" if gid.endswith("_hidden") else "visible") for gid in self.points}

    @property
    def max_points(self) -> int:
        return sum(self.points.values())

    def cases(self, hidden: bool, secret: bytes | None = None) -> list[dict]:
        """Plain-data cases; hidden ones derive from ``secret`` (``None``: :data:`PUBLIC_DEV_SECRET`)."""
        key = (bool(hidden), secret if hidden else None)
        if key not in self._cache:
            self._cache[key] = self.make_cases(bool(hidden), secret if secret is not None else PUBLIC_DEV_SECRET)
        return [dict(c) for c in self._cache[key]]  # copies: a run can never alter the cached cases

    def compare(self, case: dict, outputs: dict) -> list[Failure]:
        """Run the reference on ``case`` and list how ``outputs`` (from ``run_case``) differ from it."""
        return self.compare_fn(case, outputs)

    @classmethod
    def from_spec(cls, spec) -> Component:  # facade over the former registry, removed once it is migrated
        return cls(spec.name, spec.title, spec.target, spec.notebook, dict(spec.points),
                   lambda hidden, secret: spec.make_cases(hidden), spec.compare, dict(spec.prerequisites))
