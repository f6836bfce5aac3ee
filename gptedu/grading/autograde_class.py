"""Autograde a whole class with nbgrader, then say which submissions were graded and which could not be.

``nbgrader autograde`` writes 0 into the gradebook both for a notebook that scored 0 and for one it could not
process (invalid JSON, a crash), and it stops nothing when one student fails. This wrapper runs the real
``nbgrader autograde`` unchanged, then reads the gradebook (``nbgrader.api.Gradebook``) and the course folders and
writes a report with one row per student and notebook::

    status     graded | failed to grade | not submitted
    score      points / max points (autograded part), needs manual grading (free-text answers)
    message    why it failed (e.g. "not valid JSON at line 3"), for the instructor and the student

Usage, from the course folder (``autograder/``)::

    python -m gptedu.grading.autograde_class gpt_from_scratch                  # all students
    python -m gptedu.grading.autograde_class gpt_from_scratch --report r.csv -- --force --student=alice
    #                                                                       (after --: flags for nbgrader autograde)

Exit code 0 when every submitted notebook was graded, 1 otherwise (the others are still graded). The time limits
(per cell and per notebook) and the sandbox are set in ``nbgrader_config.py`` (``configure_nbgrader``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Row:
    student: str
    notebook: str
    status: str  # "graded", "failed to grade", "not submitted"
    score: float
    max_score: float
    needs_manual_grade: bool
    message: str


def _notebook_problem(path: Path) -> str:
    """Why nbgrader will not be able to read this notebook ('' if it can)."""
    import nbformat

    if path.is_symlink():
        return "the notebook is a symbolic link; hand in the file itself"
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return "the file is not UTF-8 text: it is not a notebook (was another file renamed to .ipynb?)"
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return (f"the notebook is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); it was "
                "probably damaged while saving or edited by hand. Open it in Jupyter, save it again and resubmit")
    try:
        nbformat.validate(nbformat.reads(text, as_version=4))
    except Exception as exc:  # noqa: BLE001 - any validation error
        return f"the file is JSON but not a valid notebook ({str(exc).splitlines()[0][:200]})"
    return ""


def preflight(course: Path, assignment: str, notebooks: list[str]) -> dict[tuple[str, str], str]:
    """Problems nbgrader would choke on, per (student, notebook), found before grading."""
    problems: dict[tuple[str, str], str] = {}
    submitted = course / "submitted"
    for folder in sorted(submitted.glob(f"*/{assignment}")):
        student = folder.parent.name
        links = [p.name for p in folder.rglob("*") if p.is_symlink()]
        for name in notebooks:
            path = folder / f"{name}.ipynb"
            if path.exists() or path.is_symlink():
                problem = _notebook_problem(path)
                if problem:
                    problems[(student, name)] = problem
        if links:
            problems[(student, "*")] = f"the submission contains symbolic links ({', '.join(links[:5])}); they " \
                                       "were not followed"
    return problems


def class_report(course: Path, assignment: str, problems: dict[tuple[str, str], str] | None = None) -> list[Row]:
    """One row per submitted student and notebook of ``assignment``, from the gradebook and the folders."""
    from nbgrader.api import Gradebook, MissingEntry

    problems = problems or {}
    rows: list[Row] = []
    with Gradebook(_db_url(course)) as gb:
        notebooks = [nb.name for nb in gb.find_assignment(assignment).notebooks]
        for folder in sorted((course / "submitted").glob(f"*/{assignment}")):
            student = folder.parent.name
            for name in notebooks:
                submitted = folder / f"{name}.ipynb"
                autograded = course / "autograded" / student / assignment / f"{name}.ipynb"
                max_score = 0.0
                try:
                    snb = gb.find_submission_notebook(name, assignment, student)
                    score, max_score, manual = snb.score, snb.max_score, bool(snb.needs_manual_grade)
                except MissingEntry:
                    score, manual = 0.0, False
                if not submitted.exists():
                    rows.append(Row(student, name, "not submitted", 0.0, max_score, False,
                                    f"{name}.ipynb was not handed in: 0 points"))
                elif not autograded.exists() or problems.get((student, name)):
                    message = problems.get((student, name)) or "nbgrader could not process it; see its log above"
                    rows.append(Row(student, name, "failed to grade", 0.0, max_score, False, message))
                else:
                    rows.append(Row(student, name, "graded", float(score), float(max_score), manual,
                                    problems.get((student, "*"), "")))
    return rows


def _db_url(course: Path) -> str:
    """The gradebook URL from the course's nbgrader_config.py (default: gradebook.db in the course)."""
    from traitlets.config.loader import PyFileConfigLoader

    config_file = course / "nbgrader_config.py"
    if config_file.exists():
        try:
            cfg = PyFileConfigLoader(str(config_file)).load_config()
            url = cfg.get("CourseDirectory", {}).get("db_url")
            if url:
                return str(url)
        except Exception:  # noqa: BLE001 - fall back to the default location
            pass
    return f"sqlite:///{course.resolve() / 'gradebook.db'}"


def write_report(rows: list[Row], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(Row.__dataclass_fields__))
        writer.writeheader()
        for row in rows:
            writer.writerow(asdict(row))


def format_report(rows: list[Row]) -> str:
    lines = [f"{'student':<24} {'notebook':<28} {'status':<16} {'score':>12}  message"]
    for r in rows:
        score = f"{r.score:g}/{r.max_score:g}" + ("*" if r.needs_manual_grade else "")
        lines.append(f"{r.student:<24} {r.notebook:<28} {r.status:<16} {score:>12}  {r.message}")
    failed = sum(r.status == "failed to grade" for r in rows)
    lines.append(f"{len(rows)} notebooks: {sum(r.status == 'graded' for r in rows)} graded, {failed} failed to grade, "
                 f"{sum(r.status == 'not submitted' for r in rows)} not submitted (* = needs manual grading)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gptedu.grading.autograde_class",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("assignment")
    parser.add_argument("--course", default=".", help="the course folder (where nbgrader_config.py is)")
    parser.add_argument("--report", help="CSV report (default: autograded/autograde-report-<assignment>.csv)")
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []  # passed to nbgrader autograde as they are
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    course = Path(args.course).resolve()
    notebooks = sorted(p.stem for p in (course / "source" / args.assignment).glob("*.ipynb"))
    problems = preflight(course, args.assignment, notebooks)
    for (student, name), problem in problems.items():
        print(f"[autograde_class] {student}/{name}: {problem}", file=sys.stderr)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # nbgrader calls `alembic`
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", args.assignment, *extra], cwd=course,
                          env=env)
    rows = class_report(course, args.assignment, problems)
    report = Path(args.report) if args.report else course / "autograded" / f"autograde-report-{args.assignment}.csv"
    report.parent.mkdir(parents=True, exist_ok=True)
    write_report(rows, report)
    print(format_report(rows))
    print(f"report: {report} (nbgrader exit code {proc.returncode})")
    return 1 if any(r.status == "failed to grade" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
