"""Whole-course check through the real nbgrader: ``python -m tests.mistakes.course_run`` (slow: minutes).

In a temporary copy of the course it generates the part-1 release and hands in two students:

* ``unusual``: every answer cell holds the solution, except where a correct-but-unusual answer of the catalogue
  exists (all of ``tests/mistakes/correct/``); it must score full points everywhere;
* ``wrong``: the solution everywhere, plus the first catalogued mistake of each notebook; each must lose exactly
  its own component's test cells and nothing else.

Then one ``nbgrader autograde`` batch, and a table of every test cell's score. Exits 1 when a score is not the
expected one. (The test suite runs the quick version of this on notebook 03 only.)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from gptedu.grading import build
from gptedu.grading.components import all_components

from .catalog import Entry, entries
from .harness import PART1, notebook_of

SPECS = {c.name: c for c in all_components()}

ASSIGNMENT = "gpt_from_scratch"


def _answer_cells(nb) -> list:
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]


def _inject(nb, entry: Entry) -> None:
    """Put the entry's answer cell in place of the answer cell(s) defining its targets (the first gets the code)."""
    targets = {SPECS[c].target for c in entry.components}
    cells = [c for c in _answer_cells(nb)
             if any(f"class {t}" in c.source or f"def {t}(" in c.source for t in targets)]
    if not cells:
        raise RuntimeError(f"{entry.name}: no answer cell defines {sorted(targets)}")
    cells[0].source = entry.answer_cell
    for cell in cells[1:]:
        cell.source = "# (defined in the cell above)\n"


def main() -> int:
    os.environ.setdefault("GPTEDU_UNSANDBOXED", "1")  # the sandbox has its own tests; set it to "" to use it here
    catalogue = entries()
    notebooks = sorted({notebook_of(c) for c in PART1})
    students = {
        "unusual": [e for e in catalogue if e.expect == "full"],
        "wrong": [next(e for e in catalogue if e.expect == "caught" and notebook_of(e.component) == nb)
                  for nb in notebooks],
    }
    course = build.copy_course(build.REPO_ROOT, Path(tempfile.mkdtemp(prefix="gptedu-course-")) / "course",
                               [ASSIGNMENT])
    start = time.perf_counter()
    releases = build.generate_release(course, ASSIGNMENT)
    sources = build.source_notebooks(build.REPO_ROOT, ASSIGNMENT)
    print(f"generate_assignment: {time.perf_counter() - start:.1f} s")
    for student, answers in students.items():
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        for name, release in releases.items():
            nb = nbformat.from_dict(release)
            solutions = {c.metadata["nbgrader"]["grade_id"]: c.source for c in _answer_cells(sources[name])}
            for cell in _answer_cells(nb):
                cell.source = solutions[cell.metadata["nbgrader"]["grade_id"]]
            for entry in answers:
                if f"{notebook_of(entry.component)}.ipynb" == name:
                    _inject(nb, entry)
            nbformat.write(nb, folder / name)
    start = time.perf_counter()
    proc = build.run_nbgrader(course, "autograde", ASSIGNMENT, "--force", check=False)
    print(f"autograde of {len(students)} students x {len(releases)} notebooks: {time.perf_counter() - start:.1f} s "
          f"(exit {proc.returncode})")

    from nbgrader.api import Gradebook

    bad = 0
    with Gradebook("sqlite:///" + str(course / "gradebook.db")) as gb:
        for student, answers in students.items():
            lost_expected = {gid for e in answers if e.expect == "caught"
                             for c in e.components for gid in SPECS[c].points}
            print(f"\n{student}: {', '.join(e.name for e in answers)}")
            for nb in gb.find_submission(ASSIGNMENT, student).notebooks:
                cells = []
                for grade in sorted(nb.grades, key=lambda g: g.name):
                    if not grade.name.startswith("test_"):
                        continue
                    expected = 0.0 if grade.name in lost_expected else grade.max_score
                    ok = grade.score == expected
                    bad += not ok
                    cells.append(f"{grade.name[5:]} {grade.score:g}/{grade.max_score:g}{'' if ok else ' (!)'}")
                print(f"  {nb.name}: {'; '.join(cells)}")
    print(f"\n{'all scores as expected' if not bad else f'{bad} unexpected score(s), marked (!)'}; course in {course}")
    return 1 if bad or proc.returncode else 0


if __name__ == "__main__":
    sys.exit(main())
