"""Autograding one complete submission of the series: seconds per notebook, the total, the ratio to the 60 s target.

    export GPTEDU_DATA=/path/to/tinyshakespeare/input.txt GPTEDU_GPT2_DIR=/path/to/gpt2
    python benchmarks/bench_autograde.py                          # both parts (01-09 and 10-14), once
    python benchmarks/bench_autograde.py --repeats 3              # three runs, medians
    python benchmarks/bench_autograde.py --assignment gpt_from_scratch
    python benchmarks/bench_autograde.py --students 30             # a class: 30 complete submissions
    python benchmarks/bench_autograde.py --students 30 --workers 2 # the same class, two nbgrader processes

What it times: the course (``autograder/``) is copied into a temporary folder, the real ``nbgrader
generate_assignment`` makes the release, ONE submission is handed in whose every answer cell holds the instructor's
solution, and the real ``nbgrader autograde <assignment> --student <id>`` grades it (one command per part, as an
instructor runs them). Every run must score full points; a run that does not is reported as VOID.

Grading setup: where bubblewrap runs (``python -m gptedu.grading.sandbox check``) the sandbox is installed into a
private ``JUPYTER_PATH`` and required, which is how a class is graded (``--sandbox off``: ``GPTEDU_UNSANDBOXED=1``).
The out-of-process verification always runs.

The configuration is the one shipped (its one pipeline): the verification of a notebook starts in the background
while its kernel runs, the verification's jailed Pythons are started in advance (torch imported; one jail per
student's code), the next notebook's kernel boots, and imports torch (and torch._dynamo where that notebook builds
an optimizer), while the current one runs. (The slower "baseline" pipeline that earlier figures compare with was
removed from the grader; `benchmarks/README.md` keeps those figures as a record.)

Per notebook: wall seconds from nbgrader's "Sanitizing" line of the notebook to the next notebook's (nbgrader's
own start-up and exit are rows of their own), and, from the ``gptedu timing`` log line, the kernel start and the
time the verification still took after the notebook ran. CPU seconds are those of nbgrader and everything it
started (kernels, sandboxes, verification). The machine's load average is printed before and after: on a shared
machine read the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gptedu.grading import build  # noqa: E402

TARGET_SECONDS = 60.0
ASSIGNMENTS = ("gpt_from_scratch", "gpt2")
_SANITIZING = re.compile(r"Sanitizing .*/([^/]+)\.ipynb")
_TIMING = re.compile(r"gptedu timing (\S+): kernel start ([\d.]+) s, notebook ([\d.]+) s, verification ([\d.]+) s")


class CpuMeter:
    """CPU seconds of this process and everything it starts, from a cgroup of its own (cgroup v1 ``cpuacct`` or v2
    ``cpu.stat``; needs root). Without one: ``getrusage(RUSAGE_CHILDREN)``, which misses processes that are killed
    rather than waited for (the grader kills each kernel when its notebook is done), so it is only a lower bound."""

    def __init__(self):
        self.path: Path | None = None
        self.kind = "rusage (lower bound)"
        name = f"gptedu-bench-{os.getpid()}"
        for base, kind in ((Path("/sys/fs/cgroup/cpuacct"), "v1"), (Path("/sys/fs/cgroup/unified"), "v2"),
                           (Path("/sys/fs/cgroup"), "v2")):
            probe = base / ("cpuacct.usage" if kind == "v1" else "cgroup.procs")
            if not probe.exists():
                continue
            try:
                (base / name).mkdir()
                (base / name / "cgroup.procs").write_text(str(os.getpid()))
                self.path, self.kind, self.base = base / name, f"cgroup {kind}", base
                self.seconds()
                return
            except OSError:
                self.close()

    def seconds(self) -> float:
        if self.path is None:
            usage = resource.getrusage(resource.RUSAGE_CHILDREN)
            return usage.ru_utime + usage.ru_stime
        if (self.path / "cpuacct.usage").exists():
            return int((self.path / "cpuacct.usage").read_text()) / 1e9
        stat = dict(line.split() for line in (self.path / "cpu.stat").read_text().splitlines())
        return int(stat["usage_usec"]) / 1e6

    def close(self) -> None:
        if self.path is not None:
            try:
                (self.base / "cgroup.procs").write_text(str(os.getpid()))
                self.path.rmdir()
            except OSError:
                pass
            self.path = None


CPU = None


def sandbox_env(tmp: Path, mode: str) -> tuple[dict, bool]:
    """nbgrader's environment; the sandbox installed in a private JUPYTER_PATH when asked for or possible."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # nbgrader runs `alembic`
    use = mode == "on"
    if mode == "auto":
        from gptedu.grading import sandbox

        use = not sandbox.problems()
    if use:
        res = subprocess.run([sys.executable, "-m", "gptedu.grading.sandbox", "install", "--kernels-dir",
                              str(tmp / "jupyter" / "kernels")], capture_output=True, text=True, timeout=600)
        if res.returncode != 0:
            sys.exit(f"could not install the sandbox: {res.stdout}{res.stderr}")
        env["JUPYTER_PATH"] = str(tmp / "jupyter")
        env.pop("GPTEDU_UNSANDBOXED", None)
    else:
        env["GPTEDU_UNSANDBOXED"] = "1"
    return env, use


def prepare(course: Path, assignments: list[str]) -> dict[str, dict[str, nbformat.NotebookNode]]:
    """The release of each assignment, filled with the solutions: assignment -> {file name: notebook}."""
    from gptedu.grading import secret

    secret.init(course)  # the hidden cases' secret (python -m gptedu.grading.secret init)
    filled = {}
    for assignment in assignments:
        release = build.generate_release(course, assignment)
        sources = build.source_notebooks(REPO, assignment)
        filled[assignment] = {name: build.fill_with_solutions(nb, sources[name]) for name, nb in release.items()}
    return filled


def autograde(course: Path, assignment: str, student: str, env: dict, students: list[str] | None = None,
              workers: int = 1) -> dict:
    """One autograde (``student`` is a name or a glob matching ``students``): per-notebook rows, wall and CPU
    seconds, the score (the lowest of ``students``)."""
    lines: list[tuple[float, str]] = []
    before = CPU.seconds()
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "gptedu.grading.autograde_class", assignment, "--student", student,
                             "--workers", str(workers)],
                            cwd=course, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def read() -> None:
        for line in proc.stderr:
            lines.append((time.perf_counter() - start, line.rstrip()))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    proc.wait()
    reader.join()
    wall = time.perf_counter() - start
    cpu = CPU.seconds() - before
    starts = [(t, m.group(1)) for t, line in lines if (m := _SANITIZING.search(line))]
    timing = {m.group(1): tuple(float(x) for x in m.groups()[1:]) for _, line in lines if (m := _TIMING.search(line))}
    done = {m.group(1): t for t, line in lines if (m := _TIMING.search(line))}
    rows: dict[str, dict] = {}
    if starts:
        rows["(nbgrader start-up)"] = {"wall": starts[0][0]}
    for i, (t, name) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else done.get(name, wall)
        kernel, notebook, verification = timing.get(name, (float("nan"),) * 3)
        rows[name] = {"wall": end - t, "kernel": kernel, "notebook": notebook, "verification": verification}
    if starts:
        rows["(nbgrader exit)"] = {"wall": wall - done.get(starts[-1][1], wall)}
    from nbgrader.api import Gradebook

    score = max_score = None
    with Gradebook("sqlite:///" + str(course / "gradebook.db")) as gb:
        try:
            found = [gb.find_submission(assignment, name) for name in (students or [student])]
            score, max_score = min(s.score for s in found), found[0].max_score
        except Exception:  # noqa: BLE001 - reported as VOID below
            pass
    ok = proc.returncode == 0 and score is not None and score == max_score
    return {"rows": rows, "wall": wall, "cpu": cpu, "score": score, "max_score": max_score, "ok": ok,
            "stderr": "\n".join(line for _, line in lines[-30:])}


def run_once(course: Path, filled: dict, prefix: str, index: int, env: dict, students: int = 1,
             workers: int = 1) -> dict:
    names = [f"{prefix}{index}"] if students == 1 else [f"{prefix}{index}s{k:02d}" for k in range(students)]
    student = names[0] if students == 1 else f"{prefix}{index}s*"
    run_env = dict(env)
    result = {}
    for assignment, notebooks in filled.items():
        for each in names:
            folder = course / "submitted" / each / assignment
            folder.mkdir(parents=True, exist_ok=True)
            for name, nb in notebooks.items():
                nbformat.write(nb, folder / name)
        result[assignment] = autograde(course, assignment, student, run_env, names, workers)
        r = result[assignment]
        status = "ok" if r["ok"] else "VOID (not full points or nbgrader failed)"
        print(f"  run {index}: {assignment:17s} {r['wall']:6.1f} s wall, {r['cpu']:6.1f} s CPU, "
              f"{'lowest ' if students > 1 else ''}score {r['score']}/{r['max_score']} {status}"
              + (f" ({students} students, {r['wall'] / students:.1f} s each, {workers} worker(s))" if students > 1
                 else ""), flush=True)
        if not r["ok"]:
            print(r["stderr"])
    return result


def _median(values: list[float]) -> float:
    values = [v for v in values if v == v]  # drop NaN
    return statistics.median(values) if values else float("nan")


def report(runs: list[dict], assignments: list[str]) -> None:
    print()
    print(f"{'notebook':28s}{'wall s':>12s}{'kernel':>8s}{'verif.':>8s}")
    for assignment in assignments:
        for name in runs[0][assignment]["rows"]:
            rows = [run[assignment]["rows"].get(name, {}) for run in runs]
            line = f"{name:28s}" + "".join(f"{_median([r.get(k, float('nan')) for r in rows]):{w}.1f}"
                                           for k, w in (("wall", 12), ("kernel", 8), ("verification", 8)))
            print(line.replace("nan", "  -"))
        print(f"{'= ' + assignment + ' (wall)':28s}{_median([run[assignment]['wall'] for run in runs]):12.1f}")
        print(f"{'  CPU seconds':28s}{_median([run[assignment]['cpu'] for run in runs]):12.1f}")
        print()
    print("Totals (median over runs; target: one complete submission <= 60 s on 2 cores)")
    per_part = {a: _median([run[a]["wall"] for run in runs]) for a in assignments}
    series = _median([sum(run[a]["wall"] for a in assignments) for run in runs])
    parts = ", ".join(f"{a} {s:.1f} s ({s / TARGET_SECONDS:.2f}x target)" for a, s in per_part.items())
    print(f"  {parts}; series {series:.1f} s = {series / TARGET_SECONDS:.2f}x the 60 s target")
    void = sum(not run[a]["ok"] for run in runs for a in assignments)
    if void:
        print(f"  WARNING: {void} run(s) VOID (not full points): the figures above include them")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assignment", choices=[*ASSIGNMENTS, "all"], default="all")
    parser.add_argument("--repeats", type=int, default=1, help="runs (medians reported)")
    parser.add_argument("--sandbox", choices=["auto", "on", "off"], default="auto")
    parser.add_argument("--keep", action="store_true", help="keep the temporary course (its path is printed)")
    parser.add_argument("--students", type=int, default=1,
                        help="a class: this many complete submissions, graded by one autograde per part")
    parser.add_argument("--workers", type=int, default=1,
                        help="nbgrader processes side by side (autograde_class --workers; per-notebook rows then "
                             "overlap: read the totals)")
    args = parser.parse_args(argv)
    for var in ("GPTEDU_DATA", "GPTEDU_GPT2_DIR"):
        if not os.environ.get(var):
            print(f"note: {var} is not set; notebooks that need it will download or fail", file=sys.stderr)
    assignments = list(ASSIGNMENTS) if args.assignment == "all" else [args.assignment]
    tmp = Path(tempfile.mkdtemp(prefix="gptedu-bench-autograde-"))
    global CPU
    CPU = CpuMeter()
    try:
        env, sandboxed = sandbox_env(tmp, args.sandbox)
        course = build.copy_course(REPO, tmp / "course", assignments)
        filled = prepare(course, assignments)
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs; "
              f"sandbox: {'on' if sandboxed else 'off (unsandboxed fallback)'}; {args.repeats} run(s); "
              f"CPU seconds from {CPU.kind}", flush=True)
        runs = [run_once(course, filled, "run", index, env, args.students, args.workers)
                for index in range(args.repeats)]
        report(runs, assignments)
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        CPU.close()
        if args.keep:
            print(f"course kept in {tmp / 'course'}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
