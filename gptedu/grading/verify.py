"""Out-of-process verification: verdicts that code in the student's kernel cannot influence.

Everything that runs in the grading kernel after the student's code can be rewritten by it (monkeypatched
``torch.allclose`` or grading helpers, spoofed modules, IPython input transformers). :class:`VerifyAnswers` is an
nbgrader preprocessor (it runs in nbgrader's process, after ``SandboxExecute``) that reaches the verdict another way:

1. it takes the student's code from the submission: the answer cells, plus code cells the student added (cells
   that are not in the instructor's notebook); instructor cells are skipped, but their ``import`` lines and simple
   constants are kept, with imports from ``gptedu`` served by a *copy* of the prerequisite classes' source (the
   classes graded in this notebook are never copied);
2. it runs that code in a fresh sandboxed process (:mod:`gptedu.grading.sandbox`, reference package hidden), which
   calls :func:`gptedu.grading.runner.run_case` on the visible and hidden cases of every graded component of the
   notebook and writes the raw outputs to a file;
3. back in nbgrader's process it compares them with the reference (``Spec.compare``) and, for every test cell
   whose component fails there, puts an error first in the cell's outputs so ``SaveAutoGrades`` scores it 0, with
   a message for the student. A test cell whose canary did not come back (see ``SandboxExecute``) is failed too.

A verdict can only take points away: a test cell that failed in the kernel stays failed.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tokenize
from pathlib import Path

from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Integer

from gptedu.grading.sandbox_nbgrader import RESOURCE_KEY, error_output

COPY_PACKAGE = "reference_copy"
FORBIDDEN_NAMES = ("scaled_dot_product_attention", "MultiheadAttention", "multi_head_attention_forward",
                   "flex_attention", "_native_multi_head_attention")
MAX_OUTPUT_FILE = 256 * 2**20


# ------------------------------------------------------------------------------------------- the student's code
def _is_code(cell) -> bool:
    return cell.cell_type == "code" and bool(cell.source.strip())


def _normalise(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def student_code_cells(nb, *instructor_nbs) -> list[tuple[int, str]]:
    """(index, source) of the answer cells and of the code cells the student added, in notebook order.

    A code cell without nbgrader metadata counts as the student's unless its text is one of the instructor's cells
    (setup, demos, test cells) in ``instructor_nbs`` (the source and the released notebook).
    """
    instructor = {_normalise(c.source) for other in instructor_nbs for c in other.cells
                  if _is_code(c) and not utils.is_solution(c)}
    found = []
    for index, cell in enumerate(nb.cells):
        if not _is_code(cell) or (utils.is_grade(cell) and not utils.is_solution(cell)):
            continue
        if utils.is_solution(cell) or _normalise(cell.source) not in instructor:
            found.append((index, cell.source))
    return found


def to_python(source: str) -> str:
    """IPython cell source -> plain Python (magics become no-op ``get_ipython()`` calls); '' if it cannot parse."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        code = TransformerManager().transform_cell(source)
        ast.parse(code)
        return code
    except (SyntaxError, ValueError):
        return source  # let the sandbox report the SyntaxError for this cell


def imported_reference_modules(sources: list[str]) -> set[str]:
    """``gptedu`` modules imported by the code, other than the grading helpers (which self-checks may use)."""
    found: set[str] = set()
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
                    "__import__", "import_module") and node.args and isinstance(node.args[0], ast.Constant):
                names = [str(node.args[0].value)]
            for name in names:
                is_reference = name.split(".")[0] == "gptedu" and not name.startswith("gptedu.grading")
                # `from gptedu import X` is caught through "gptedu.X"; a bare "gptedu" module name counts
                # only when imported as a whole
                if is_reference and (name != "gptedu" or isinstance(node, ast.Import | ast.Call)):
                    found.add(name)
    return found


def used_names(sources: list[str]) -> set[str]:
    """Identifiers and attribute names in the code (comments and strings ignored)."""
    names: set[str] = set()
    for source in sources:
        try:
            for tok in tokenize.generate_tokens(io.StringIO(source).readline):
                if tok.type == tokenize.NAME:
                    names.add(tok.string)
        except (tokenize.TokenError, IndentationError, SyntaxError):
            names.update(source.replace(".", " ").split())
    return names


def instructor_prelude(source_nb) -> tuple[list[str], list[str]]:
    """Top-level imports and literal constants of the instructor's code cells: (statements, names from gptedu)."""
    statements, from_reference = [], []
    for cell in source_nb.cells:
        if not _is_code(cell) or utils.is_solution(cell) or utils.is_grade(cell):
            continue
        try:
            tree = ast.parse(to_python(cell.source))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "gptedu":
                from_reference += [a.asname or a.name for a in node.names if a.name != "*"]
                statements.append(ast.unparse(node))
            elif isinstance(node, ast.Import | ast.ImportFrom) or (
                    isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)):
                statements.append(ast.unparse(node))
    return statements, from_reference


# -------------------------------------------------------------------------- prerequisite classes as source copies
def _reference_module_file(module_name: str) -> Path:
    import importlib

    return Path(importlib.import_module(module_name).__file__)


def _rewrite_module(tree: ast.Module, withheld: set[str], needed: set[str]) -> ast.Module:
    """Point ``gptedu`` imports at the copy; replace definitions of withheld names by a stub that raises."""
    import importlib

    body = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "gptedu" and node.level == 0:
            for alias in node.names:
                obj = getattr(importlib.import_module(node.module), alias.name)
                real = getattr(obj, "__module__", node.module) if not isinstance(obj, type(os)) else obj.__name__
                needed.add(real)
                target = COPY_PACKAGE + real[len("gptedu"):]
                body.append(ast.parse(f"from {target} import {alias.name} as {alias.asname or alias.name}").body[0])
            continue
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "gptedu" for a in node.names):
            continue
        name = getattr(node, "name", None)
        if isinstance(node, ast.ClassDef | ast.FunctionDef) and name in withheld:
            body.append(ast.parse(f"{name} = _withheld({name!r})").body[0])
            continue
        body.append(node)
    stub = ast.parse(
        "def _withheld(name):\n"
        "    class Withheld:\n"
        "        def __init__(self, *args, **kwargs):\n"
        "            raise NameError(f'{name} is what this notebook asks you to write: define it in your answer "
        "cell.')\n"
        "        def __call__(self, *args, **kwargs):\n"
        "            raise NameError(f'{name} is not available here.')\n"
        "    Withheld.__name__ = Withheld.__qualname__ = name\n"
        "    return Withheld\n"
    ).body
    future = [n for n in body if isinstance(n, ast.ImportFrom) and n.module == "__future__"]
    rest = [n for n in body if n not in future]
    tree.body = future + stub + rest
    return tree


def write_reference_copy(dest: Path, modules: set[str], withheld: set[str]) -> None:
    """Copy the ``gptedu`` modules (and what they import from ``gptedu``) as package ``reference_copy``."""
    (dest / COPY_PACKAGE).mkdir(parents=True, exist_ok=True)
    done: set[str] = set()
    todo = set(modules)
    while todo:
        name = todo.pop()
        if name in done:
            continue
        done.add(name)
        needed: set[str] = set()
        tree = _rewrite_module(ast.parse(_reference_module_file(name).read_text()), withheld, needed)
        todo |= needed - done
        parts = name.split(".")[1:]
        path = dest / COPY_PACKAGE / Path(*parts[:-1]) / f"{parts[-1]}.py" if parts else dest / COPY_PACKAGE / "x.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(ast.unparse(tree) + "\n")
    for folder in [dest / COPY_PACKAGE, *(p for p in (dest / COPY_PACKAGE).rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()


def build_prelude(statements: list[str], names, withheld: set[str]) -> tuple[str, set[str]]:
    """The prelude source and the ``gptedu`` modules it needs; ``gptedu`` imports become imports from the copy."""
    import importlib

    lines, modules = ["import math", "import torch", "from torch import nn", "import torch.nn.functional as F"], set()
    for statement in statements:
        node = ast.parse(statement).body[0]
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "gptedu":
            for alias in node.names:
                try:
                    obj = getattr(importlib.import_module(node.module), alias.name)
                except (ImportError, AttributeError):
                    continue
                if getattr(obj, "__name__", alias.name) in withheld or not hasattr(obj, "__module__"):
                    continue
                real = obj.__module__
                modules.add(real)
                lines.append(f"from {COPY_PACKAGE}{real[len('gptedu'):]} import {obj.__name__} as "
                             f"{alias.asname or alias.name}")
        elif isinstance(node, ast.Import) and any(a.name.split(".")[0] == "gptedu" for a in node.names):
            continue
        else:
            lines.append(f"try:\n    {statement}\nexcept Exception:\n    pass")
    for alias, qualified in _as_qualified(names).items():
        module, _, cls = qualified.rpartition(".")
        if cls in withheld or module.split(".")[0] != "gptedu":
            continue
        modules.add(module)
        lines.append(f"from {COPY_PACKAGE}{module[len('gptedu'):]} import {cls} as {alias}")
    return "\n".join(lines) + "\n", modules


def _as_qualified(names) -> dict[str, str]:
    """alias -> ``gptedu.module.Name`` for prerequisites given as names (``["Head"]``) or as such a mapping."""
    if isinstance(names, dict):
        return dict(names)
    import gptedu

    found = {}
    for name in names:
        obj = getattr(gptedu, name, None)
        if obj is not None and hasattr(obj, "__module__"):
            found[name] = f"{obj.__module__}.{getattr(obj, '__name__', name)}"
    return found


def prerequisite_classes(spec) -> set[str]:
    """Names of the reference classes a spec's code may use (``Spec.prerequisites``: names or alias -> path)."""
    prereqs = spec.prerequisites
    if isinstance(prereqs, dict):
        return {path.rpartition(".")[2] for path in prereqs.values()}
    return set(prereqs)


# ------------------------------------------------------------------------------------------- the preprocessor
class VerifyAnswers(NbGraderPreprocessor):
    """Re-grade every registered component of the notebook in a sandbox and fail test cells it does not confirm."""

    enabled = Bool(True).tag(config=True)
    timeout = Integer(300, help="Seconds for the sandboxed run of one notebook's components.").tag(config=True)
    require_sandbox = Bool(
        False, help="Fail the verification instead of running unsandboxed when the sandbox is unavailable."
    ).tag(config=True)
    reuse_process = Bool(
        True, help="Run the sandboxed jobs through one verification server per grading process (torch imported "
                   "once, a fresh fork and jail per job) instead of a new Python per job."
    ).tag(config=True)

    def preprocess(self, nb, resources):
        import time

        started = time.monotonic()
        info = (resources or {}).get(RESOURCE_KEY, {})
        messages: dict[str, str] = {}
        for grade_id in info.get("canary_missing", []):
            messages[grade_id] = ("this test cell did not run to its end as written (the grader's check that every "
                                  "test ran was not seen). Code in an earlier cell changed how cells run.")
        try:
            messages.update(self._verify(nb, resources) or {})
        except Exception as exc:  # noqa: BLE001 - a grader bug must not pass a student, nor crash the batch
            self.log.error("gptedu verification failed: %s", exc, exc_info=True)
            for cell in nb.cells:
                if utils.is_grade(cell) and not utils.is_solution(cell) and self._spec_for(cell):
                    messages.setdefault(cell.metadata.nbgrader["grade_id"],
                                        f"the grader could not verify this answer ({type(exc).__name__}); "
                                        "your instructor will review it.")
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in messages and utils.is_grade(cell) and not utils.is_solution(cell):
                already_failed = any(o.get("output_type") == "error" for o in cell.get("outputs", []))
                if not already_failed:
                    cell.outputs = [error_output("VerificationFailed", messages[grade_id]), *cell.outputs]
        resources.setdefault(RESOURCE_KEY, {})["verification"] = messages
        name = ((resources or {}).get("nbgrader") or {}).get("notebook", "")
        self.log.info("gptedu timing %s: kernel start %.1f s, notebook %.1f s, verification %.1f s more",
                      name, info.get("kernel_seconds", 0.0), info.get("seconds", 0.0), time.monotonic() - started)
        return nb, resources

    def plan(self, nb, resources) -> dict:
        """What to verify: the student's code (extracted now, as plain strings) and every registered component
        of the notebook."""
        specs = {}
        for cell in nb.cells:
            if utils.is_grade(cell) and not utils.is_solution(cell):
                found = self._spec_for(cell)
                if found:
                    specs[found[0].name] = found[0]
        source_nb, release_nb = self._instructor_notebooks(resources)
        cells = [(i, to_python(s)) for i, s in student_code_cells(nb, source_nb, release_nb)]
        return {"specs": specs, "cells": cells, "source_nb": source_nb,
                "student_dir": (resources.get("metadata") or {}).get("path")}

    def run_plan(self, plan: dict, names: set[str] | None = None) -> dict[str, dict[str, str]]:
        """Spec name -> verdict (``compare_outputs``) for the plan's components (or those named)."""
        import torch

        torch.set_num_threads(1)  # the comparisons are small; more threads only contend with the kernel
        specs = [spec for name, spec in plan["specs"].items() if names is None or name in names]
        verdicts: dict[str, dict[str, str]] = {}
        for withheld, group in withheld_groups(specs).items():
            outputs, problem = run_in_sandbox(group, plan["cells"], plan["source_nb"], self.timeout,
                                              self.require_sandbox, withheld=set(withheld),
                                              student_dir=plan["student_dir"], reuse_process=self.reuse_process)
            verdicts.update({spec.name: compare_outputs(spec, outputs, problem) for spec in group})
        return verdicts

    @staticmethod
    def _spec_for(cell):
        from gptedu.grading.specs import spec_for_grade_id

        return spec_for_grade_id(cell.metadata.get("nbgrader", {}).get("grade_id", ""))

    def _instructor_notebooks(self, resources):
        """The source notebook and the released one (the source again when there is no release folder)."""
        import nbformat
        from nbgrader.coursedir import CourseDirectory

        info = resources["nbgrader"]
        coursedir = CourseDirectory(config=self.config)
        found = []
        for folder in (coursedir.source_directory, coursedir.release_directory):
            path = Path(coursedir.format_path(folder, ".", info["assignment"])) / (info["notebook"] + ".ipynb")
            found.append(nbformat.read(str(path), as_version=4) if path.is_file() else None)
        return found[0], found[1] or found[0]

    def _verify(self, nb, resources) -> dict[str, str]:
        test_cells = {}
        passed_in_kernel = set()
        for cell in nb.cells:
            if utils.is_grade(cell) and not utils.is_solution(cell):
                found = self._spec_for(cell)
                if found:
                    test_cells[cell.metadata.nbgrader["grade_id"]] = found
                    if not any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
                        passed_in_kernel.add(found[0].name)
        # a verdict can only take points away: components whose every test cell already failed need no second look
        test_cells = {gid: found for gid, found in test_cells.items() if found[0].name in passed_in_kernel}
        pending = (resources.get(RESOURCE_KEY) or {}).pop("pending_verification", None)
        if not test_cells or not self.enabled:
            return {}
        if pending is not None:  # started by StartVerification while the kernel ran (same code, same cases)
            plan, verdicts = pending.result()
        else:
            plan = self.plan(nb, resources)
            verdicts = self.run_plan(plan, {spec.name for spec, _ in test_cells.values()})
        cells = plan["cells"]
        forbidden = [n for n in FORBIDDEN_NAMES if n in used_names([s for _, s in cells])]
        uses_reference = sorted(imported_reference_modules([s for _, s in cells]))
        messages = {}
        for grade_id, (spec, which) in test_cells.items():
            text = verdicts[spec.name].get(which, "")
            if uses_reference:
                text = (f"your code imports the reference package ({', '.join(uses_reference[:3])}); the graded "
                        "components must be your own code.")
            elif forbidden and _forbids_torch_attention(spec):
                text = (f"your code uses {', '.join(forbidden)}, but this exercise asks you to compute attention "
                        "yourself.")
            if text:
                messages[grade_id] = f"{spec.title}: {text}"
        return messages


_EXECUTOR = None


def _executor():
    global _EXECUTOR
    if _EXECUTOR is None:
        from concurrent.futures import ThreadPoolExecutor

        _EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gptedu-verify")
    return _EXECUTOR


class StartVerification(NbGraderPreprocessor):
    """Start :class:`VerifyAnswers`' sandboxed re-run in the background before the kernel runs the notebook.

    The verification only needs the student's code as submitted (the sanitized notebook), not the kernel's
    outputs, so it runs on the second core while the kernel executes; ``VerifyAnswers`` then collects the verdicts
    (with the kernel's outcome and the canaries, exactly as when it runs them itself). Place it right before
    ``SandboxExecute``."""

    enabled = Bool(True).tag(config=True)

    def preprocess(self, nb, resources):
        import copy

        verifier = VerifyAnswers(config=self.config)
        if not (self.enabled and verifier.enabled):
            return nb, resources
        if verifier.reuse_process and os.environ.get("GPTEDU_VERIFY_ONE_PROCESS_PER_RUN", "") in ("", "0"):
            from gptedu.grading import sandbox

            problems = sandbox.problems()
            if not (problems and verifier.require_sandbox):
                verify_server_for(problems).start_soon()  # boots (imports torch) beside the kernel
        # a private copy of what the plan reads: the kernel's run changes the notebook meanwhile
        snapshot = copy.deepcopy(nb)
        context = {"nbgrader": dict(resources.get("nbgrader") or {}),
                   "metadata": dict(resources.get("metadata") or {})}
        future = _executor().submit(_plan_and_run, verifier, snapshot, context)
        resources.setdefault(RESOURCE_KEY, {})["pending_verification"] = future
        return nb, resources


def _plan_and_run(verifier: VerifyAnswers, nb, resources) -> tuple[dict, dict]:
    """In the background: extract the student's code (the first use also imports torch and the reference, which
    thus overlaps the first kernel's start) and verify every registered component of the notebook."""
    plan = verifier.plan(nb, resources)
    return plan, (verifier.run_plan(plan) if plan["specs"] else {})


def _forbids_torch_attention(spec) -> bool:
    try:
        return any(c.get("shortcuts", {}).get("forbid_torch_attention") for c in spec.cases(hidden=False))
    except Exception:  # noqa: BLE001
        return False


def case_key(spec, which: str, index: int) -> str:
    return f"{spec.name}:{which}:{index}"


def compare_outputs(spec, outputs: dict | None, problem: str) -> dict[str, str]:
    """``{"visible"|"hidden": failure message}`` for the spec ('' or missing = confirmed)."""
    result = {}
    for which in ("visible", "hidden"):
        if outputs is None:
            result[which] = f"the grader could not run your code in isolation: {problem}"
            continue
        failures = []
        for i, case in enumerate(spec.cases(hidden=(which == "hidden"))):
            found = outputs.get(case_key(spec, which, i))
            if not isinstance(found, dict):
                failures.append(f"no result for case {case['id']}")
                break
            try:
                failed = spec.compare(case, found)
            except Exception as exc:  # noqa: BLE001 - malformed outputs
                failures.append(f"unexpected outputs ({type(exc).__name__}: {exc})")
                break
            if failed:
                failures.extend(f.render() for f in failed[:2])
                break
        if failures:
            cell_errors = outputs.get("_cells") or []
            hint = ""
            if cell_errors and isinstance(cell_errors, list):
                hint = "\nWhen your cells were run on their own: " + "; ".join(str(e) for e in cell_errors[:3])
            result[which] = ("re-run in isolation (answer cells only, fresh process), your code does not pass:\n"
                             + "\n".join(failures) + hint)
    return result


def _parse_outputs(stdout: bytes) -> dict:
    """The outputs after the runner's last marker (``torch.load`` with ``weights_only``: plain data only)."""
    import torch

    from gptedu.grading.verify_runner import MARKER

    start = stdout.rfind(MARKER)
    if start < 0:
        raise ValueError("no results were written")
    outputs = torch.load(io.BytesIO(stdout[start + len(MARKER):]), weights_only=True)
    if not isinstance(outputs, dict):
        raise ValueError("the results are not a dict")
    return outputs


def _run_capped(cmd: list[str], env: dict, cwd: str, timeout: float) -> tuple[int | None, bytes, str]:
    """Run ``cmd``; keep at most ``MAX_OUTPUT_FILE`` bytes of stdout; (exit code or None on timeout, stdout, stderr
    tail). Killing the sandbox launcher kills everything in the sandbox."""
    import signal
    import threading

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd,
                            start_new_session=True)
    chunks: dict[str, list[bytes]] = {"out": [], "err": []}

    def drain(stream, key: str, cap: int) -> None:
        kept = 0
        for chunk in iter(lambda: stream.read(65536), b""):
            if kept < cap:
                chunks[key].append(chunk[: cap - kept])
                kept += len(chunk)

    threads = [threading.Thread(target=drain, args=(proc.stdout, "out", MAX_OUTPUT_FILE), daemon=True),
               threading.Thread(target=drain, args=(proc.stderr, "err", 64 * 1024), daemon=True)]
    for thread in threads:
        thread.start()
    try:
        code: int | None = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        code = None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for thread in threads:
        thread.join(timeout=10)
    return code, b"".join(chunks["out"]), b"".join(chunks["err"]).decode(errors="replace")[-2000:]


class VerifyServer:
    """The grader's end of the verification server (``verify_runner.py serve``): one process per grading process
    that imports torch once and runs every job in a process (and jail) forked for it.

    Started on first use, restarted after anything unexpected (it died, a reply did not come in time, a malformed
    reply), stopped at exit. ``run(files, timeout)`` returns what a one-shot run returns: (exit code or None on
    timeout, stdout, stderr tail).
    """

    def __init__(self, jailed: bool, settings_path: str | None = None):
        self.jailed = jailed
        self.settings_path = settings_path
        self.proc: subprocess.Popen | None = None
        self._dir: str | None = None
        import threading

        self.lock = threading.Lock()

    def _start(self) -> None:
        from gptedu.grading import sandbox

        self._dir = tempfile.mkdtemp(prefix="gptedu-verify-server-")
        script = Path(self._dir) / "verify_runner.py"
        shutil.copyfile(Path(__file__).with_name("verify_runner.py"), script)
        cmd = [sys.executable, "-I", str(script), "serve"]
        env = {k: v for k, v in os.environ.items() if k in sandbox.ENV_PASSTHROUGH}
        env.update(PATH=os.environ.get("PATH", "/usr/bin:/bin"), HOME=self._dir, NBGRADER_EXECUTION="autograde")
        if self.jailed:
            jail_file = Path(self._dir) / "jail.py"
            shutil.copyfile(sandbox.__file__, jail_file)
            cmd += ["--sandbox", str(jail_file), "--settings", str(self.settings_path)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=env, cwd=self._dir, start_new_session=True)

    def stop(self) -> None:
        import signal

        proc, self.proc = self.proc, None
        if proc is not None:  # between jobs it holds nothing worth a clean exit
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            for stream in (proc.stdin, proc.stdout):
                with contextlib.suppress(Exception):
                    stream.close()
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def start_soon(self) -> None:
        """Start the server now if it is not running (it imports torch while the caller does other work). Never
        waits: when a job holds the server, it is running already."""
        if not self.lock.acquire(blocking=False):
            return
        try:
            if self.proc is None or self.proc.poll() is not None:
                self.stop()
                self._start()
        finally:
            self.lock.release()

    def run(self, files: dict[str, bytes], timeout: float) -> tuple[int | None, bytes, str]:
        from gptedu.grading.verify_runner import pack_files

        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self.stop()
                self._start()
            payload = pack_files(files)
            header = json.dumps({"size": len(payload), "timeout": timeout}).encode()
            try:
                self.proc.stdin.write(len(header).to_bytes(4, "big") + header)
                self.proc.stdin.write(payload)
                self.proc.stdin.flush()
                reply = self._read_reply(timeout + 30)
            except Exception as exc:  # noqa: BLE001 - the server is suspect: start a fresh one next time
                self.stop()
                return 1, b"", f"the verification server failed ({type(exc).__name__}: {exc})"
            return reply["code"], reply["out"], reply["stderr"]

    def _read_reply(self, timeout: float) -> dict:
        import select
        import time

        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout

        def read_exact(size: int) -> bytes:
            chunks, left = [], size
            while left:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                    raise TimeoutError("no reply in time")
                chunk = os.read(fd, min(left, 1 << 20))
                if not chunk:
                    raise EOFError("the server stopped")
                chunks.append(chunk)
                left -= len(chunk)
            return b"".join(chunks)

        size = int.from_bytes(read_exact(4), "big")
        if size > 1 << 20:
            raise ValueError("malformed reply")
        reply = json.loads(read_exact(size))
        if not isinstance(reply.get("size"), int) or reply["size"] > MAX_OUTPUT_FILE:
            raise ValueError("malformed reply")
        reply["out"] = read_exact(reply["size"])
        reply["stderr"] = str(reply.get("stderr", ""))
        code = reply.get("code")
        reply["code"] = code if isinstance(code, int) else None
        return reply


_SERVERS: dict[tuple, VerifyServer] = {}


def verify_server(jailed: bool, settings_path: str | None) -> VerifyServer:
    """The process-wide server for this sandbox setting (started lazily, stopped at exit)."""
    key = (jailed, settings_path)
    if key not in _SERVERS:
        import atexit

        if not _SERVERS:
            atexit.register(stop_servers)
        _SERVERS[key] = VerifyServer(jailed, settings_path)
    return _SERVERS[key]


def verify_server_for(problems: list[str]) -> VerifyServer:
    """The server matching the sandbox's state: jailed with the installed settings, or the unsandboxed fallback."""
    from gptedu.grading import sandbox

    settings = None if problems else str(sandbox.find_kernelspec_dir() / sandbox.SETTINGS_FILE)
    return verify_server(not problems, settings)


def stop_servers() -> None:
    for server in list(_SERVERS.values()):
        server.stop()


def _read_tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def withheld_groups(specs) -> dict[tuple[str, ...], list]:
    """Specs grouped by the reference classes that must NOT be in their sandbox.

    A spec's sandbox withholds every class graded in the notebook except the spec's own prerequisites: e.g. in
    ``07_gpt`` the ``GPTModel`` checks may use the reference ``TransformerDecoder`` (so a wrong decoder does not cost
    the model's points twice), while the ``TransformerDecoder`` check runs in a sandbox where no reference decoder
    exists at all. Each group is one sandboxed run.
    """
    targets = {spec.target for spec in specs}
    groups: dict[tuple[str, ...], list] = {}
    for spec in specs:
        withheld = tuple(sorted(targets - prerequisite_classes(spec)))
        groups.setdefault(withheld, []).append(spec)
    return groups


def _copy_student_files(src: str | None, dest: Path, budget: int = 64 * 2**20) -> None:
    """The files next to the notebook (data the code may read by a relative path); no links, no notebooks."""
    if not src or not os.path.isdir(src):
        return
    for root, dirs, files in os.walk(src, followlinks=False):
        rel = os.path.relpath(root, src)
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]
        for name in files:
            path = os.path.join(root, name)
            if name.endswith(".ipynb") or os.path.islink(path) or not os.path.isfile(path):
                continue
            size = os.path.getsize(path)
            if size > budget:
                continue
            budget -= size
            target = dest / rel / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


def run_in_sandbox(specs, cells, source_nb, timeout: int, require: bool, withheld: set[str] | None = None,
                   student_dir: str | None = None, reuse_process: bool = True) -> tuple[dict | None, str]:
    """Run the student's cells and ``run_case`` on every case of ``specs`` in the jail; (outputs, problem).

    ``reuse_process`` (default): through the :class:`VerifyServer` (torch imported once per grading process, a
    fresh fork and jail per run); False, or ``GPTEDU_VERIFY_ONE_PROCESS_PER_RUN=1``: a new Python per run."""
    import torch

    from gptedu.grading import runner, sandbox

    statements, names = instructor_prelude(source_nb)
    withheld = withheld if withheld is not None else {spec.target for spec in specs}
    provided = _as_qualified(names)
    for spec in specs:
        provided.update(_as_qualified(spec.prerequisites))
    prelude, modules = build_prelude(statements, provided, withheld)
    with tempfile.TemporaryDirectory(prefix="gptedu-verify-") as tmp:
        job = Path(tmp) / "job"
        job.mkdir()
        _copy_student_files(student_dir, job)  # first: the grader's own files below replace any namesake
        write_reference_copy(job, modules, withheld)
        shutil.copyfile(runner.__file__, job / "grading_runner.py")
        shutil.copyfile(Path(__file__).with_name("verify_runner.py"), job / "verify_runner.py")
        torch.save({spec.name: [(case_key(spec, which, i), case) for which in ("visible", "hidden")
                                for i, case in enumerate(spec.cases(which == "hidden"))] for spec in specs},
                   job / "cases.pt")
        (job / "job.json").write_text(json.dumps({
            "prelude": prelude, "cells": cells, "cell_seconds": max(5, timeout // 4),
            "specs": [{"name": spec.name, "target": spec.target} for spec in specs],
        }))
        problems = sandbox.problems()
        if problems and require:
            return None, "the sandbox is not available (" + "; ".join(problems) + ")"
        if reuse_process and os.environ.get("GPTEDU_VERIFY_ONE_PROCESS_PER_RUN", "") in ("", "0"):
            code, stdout, stderr = verify_server_for(problems).run(_read_tree(job), timeout)
        else:
            code, stdout, stderr = _run_once(job, problems, timeout, tmp)
        if code is None:
            return None, f"it did not finish within {timeout} s (is there an endless loop at the top level?)"
        try:
            return _parse_outputs(stdout), ""
        except Exception as exc:  # noqa: BLE001 - no or unreadable results: the student's code stopped early
            tail = " ".join(stderr.strip().splitlines()[-3:])
            return None, f"it stopped before producing results ({exc}; exit code {code}). {tail}"


def _run_once(job: Path, problems: list[str], timeout: int, tmp: str) -> tuple[int | None, bytes, str]:
    """The job in a process (and jail) of its own: Python and torch start afresh (the slower, original way)."""
    from gptedu.grading import sandbox

    if problems:
        cmd = [sys.executable, "-I", str(job / "verify_runner.py"), str(job)]
        env = {k: v for k, v in os.environ.items() if k in sandbox.ENV_PASSTHROUGH}
        env.update(PATH=os.environ.get("PATH", "/usr/bin:/bin"), HOME=tmp)
    else:
        cmd = [sys.executable, "-I", sandbox.__file__, "exec", "--no-reference", "--workdir", str(job), "--",
               "python", "-I", str(job / "verify_runner.py"), str(job)]
        env = {k: v for k, v in os.environ.items() if k in sandbox.ENV_PASSTHROUGH or k in ("PATH", "JUPYTER_PATH")}
    env["NBGRADER_EXECUTION"] = "autograde"
    return _run_capped(cmd, env, str(job), timeout)


class RedactTracebacks(NbGraderPreprocessor):
    """Feedback: a failed test cell shows the error message only, never the (hidden) test code in a traceback."""

    def preprocess(self, nb, resources):
        for cell in nb.cells:
            if cell.cell_type != "code" or not utils.is_grade(cell) or utils.is_solution(cell):
                continue
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    message = str(output.get("evalue", ""))
                    output["traceback"] = [f"{output.get('ename', 'Error')}: {message}" if message
                                           else str(output.get("ename", "Error"))]
        return nb, resources


def check_solutions(course: Path, only: list[str] | None = None, timeout: int = 300) -> dict[str, dict]:
    """Verify the instructor's own solutions of every source notebook out of process (they must all pass)."""
    import nbformat

    from gptedu.grading.specs import SPECS

    results = {}
    for path in sorted(course.glob("source/*/*.ipynb")):
        if only and not path.stem.startswith(tuple(only)):
            continue
        source_nb = nbformat.read(path, as_version=4)
        grade_ids = {c.metadata.get("nbgrader", {}).get("grade_id") for c in source_nb.cells}
        specs = [spec for spec in SPECS.values() if set(spec.points) & grade_ids]
        solved = nbformat.from_dict(source_nb)
        for cell in solved.cells:
            if cell.metadata.get("nbgrader", {}).get("solution") and cell.cell_type == "code":
                cell.source = "".join(line for line in cell.source.splitlines(keepends=True)
                                      if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)
        cells = [(i, to_python(src)) for i, src in student_code_cells(solved, source_nb)]
        found = {}
        for withheld, group in withheld_groups(specs).items():
            outputs, problem = run_in_sandbox(group, cells, source_nb, timeout, False, withheld=set(withheld))
            found.update({spec.name: compare_outputs(spec, outputs, problem) for spec in group})
        results[path.stem] = found
    return results


def main(argv: list[str] | None = None) -> int:
    """``python -m gptedu.grading.verify [--course autograder] [03 07 ...]``: the solutions pass verification."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--course", type=Path, default=Path(__file__).resolve().parents[2] / "autograder")
    parser.add_argument("only", nargs="*", help="notebook name prefixes (default: all)")
    args = parser.parse_args(argv)
    failed = 0
    for notebook, found in check_solutions(args.course, args.only).items():
        bad = {name: verdict for name, verdict in found.items() if verdict}
        failed += bool(bad)
        print(f"{notebook}: {'OK' if not bad else 'FAILED'} ({', '.join(found) or 'no registered component'})")
        for name, verdict in bad.items():
            for which, text in verdict.items():
                print(f"  {name} [{which}]: {text}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["RedactTracebacks", "StartVerification", "VerifyAnswers", "check_solutions"]
