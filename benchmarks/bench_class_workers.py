"""A class graded with ``--workers 1`` and ``--workers 2``: seconds, the ratio, the machine's load, same scores.

    python benchmarks/bench_class_workers.py                 # 30 students
    python benchmarks/bench_class_workers.py --students 10

The course is the tests' one-notebook course (``tests/course_kit.py``: notebook 03, ``Head``, two graded cells,
sandboxed kernel and out-of-process verification), so one student is one kernel plus one verification. Students
alternate correct (20/20) and wrong (0/20) answers. The class is graded once with one worker, then again
(``--force``) with two; both runs go through ``python -m gptedu.grading.autograde_class`` (intake, nbgrader on
the checked copy, the report). Printed: wall seconds of each run, the ratio, the load average before and after, and
whether every student got the same scores in both runs (the shared sqlite gradebook written by two processes at
once). ``--workers 2`` is refused where the sandbox cannot give every job limits of its own (no cgroups): then
only the first run is timed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import course_kit as kit  # noqa: E402


def scores(course: Path, students: list[str]) -> dict[str, float]:
    return {s: sum(v or 0 for k, v in kit.cell_scores(course, s).items() if k.startswith("test_")) for s in students}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=30)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gptedu-bench-workers-"))
    env = kit.sandbox_env(tmp)
    course = kit.make_course(tmp, env)
    wrong = kit.head_solution().replace("/ math.sqrt(k.size(-1))", "")
    students = [f"s{i:02d}" for i in range(args.students)]
    for i, student in enumerate(students):
        kit.submit(course, student, answer=kit.head_solution() if i % 2 == 0 else wrong)
    results = {}
    for workers in (1, 2):
        load = os.getloadavg()[0]
        start = time.perf_counter()
        res = kit.autograde(course, "--force", "--workers", str(workers), env=env, timeout=3600)
        seconds = time.perf_counter() - start
        if res.returncode == 2:
            print(f"--workers {workers}: refused: {res.stderr.strip()[-400:]}")
            continue
        found = scores(course, students)
        locked = "database is locked" in res.stderr + "".join(
            p.read_text() for p in (course / "autograded").glob("autograde-*-worker*.log"))
        results[workers] = (seconds, found)
        print(f"--workers {workers}: {seconds:.1f} s for {len(students)} students "
              f"({seconds / len(students):.2f} s each), exit {res.returncode}, load {load:.1f} -> "
              f"{os.getloadavg()[0]:.1f}, 'database is locked' seen: {locked}, "
              f"full points: {sum(v == 20 for v in found.values())}, zero: {sum(v == 0 for v in found.values())}")
    if len(results) == 2:
        (one, s1), (two, s2) = results[1], results[2]
        print(f"ratio 1 worker / 2 workers: {one / two:.2f}x; same scores: {s1 == s2}")
    print(f"course: {course}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
