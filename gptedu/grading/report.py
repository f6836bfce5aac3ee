"""What a check found, written for a student: ``Failure`` (one problem) and ``GradeResult`` (one component)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

# Hidden-test feedback for a run that did not finish: fixed text only (the run's own message is the student's
# code's text, which can carry hidden inputs out). status -> (check, cause)
HIDDEN_STATUS = {
    "not_attempted": ("not attempted", "replace the `raise NotImplementedError()` lines with your code."),
    "error": ("your code raised an error on a hidden case",
              "the message is not shown (it could reveal the hidden inputs). Run your code on other sizes than "
              "the self-check's: a size written into your code, or a shape assumption, is the usual cause."),
    "load_error": ("parameter names and shapes match the exercise",
                   "use exactly the attribute names and layer sizes given in the exercise, for any size."),
    "forbidden": ("no shortcuts (write it yourself)", "this exercise is about writing the computation yourself."),
}


@dataclass
class Failure:
    """One failed check: which check, on which case, which tensor and where, and the most likely cause."""

    check: str
    case: str
    message: str
    cause: str = ""
    tensor: str = ""
    status: str = "failed"  # "failed", "not_attempted", "error", "load_error", "forbidden"

    def render(self, hidden: bool = False) -> str:
        """The failure for the student. ``hidden=True`` (a hidden test's feedback) names the check and the likely
        cause only: never the case (sizes, seeds, inputs), expected values or what the student's code produced (a
        run that did not finish, whatever its status, gets the fixed text of :data:`HIDDEN_STATUS`)."""
        if hidden:
            check, cause = ((self.check, self.cause) if self.status == "failed" else
                            HIDDEN_STATUS.get(self.status, HIDDEN_STATUS["error"]))
            return f"  ✗ {check}" + (f"\n      most likely cause: {cause}" if cause else "")
        lines = [f"  ✗ {self.check}", f"      case: {self.case}"]
        if self.tensor:
            lines.append(f"      tensor: {self.tensor}")
        lines.extend(f"      {line}" for line in self.message.splitlines())
        if self.cause:
            lines.append(f"      most likely cause: {self.cause}")
        return "\n".join(lines)


@dataclass
class GradeResult:
    """The verdict on one component: points per test cell (grade id), and every failure found."""

    spec: str
    title: str
    points: float
    max_points: float
    per_grade_id: dict[str, tuple[float, float]] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    cases_run: int = 0

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def not_attempted(self) -> bool:
        return bool(self.failures) and all(f.status == "not_attempted" for f in self.failures)

    def report(self, hidden: bool = False) -> str:
        which = "hidden test case" if hidden else "test case"
        which += "" if self.cases_run == 1 else "s"
        if self.passed:
            return f"✓ {self.title}: passed ({self.cases_run} {which})."
        if self.not_attempted:
            return (f"… {self.title}: not attempted yet ({self.failures[0].message.rstrip('.')}).\n"
                    "  Replace the `raise NotImplementedError()` lines with your code, run the cell, then this check.")
        # One failure per check is enough to act on: the count is of the distinct problems, all of them listed.
        problems: list[Failure] = []
        for failure in self.failures:
            if all((failure.check, failure.status) != (p.check, p.status) for p in problems):
                problems.append(failure)
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        head = f"✗ {self.title}: {count} found ({self.cases_run} {which})."
        return head + "\n" + "\n".join(f.render(hidden) for f in problems)


def tensor_failure(check: str, case: str, name: str, expected: torch.Tensor, found, atol: float, rtol: float = 0.0,
                   cause: str = "") -> Failure | None:
    """Compare ``found`` with ``expected`` (type, shape, dtype kind, NaNs, values); ``None`` when they agree."""
    if not isinstance(found, torch.Tensor):
        return Failure(check, case, f"expected a tensor, found {type(found).__name__} ({str(found)[:80]}).",
                       cause, name)
    if tuple(found.shape) != tuple(expected.shape):
        return Failure(check, case, f"expected shape {tuple(expected.shape)}, found shape {tuple(found.shape)}.",
                       cause or "check which dimensions your code keeps, concatenates or transposes.", name)
    if expected.is_floating_point():
        found_f = found.double()
        if torch.isnan(found_f).any():
            pos = tuple(torch.nonzero(torch.isnan(found_f))[0].tolist())
            return Failure(check, case, f"found NaN at position {list(pos)}.",
                           cause or "a row with every score at -inf gives NaN after softmax; or 0/0 somewhere.", name)
        exp_f = expected.double()
        diff = (found_f - exp_f).abs()
        allowed = atol + rtol * exp_f.abs()
        if bool((diff > allowed).any()):
            flat = int(torch.argmax(diff - allowed))
            pos = [int(p) for p in torch.unravel_index(torch.tensor(flat), diff.shape)] if diff.dim() else []
            at = tuple(pos)  # indexes a 0-dim tensor too
            tol = f"{atol:g}" + (f" + {rtol:g}*|expected|" if rtol else "")
            msg = (f"max |error| {float(diff.max()):.6g} (tolerance {tol}); first bad value at position {pos}: "
                   f"expected {float(exp_f[at]):.6g}, found {float(found_f[at]):.6g}.")
            return Failure(check, case, msg, cause, name)
        return None
    if not torch.equal(found.long() if not found.is_floating_point() else found, expected.long()):
        bad = torch.nonzero(found.to(expected.dtype) != expected)
        pos = bad[0].tolist() if len(bad) else []
        at = tuple(pos)
        exp_v = expected[at].item() if pos or expected.dim() == 0 else "?"
        got_v = found[at].item() if pos or found.dim() == 0 else "?"
        return Failure(check, case, f"{len(bad)} value(s) differ; first at position {pos}: expected {exp_v}, "
                                    f"found {got_v}.", cause, name)
    return None
