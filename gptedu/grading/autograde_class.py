"""Autograde a whole class: intake first, nbgrader on a checked copy, failures kept to one notebook, one report.

Usage, from the course folder (``autograder/``)::

    python -m gptedu.grading.autograde_class gpt_from_scratch                    # every student not graded yet
    python -m gptedu.grading.autograde_class gpt_from_scratch --force --student 'a*' --workers 2
    python -m gptedu.grading.autograde_class gpt_from_scratch -- --SandboxExecute.timeout=60   # nbgrader flags
    python -m gptedu.grading.autograde_class gpt_from_scratch --self-check        # solutions as a fake student

Intake (``gptedu.grading.intake``) copies what passes its checks into ``intake/``; ``nbgrader autograde`` grades
that copy in ``--workers`` processes (refused unless the sandbox gives every job limits of its own). nbgrader drops
a student's whole assignment when one notebook fails, so that student's notebooks are then graded one by one. A
notebook rejected at intake or failed in nbgrader gets a defined 0 in the gradebook and, in ``autograded/``, a
notebook saying "could not grade: <reason>" that ``generate_feedback`` turns into the student's feedback.

The report (``autograded/autograde-report-<assignment>.csv``, also printed) has one row per student and notebook.
Exit code 0 when every submitted notebook was graded, 1 otherwise (everyone else is graded all the same), 2 on a
usage error or when nbgrader stopped before grading.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import fnmatch
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

# jsonschema (imported by nbformat and nbgrader) compiles 39 Lark grammars at import when rfc3987-syntax is installed
# (jupyter-events pulls it in): 1.4 CPU seconds in each grading process, for "iri" formats no notebook schema uses.
# This process and the nbgrader it starts skip them.
SKIP_IRI_GRAMMARS = "import sys; sys.modules.setdefault('rfc3987_syntax', None)"
exec(SKIP_IRI_GRAMMARS)

from gptedu.grading import intake  # noqa: E402

SELF_CHECK_STUDENT = "gptedu-selfcheck"
PLACEHOLDER_KEY = "gptedu_could_not_grade"


@dataclass
class Row:
    student: str
    notebook: str
    status: str  # "graded", "failed to grade", "not submitted"
    score: float
    max_score: float
    needs_manual_grade: bool
    message: str


# ------------------------------------------------------------------------------------------------- grading
def _students(course: Path, assignment: str, pattern: str) -> list[str]:
    submitted = course / "submitted"
    if not submitted.is_dir():
        return []
    return sorted(e.name for e in os.scandir(submitted)
                  if fnmatch.fnmatchcase(e.name, pattern) and not e.name.startswith(".")
                  and os.path.lexists(os.path.join(e.path, assignment)))


def _needs_grading(course: Path, assignment: str, student: str, force: bool) -> bool:
    """nbgrader's rule: grade when forced, never graded, or handed in again (newer ``timestamp.txt``)."""
    dest = course / "autograded" / student / assignment
    if force or not dest.is_dir():
        return True
    from nbgrader.utils import parse_utc

    try:
        new = (course / "submitted" / student / assignment / "timestamp.txt").read_text().strip()
        old = (dest / "timestamp.txt").read_text().strip()
        return parse_utc(new) > parse_utc(old)
    except (OSError, ValueError):
        return False


class GradingStopped(RuntimeError):
    """nbgrader stopped before grading a student (configuration, sandbox, gradebook): no grade was changed."""


def _autograde(course: Path, assignment: str, folder: str, extra: list[str], *, student: str = "*",
               notebook: str = "*", log: Path | None = None) -> subprocess.Popen:
    """Start one ``nbgrader autograde`` on a staging folder; its output goes to ``log``, else to a pipe."""
    nbgrader = f"{SKIP_IRI_GRAMMARS}; sys.argv[0] = 'nbgrader'; from nbgrader.apps.nbgraderapp import main; main()"
    args = [sys.executable, "-c", nbgrader, "autograde", assignment, "--force", f"--student={student}",
            f"--notebook={notebook}", *extra]
    with open(log, "w") if log else contextlib.nullcontext(subprocess.PIPE) as out:
        return subprocess.Popen(args, cwd=course, env=intake.nbgrader_env(**{intake.ENV: folder}), stdout=out,
                                stderr=subprocess.STDOUT, text=True, errors="replace")


def _wait(proc: subprocess.Popen, log: Path | None = None, echo: bool = False) -> tuple[int, str]:
    """The exit code and output of an ``_autograde`` run, its piped output echoed to stderr when ``echo``."""
    if log is not None:
        return proc.wait(), log.read_text(errors="replace")
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if echo:
            sys.stderr.write(line)
    return proc.wait(), "".join(lines)


def _stamp(path: Path) -> tuple[int, int] | None:
    """Identity and time of a file (None when absent): a notebook nbgrader wrote in this run has a new one."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def _failed_students(assignment: str, log: str) -> set[str]:
    """The students nbgrader reports it could not process (it then removed their autograded folder)."""
    return set(re.findall(rf"error processing assignment '{re.escape(assignment)}' for student '(.+?)'", log))


def _last_error(log_text: str) -> str:
    lines = [ln.strip() for ln in log_text.splitlines()]
    errors = [ln for ln in lines if re.match(r"^[\w.]*(Error|Exception|Interrupt|Exit)\b", ln)]
    return (errors[-1] if errors else "see the autograde log")[:300]


def _stopped(code: int, log: str, who: str) -> GradingStopped:
    tail = "\n".join(log.strip().splitlines()[-15:])
    return GradingStopped(f"nbgrader autograde stopped (exit code {code}) before grading {who}; no grade was "
                          f"changed. Its last lines:\n{tail}")


def zero_notebook(course: Path, assignment: str, student: str, notebook: str, message: str,
                  timestamp: str = "") -> None:
    """A defined 0 for one notebook: every grade of it 0 in the gradebook (no earlier score kept, nothing left
    for manual grading) and a short notebook in ``autograded/`` that says why, for formgrader and the feedback."""
    import nbformat
    from nbgrader.api import Gradebook

    with Gradebook(intake.db_url(course)) as gb:
        gb.update_or_create_student(student)
        gb.update_or_create_submission(assignment, student, **({"timestamp": timestamp} if timestamp else {}))
        snb = gb.find_submission_notebook(notebook, assignment, student)
        for grade in snb.grades:
            grade.auto_score = 0
            grade.manual_score = None
            grade.extra_credit = None
            grade.needs_manual_grade = False
        for comment in snb.comments:
            comment.auto_comment = None
            comment.manual_comment = None
        gb.db.commit()
    folder = course / "autograded" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    if timestamp and not (folder / "timestamp.txt").exists():
        (folder / "timestamp.txt").write_text(timestamp)
    reason = message.removeprefix("could not grade: ")
    text = (f"# {notebook}.ipynb: could not grade\n\n{reason[:1].upper() + reason[1:]}.\n\n"
            "This notebook scores 0 until a readable copy is graded.")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text)])
    nb.metadata[PLACEHOLDER_KEY] = message
    (folder / f"{notebook}.ipynb").unlink(missing_ok=True)
    nbformat.write(nb, folder / f"{notebook}.ipynb")


def grade(course: Path, assignment: str, *, pattern: str = "*", force: bool = False, workers: int = 1,
          extra: list[str] | None = None, sources: dict[str, Path] | None = None,
          quiet: bool = False) -> tuple[dict[tuple[str, str], str], dict[str, list[str]]]:
    """Intake, nbgrader autograde in ``workers`` processes, per-notebook retry of failed students, defined zeros.

    Returns the notebooks that could not be graded (``{(student, notebook): "could not grade: ..."}``) and intake's
    notes per student. Raises :class:`GradingStopped` when nbgrader stopped for another reason than a student's
    notebook (then no grade is changed)."""
    extra = list(extra or [])
    students = sorted(sources) if sources else [
        s for s in _students(course, assignment, pattern) if _needs_grading(course, assignment, s, force)]
    failures: dict[tuple[str, str], str] = {}
    if not students:
        print(f"[autograde_class] nothing to grade for '{assignment}' (graded already? use --force)",
              file=sys.stderr)
        return failures, {}
    staging = intake.stage(course, assignment, students, workers=min(workers, len(students)), sources=sources)
    try:
        for sub in staging.submissions.values():
            for note in sub.notes:
                print(f"[intake] {sub.student}: {note}", file=sys.stderr)
            for nb, message in sub.rejected.items():
                print(f"[intake] {sub.student}/{nb}: {message}", file=sys.stderr)
                failures[(sub.student, nb)] = message
        logs = course / "autograded"
        logs.mkdir(exist_ok=True)

        def path(student: str, nb: str) -> Path:
            return course / "autograded" / student / assignment / f"{nb}.ipynb"

        before = {(s, nb): _stamp(path(s, nb)) for s, sub in staging.submissions.items() for nb in sub.staged}

        def written(student: str, nb: str) -> bool:  # by this run: an older graded copy does not count
            now = _stamp(path(student, nb))
            return now is not None and now != before[(student, nb)]

        runs = []
        for k, folder in enumerate(staging.folders):
            if not any(sub.staged for s, sub in staging.submissions.items() if staging.worker_of[s] == k):
                continue
            echo = len(staging.folders) == 1 and not quiet
            log = None if echo else logs / f"autograde-{assignment}-worker{k}.log"
            runs.append((k, _autograde(course, assignment, folder, extra, log=log), log, echo))
        failed: set[str] = set()
        for k, proc, log_file, echo in runs:
            code, log = _wait(proc, log_file, echo)
            failed |= _failed_students(assignment, log)
            for student, sub in staging.submissions.items():
                if (staging.worker_of[student] == k and student not in failed
                        and any(not written(student, nb) for nb in sub.staged)):
                    raise _stopped(code, log, student)
        # nbgrader removes a student's whole assignment when one notebook fails: grade those one by one
        for student in sorted(failed):
            sub = staging.submissions[student]
            print(f"[autograde_class] {student}: nbgrader failed on this submission; grading its notebooks one by "
                  "one", file=sys.stderr)
            folder = staging.folders[staging.worker_of[student]]
            for nb in sorted(sub.staged):
                before[(student, nb)] = _stamp(path(student, nb))
                code, log = _wait(_autograde(course, assignment, folder, extra, student=glob.escape(student),
                                             notebook=glob.escape(nb)))
                if written(student, nb):
                    continue
                if student not in _failed_students(assignment, log):
                    raise _stopped(code, log, f"{student}/{nb}")
                failures[(student, nb)] = (
                    f"could not grade: nbgrader could not process this notebook ({_last_error(log)}). Your "
                    "instructor has the log; hand the notebook in again only if asked")
                print(f"[autograde_class] {student}/{nb}: {failures[(student, nb)]}\n{log[-3000:]}", file=sys.stderr)
        for (student, nb), message in failures.items():
            zero_notebook(course, assignment, student, nb, message, staging.submissions[student].timestamp)
    finally:
        staging.remove()
    return failures, {s: sub.notes for s, sub in staging.submissions.items()}


def _check_workers(workers: int) -> str:
    """'' when ``workers`` processes may grade side by side, else why not (and what to do)."""
    if workers < 1:
        return "--workers must be at least 1"
    if workers == 1:
        return ""
    from gptedu.grading import sandbox

    mode = sandbox.limits_mode()
    if mode.startswith("cgroup"):
        return ""
    return (f"--workers {workers} needs memory and process limits of its own for every sandboxed job (cgroups), "
            f"and this machine's sandbox has '{mode}' limits: one student's processes could make another "
            "student's notebook fail. Grade with --workers 1, or see autograder/README.md, 'Sandbox'")


# -------------------------------------------------------------------------------------------------- report
def _placeholder_message(path: Path) -> str:
    """The "could not grade" message of a placeholder notebook ('' for a graded notebook)."""
    try:
        if path.stat().st_size > 100_000:
            return ""
        return str(json.loads(path.read_text()).get("metadata", {}).get(PLACEHOLDER_KEY, ""))
    except (OSError, ValueError):
        return ""


def class_report(course: Path, assignment: str, notes: dict[str, list[str]] | None = None) -> list[Row]:
    """One row per submitted student and notebook of ``assignment``, from the gradebook and ``autograded/``."""
    from nbgrader.api import Gradebook, MissingEntry

    rows: list[Row] = []
    notes = notes or {}
    with Gradebook(intake.db_url(course)) as gb:
        notebooks = [nb.name for nb in gb.find_assignment(assignment).notebooks]
        for student in _students(course, assignment, "*"):
            folder = course / "submitted" / student / assignment
            for name in notebooks:
                autograded = course / "autograded" / student / assignment / f"{name}.ipynb"
                max_score = 0.0
                try:
                    snb = gb.find_submission_notebook(name, assignment, student)
                    score, max_score, manual = snb.score, snb.max_score, bool(snb.needs_manual_grade)
                except MissingEntry:
                    score, manual = 0.0, False
                failed = _placeholder_message(autograded) if autograded.is_file() else ""
                if not os.path.lexists(folder / f"{name}.ipynb"):
                    rows.append(Row(student, name, "not submitted", 0.0, max_score, False,
                                    f"{name}.ipynb was not handed in: 0 points"))
                elif failed:
                    rows.append(Row(student, name, "failed to grade", float(score), max_score, False, failed))
                elif not autograded.is_file():
                    rows.append(Row(student, name, "not graded yet", 0.0, max_score, False,
                                    "run autograde_class for this student"))
                else:
                    rows.append(Row(student, name, "graded", float(score), float(max_score), manual,
                                    "; ".join(notes.get(student, []))))
    return rows


def write_report(rows: list[Row], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(Row.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(asdict(row) for row in rows)


def format_report(rows: list[Row]) -> str:
    lines = [f"{'student':<24} {'notebook':<28} {'status':<16} {'score':>12}  message"]
    for r in rows:
        score = f"{r.score:g}/{r.max_score:g}" + ("*" if r.needs_manual_grade else "")
        lines.append(f"{r.student:<24} {r.notebook:<28} {r.status:<16} {score:>12}  {r.message}")
    failed = sum(r.status == "failed to grade" for r in rows)
    lines.append(f"{len(rows)} notebooks: {sum(r.status == 'graded' for r in rows)} graded, {failed} failed to grade, "
                 f"{sum(r.status == 'not submitted' for r in rows)} not submitted (* = needs manual grading)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- self-check
def self_check(course: Path, assignment: str, extra: list[str]) -> int:
    """Grade the instructor's solutions (``source/<assignment>``) as a fake student, report, then remove every
    trace of that student (gradebook, ``autograded/``, ``feedback/``): no row is left in ``grades.csv``."""
    from nbgrader.api import Gradebook, MissingEntry

    student = SELF_CHECK_STUDENT
    try:
        failures, _ = grade(course, assignment, force=True, extra=extra,
                            sources={student: course / "source" / assignment}, quiet=True)
        short = []
        with Gradebook(intake.db_url(course)) as gb:
            for nb in gb.find_assignment(assignment).notebooks:
                snb = gb.find_submission_notebook(nb.name, assignment, student)
                line = f"{nb.name:<32} {snb.score:g}/{snb.max_score:g}"
                if (student, nb.name) in failures:
                    line += "  " + failures[(student, nb.name)]
                print(line)
                if snb.score < snb.max_score:
                    short.append(nb.name)
        if short:
            print(f"self-check FAILED: the solutions lose points in {', '.join(short)}. Check that the hidden tests "
                  "import in the grading kernel (nbgrader's log above) and that `python -m gptedu.grading.verify` "
                  "passes", file=sys.stderr)
        else:
            print(f"self-check passed: the solutions of '{assignment}' get full points")
        return 1 if short else 0
    finally:
        with Gradebook(intake.db_url(course)) as gb:
            with contextlib.suppress(MissingEntry):
                gb.remove_submission(assignment, student)
            with contextlib.suppress(MissingEntry):
                gb.remove_student(student)
        for step in ("autograded", "feedback"):
            shutil.rmtree(course / step / student, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gptedu.grading.autograde_class",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("assignment")
    parser.add_argument("--course", default=".", help="the course folder (where nbgrader_config.py is)")
    parser.add_argument("--student", default="*", help="grade the students whose id matches this glob")
    parser.add_argument("--force", action="store_true", help="grade again students already graded")
    parser.add_argument("--workers", type=int, default=1, help="nbgrader processes side by side (default 1)")
    parser.add_argument("--report", help="CSV report (default: autograded/autograde-report-<assignment>.csv)")
    parser.add_argument("--self-check", action="store_true",
                        help="grade the instructor's solutions as a fake student, then remove it")
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []  # passed to nbgrader autograde as they are
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    course = Path(args.course).resolve()
    clash = [a for a in extra if a.split("=")[0] in ("--student", "--force", "--notebook")]
    if not (course / "nbgrader_config.py").is_file():
        problem = f"{course} has no nbgrader_config.py: run this from the course folder or pass --course"
    elif clash:
        problem = f"{clash[0]} after --: use this command's own --student / --force (before --)"
    else:
        problem = _check_workers(args.workers)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        if args.self_check:
            return self_check(course, args.assignment, extra)
        _, notes = grade(course, args.assignment, pattern=args.student, force=args.force, workers=args.workers,
                         extra=extra)
    except GradingStopped as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    rows = class_report(course, args.assignment, notes)
    report = Path(args.report) if args.report else course / "autograded" / f"autograde-report-{args.assignment}.csv"
    report.parent.mkdir(parents=True, exist_ok=True)
    write_report(rows, report)
    print(format_report(rows))
    print(f"report: {report} ({seconds:.0f} s, {args.workers} worker(s))")
    return 1 if any(r.status == "failed to grade" and fnmatch.fnmatchcase(r.student, args.student) for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
