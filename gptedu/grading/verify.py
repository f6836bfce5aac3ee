"""The one trusted scoring path: every test cell is scored from the student's functions' outputs, compared with
the reference in nbgrader's own process, never from what the kernel displayed (the student's code can rewrite all
of that).

1. :class:`VerifyAnswers` takes the student's code (answer cells and cells the student added; the instructor's
   imports and constants kept) and the components' cases, built here (hidden ones from the course secret);
2. a jailed process runs the code and :func:`gptedu.grading.runner.run_case`, with a *pruned copy* of the reference
   holding only the run's prerequisites (never the class a run grades). Visible and hidden cases run separately, so
   a run whose messages the feedback may quote never held a hidden input;
3. the outputs are compared here (``Component.compare``); the verdict replaces the test cell's outputs and
   :class:`SaveTrustedGrades` writes full points or 0. An unclaimed test cell scores 0 and says so.

Hidden-test feedback names the check and the likely cause, never the inputs or any text of the student's run.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import importlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tokenize
from dataclasses import dataclass
from pathlib import Path

from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor, SaveAutoGrades
from traitlets import Integer

from gptedu.grading.sandbox_nbgrader import RESOURCE_KEY, error_output

COPY_PACKAGE = "reference_copy"
WHICH = ("visible", "hidden")


# ------------------------------------------------------------------------------------------- the student's code
def _is_code(cell) -> bool:
    return cell.cell_type == "code" and bool(cell.source.strip())


def _normalise(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def is_test_cell(cell) -> bool:
    """An autograded test cell (graded, not an answer)."""
    return cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell)


def student_code_cells(nb, *instructor_nbs) -> list[tuple[int, str]]:
    """(index, source) of the answer cells and of the code cells the student added (not the text of a cell of
    ``instructor_nbs``), in notebook order."""
    instructor = {_normalise(c.source) for other in instructor_nbs if other is not None for c in other.cells
                  if _is_code(c) and not utils.is_solution(c)}
    found = []
    for index, cell in enumerate(nb.cells):
        if not _is_code(cell) or is_test_cell(cell):
            continue
        if utils.is_solution(cell) or _normalise(cell.source) not in instructor:
            found.append((index, cell.source))
    return found


# cell magics whose body is the student's Python, run as it is by the trusted run (the magic itself is dropped)
PYTHON_BODY_MAGICS = ("time", "timeit", "capture", "prun")


def to_python(source: str) -> str:
    """IPython cell source -> plain Python: the body of a ``%%time``-like cell (:data:`PYTHON_BODY_MAGICS`) and the
    statement of a ``%time`` line are kept, other magics become no-op ``get_ipython()`` calls. The source as it is
    if it cannot parse."""
    from IPython.core.inputtransformer2 import TransformerManager

    first, _, body = source.lstrip().partition("\n")
    if first.startswith("%%") and first[2:].split(" ")[0].strip() in PYTHON_BODY_MAGICS:
        source = body
    source = re.sub(r"^(\s*)%time (.*)$", r"\1\2", source, flags=re.M)  # `%time x = f()` still binds x
    try:
        code = TransformerManager().transform_cell(source)
        ast.parse(code)
        return code
    except (SyntaxError, ValueError):
        return source  # let the sandbox report the SyntaxError for this cell


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


def _imports_reference(node: ast.stmt) -> bool:
    return (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "gptedu") or (
        isinstance(node, ast.Import) and any(a.name.split(".")[0] == "gptedu" for a in node.names))


def instructor_prelude(source_nb) -> tuple[list[str], dict[str, str]]:
    """Top-level imports and literal constants of the instructor's code cells: (the statements, without the imports
    from ``gptedu``; alias -> ``gptedu.module.Name`` of what they import from ``gptedu``)."""
    statements, from_reference = [], {}
    for cell in source_nb.cells:
        if not _is_code(cell) or utils.is_solution(cell) or utils.is_grade(cell):
            continue
        try:
            tree = ast.parse(to_python(cell.source))
        except SyntaxError:
            continue
        for node in tree.body:
            if _imports_reference(node):
                if isinstance(node, ast.ImportFrom):
                    from_reference.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names
                                           if a.name != "*"})
            elif isinstance(node, ast.Import | ast.ImportFrom) or (
                    isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)):
                statements.append(ast.unparse(node))
    return statements, from_reference


# ------------------------------------------------------------------ prerequisite classes as a pruned source copy
def _resolve(module: str, name: str) -> tuple[str, str] | None:
    """``(defining module, name there)`` of ``gptedu`` object ``module.name``; None for a module or unknown name."""
    try:
        obj = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
    if isinstance(obj, type(os)):
        return None
    real = getattr(obj, "__module__", None) or module
    if real.split(".")[0] != "gptedu":
        return None
    return real, getattr(obj, "__name__", name) if hasattr(obj, "__module__") else name


def _top_level(tree: ast.Module) -> tuple[dict[str, ast.stmt], dict[str, tuple[str, str]]]:
    """A module's definitions (name -> node: classes, functions, assignments) and its ``gptedu`` imports
    (local name -> (defining module, name))."""
    defs: dict[str, ast.stmt] = {}
    imports: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            defs[node.name] = node
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for leaf in ast.walk(target):
                    if isinstance(leaf, ast.Name):
                        defs[leaf.id] = node
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "gptedu" and node.level == 0:
            for alias in node.names:
                found = _resolve(node.module, alias.name)
                if found:
                    imports[alias.asname or alias.name] = found
    return defs, imports


def _names_in(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def write_reference_copy(dest: Path, wanted: dict[str, set[str]], withheld: set[str]) -> None:
    """Write package ``reference_copy``: for each ``gptedu`` module, only the definitions in ``wanted`` (module ->
    names) and, transitively, what they use; a withheld name (a graded component's class) becomes a stub that raises.
    Nothing else of the reference is there: an answer cell that imports from the copy finds no other class."""
    trees: dict[str, ast.Module] = {}
    keep: dict[str, set[str]] = {}
    todo = [(module, name) for module, names in wanted.items() for name in names]
    while todo:
        module, name = todo.pop()
        if name in keep.setdefault(module, set()):
            continue
        keep[module].add(name)
        if module not in trees:
            trees[module] = ast.parse(Path(importlib.import_module(module).__file__).read_text())
        defs, imports = _top_level(trees[module])
        if name in withheld or name not in defs:
            continue
        for used in _names_in(defs[name]) - {name}:
            if used in defs:
                todo.append((module, used))
            elif used in imports:  # keep the import line, and what it imports
                todo += [(module, used), imports[used]]
    root = dest / COPY_PACKAGE
    root.mkdir(parents=True, exist_ok=True)
    for module, names in keep.items():
        parts = module.split(".")[1:] or ["x"]
        path = root / Path(*parts[:-1]) / f"{parts[-1]}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(ast.unparse(_pruned(trees[module], names, withheld)) + "\n")
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()


_WITHHELD_STUB = ast.parse(
    "def _withheld(name):\n"
    "    class Withheld:\n"
    "        def __init__(self, *args, **kwargs):\n"
    "            raise NameError(f'{name} is what this notebook asks you to write: define it in your answer cell.')\n"
    "        def __call__(self, *args, **kwargs):\n"
    "            raise NameError(f'{name} is not available here.')\n"
    "    Withheld.__name__ = Withheld.__qualname__ = name\n"
    "    return Withheld\n"
).body


def _pruned(tree: ast.Module, names: set[str], withheld: set[str]) -> ast.Module:
    """The module with only the definitions in ``names`` (withheld ones as stubs), its plain imports, and its
    ``gptedu`` imports of kept names pointed at the copy."""
    defs, imports = _top_level(tree)
    kept_nodes = {id(defs[n]) for n in names if n in defs and n not in withheld}
    future, body = [], []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            future.append(node)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "gptedu" and node.level == 0:
            for alias in node.names:
                local = alias.asname or alias.name
                if local in names and local in imports:
                    real, real_name = imports[local]
                    body.append(ast.parse(f"from {COPY_PACKAGE}{real[len('gptedu'):]} import {real_name} as "
                                          f"{local}").body[0])
        elif isinstance(node, ast.Import) and any(a.name.split(".")[0] == "gptedu" for a in node.names):
            continue
        elif isinstance(node, ast.Import | ast.ImportFrom) or id(node) in kept_nodes:
            body.append(node)
    for name in sorted(names & withheld):
        body.append(ast.parse(f"{name} = _withheld({name!r})").body[0])
    tree.body = future + _WITHHELD_STUB + body
    return tree


def build_prelude(statements: list[str], provided: dict[str, str], withheld: set[str],
                  ) -> tuple[str, dict[str, set[str]]]:
    """The prelude source (the instructor's ``statements``, then imports of ``provided``, alias -> ``gptedu`` path,
    from the copy) and what the reference copy must hold (module -> names); ``withheld`` names are left out."""
    lines = ["import math", "import torch", "from torch import nn", "import torch.nn.functional as F"]
    lines += [f"try:\n    {statement}\nexcept Exception:\n    pass" for statement in statements]
    wanted: dict[str, set[str]] = {}
    for alias, qualified in sorted(provided.items()):
        module, _, name = qualified.rpartition(".")
        found = _resolve(module, name) if module.split(".")[0] == "gptedu" else None
        if found is None or found[1] in withheld:
            continue
        wanted.setdefault(found[0], set()).add(found[1])
        lines.append(f"from {COPY_PACKAGE}{found[0][len('gptedu'):]} import {found[1]} as {alias}")
    return "\n".join(lines) + "\n", wanted


def provided_names(source_nb, components, cells) -> dict[str, str]:
    """alias -> ``gptedu.module.Name`` of the reference objects the sandbox offers the student's code: the
    components' prerequisites, and the instructor's ``gptedu`` imports that the student's code names."""
    provided: dict[str, str] = {}
    if source_nb is not None:
        names = used_names([source for _, source in cells])
        provided = {alias: path for alias, path in instructor_prelude(source_nb)[1].items() if alias in names}
    for component in components:
        provided.update(component.prerequisites)
    return provided


# ------------------------------------------------------------------------------------------------ the verdicts
@dataclass
class Verdict:
    """The trusted outcome of one test cell: passed or not, and the text the feedback shows in its place."""

    passed: bool
    text: str


CONFIG_ERROR = ("course configuration error: this test cell ({grade_id}) is not registered with any graded "
                "component (gptedu.grading.components), so the grader cannot score it: it scores 0. Please tell "
                "your instructor.")


def _student_strings(outputs: dict) -> list[str]:
    """Every string the sandboxed run returned (the student's code controls all of them)."""
    found: list[str] = []
    for key, value in outputs.items():
        found.append(str(key))
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                found.append(item)
    return [s for s in found if len(s.strip()) >= 6]


def _hidden_text(failure, outputs: dict) -> str:
    """One failed hidden check, as :meth:`Failure.render` shows it hidden (its name and likely cause, nothing from
    the case), without any line that carries a string of the student's run."""
    untrusted = _student_strings(outputs)
    return "\n".join(line for line in failure.render(hidden=True).splitlines()
                     if not any(s in line for s in untrusted))


def judge(component, which: str, cases: list[tuple[str, dict]], outputs: dict | None, problem: str) -> Verdict:
    """Compare a sandboxed run's outputs with the reference for one component's visible or hidden cases."""
    title = component.title
    hidden = which == "hidden"
    if outputs is None:
        if hidden:  # the problem's text may quote the student's code's error output: not shown for hidden cases
            problem = problem.split(" (")[0].split(". ")[0]
        return Verdict(False, f"✗ {title}: the grader could not run your code in isolation: {problem}")
    failures, bad_outputs = [], {}
    for key, case in cases:
        found = outputs.get(key)
        if not isinstance(found, dict):
            failures, bad_outputs = [f"no result for case {case['id']}" if not hidden else "no result"], {}
            break
        try:
            failed = component.compare(case, found)
        except Exception as exc:  # noqa: BLE001 - malformed outputs from the sandbox
            failures = [f"unexpected outputs ({type(exc).__name__})"]
            break
        if failed:
            failures, bad_outputs = failed[:2], found
            break
    if not failures:
        what = "the hidden tests" if hidden else f"{len(cases)} visible test case{'s' * (len(cases) != 1)}"
        return Verdict(True, f"✓ {title}: passed {what} (run by the grader outside your notebook).")
    if hidden:
        body = "\n".join(dict.fromkeys(
            _hidden_text(f, bad_outputs) if not isinstance(f, str) else f"  ✗ {f}" for f in failures))
        return Verdict(False, f"✗ {title}: fails the hidden tests (other sizes, seeds and inputs than the "
                              f"self-check's; their details are not shown).\n{body}")
    body = "\n".join(f if isinstance(f, str) else f.render() for f in failures)
    cell_errors = outputs.get("_cells") or []
    hint = ""
    if cell_errors and isinstance(cell_errors, list):
        hint = "\nWhen your cells were run on their own: " + "; ".join(str(e)[:500] for e in cell_errors[:3])
    return Verdict(False, f"✗ {title}: re-run by the grader (your answer cells only, in a fresh process), your "
                          f"code does not pass:\n{body}{hint}")


def verdict_output(verdict: Verdict) -> NotebookNode:
    """The test cell's only output in the autograded notebook (and the feedback)."""
    if verdict.passed:
        return NotebookNode(output_type="stream", name="stdout", text=verdict.text + "\n")
    return error_output("CheckFailed", verdict.text)


# ------------------------------------------------------------------------------------------- the preprocessors
def course_secret(config) -> bytes:
    """The secret of the course nbgrader is grading (``CourseDirectory.root``); raises ``MissingSecret``."""
    from nbgrader.coursedir import CourseDirectory

    from gptedu.grading import secret

    return secret.load(CourseDirectory(config=config).root)


class VerifyAnswers(NbGraderPreprocessor):
    """Decide every test cell from the trusted comparison, put the verdict in its outputs and in
    ``resources["gptedu_grading"]["verdicts"]`` (grade id -> :class:`Verdict`) for :class:`SaveTrustedGrades`."""

    timeout = Integer(300, help="Seconds for one sandboxed run (one notebook's components, visible or hidden "
                                "cases).").tag(config=True)

    def preprocess(self, nb, resources):
        import time

        started = time.monotonic()
        info = resources.setdefault(RESOURCE_KEY, {})
        pending = info.pop("pending_verification", None)
        verdicts: dict[str, Verdict] = {}
        try:  # started by StartVerification while the kernel ran (same code, same cases), or now
            results = pending.result() if pending is not None else self.verdicts(nb, resources)
        except Exception as exc:  # noqa: BLE001 - a grader bug must not pass a student, nor crash the batch
            from gptedu.grading.secret import MissingSecret

            if isinstance(exc, MissingSecret):
                raise  # no secret, no hidden tests: this notebook is not graded (the log says what to run)
            self.log.error("gptedu verification failed: %s", exc, exc_info=True)
            results = {}
            failure = Verdict(False, f"the grader could not verify this answer ({type(exc).__name__}); your "
                                     "instructor will review it.")
            verdicts = {cell.metadata.nbgrader["grade_id"]: failure for cell in nb.cells if is_test_cell(cell)}
        from gptedu.grading.components import for_grade_id

        for cell in nb.cells:
            if not is_test_cell(cell):
                continue
            grade_id = cell.metadata.nbgrader["grade_id"]
            if grade_id not in verdicts:
                found = for_grade_id(grade_id)
                if found is None:
                    self.log.error("gptedu: test cell %s is not registered with any graded component: it scores 0",
                                   grade_id)
                    verdicts[grade_id] = Verdict(False, CONFIG_ERROR.format(grade_id=grade_id))
                else:
                    verdicts[grade_id] = results.get((found[0].name, found[1])) or Verdict(
                        False, f"✗ {found[0].title}: no verdict was reached for this test; your instructor will "
                               "review it.")
            cell.outputs = [verdict_output(verdicts[grade_id])]
        info["verdicts"] = verdicts
        name = (resources.get("nbgrader") or {}).get("notebook", "")
        self.log.info("gptedu timing %s: kernel start %.1f s, notebook %.1f s, verification %.1f s more",
                      name, info.get("kernel_seconds", 0.0), info.get("seconds", 0.0), time.monotonic() - started)
        return nb, resources

    def plan(self, nb, resources) -> dict:
        """What to verify: the student's code (plain strings), the notebook's registered components and their
        cases (built here, the hidden ones from the course secret)."""
        from gptedu.grading.components import for_grade_id
        from gptedu.grading.secret import for_submission

        components = {}
        for cell in nb.cells:
            if is_test_cell(cell):
                found = for_grade_id(cell.metadata.nbgrader.get("grade_id", ""))
                if found:
                    components[found[0].name] = found[0]
        source_nb, release_nb = self._instructor_notebooks(resources)
        cells = [(i, to_python(s)) for i, s in student_code_cells(nb, source_nb, release_nb)]
        student_dir = (resources.get("metadata") or {}).get("path")
        secret = for_submission(course_secret(self.config), [source for _, source in cells], student_dir)
        return {"components": components, "cells": cells, "source_nb": source_nb, "secret": secret,
                "student_dir": student_dir}

    def verdicts(self, nb, resources) -> dict[tuple[str, str], Verdict]:
        """(component name, "visible"|"hidden") -> :class:`Verdict` for the notebook's components."""
        import torch

        plan = self.plan(nb, resources)
        if not plan["components"]:
            return {}
        torch.set_num_threads(1)  # the comparisons are small; more threads only contend with the kernel
        return verify_components(list(plan["components"].values()), plan["cells"], plan["source_nb"],
                                 plan["secret"], self.timeout, plan["student_dir"])

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


def verify_components(components, cells, source_nb, secret: bytes, timeout: int, student_dir: str | None = None,
                      ) -> dict[tuple[str, str], Verdict]:
    """Run the student's ``cells`` on every case of ``components`` in the sandbox and judge the outputs: one run
    per :func:`withheld_groups` group and per kind of case (visible, hidden)."""
    results: dict[tuple[str, str], Verdict] = {}
    # in the course's order, whatever order the submission put its test cells in
    for withheld, group in sorted(withheld_groups(sorted(components, key=lambda c: c.name)).items()):
        provided = provided_names(source_nb, group, cells)
        for which in WHICH:  # a group's hidden run follows its visible one in the same jail
            cases = {c.name: [(case_key(c, which, i), case) for i, case in enumerate(
                c.cases(hidden=which == "hidden", secret=secret if which == "hidden" else None))] for c in group}
            outputs, problem = run_in_sandbox(group, cells, source_nb, timeout, withheld=set(withheld), which=which,
                                              student_dir=student_dir, cases=cases, provided=provided)
            for component in group:
                results[(component.name, which)] = judge(component, which, cases[component.name], outputs, problem)
    return results


class SaveTrustedGrades(SaveAutoGrades):
    """nbgrader's ``SaveAutoGrades``, except that a test cell's score is SET from the trusted verdict (full points,
    or 0 when it failed or has none), never read from the cell's outputs."""

    def _add_score(self, cell, resources) -> None:
        if not is_test_cell(cell):
            return super()._add_score(cell, resources)
        grade_id = cell.metadata["nbgrader"]["grade_id"]
        grade = self.gradebook.find_grade(grade_id, self.notebook_id, self.assignment_id, self.student_id)
        verdict = ((resources.get(RESOURCE_KEY) or {}).get("verdicts") or {}).get(grade_id)
        max_score = float(grade.max_score or 0.0)  # from the gradebook: the instructor's points, not the cell's
        grade.auto_score = max_score if isinstance(verdict, Verdict) and verdict.passed else 0.0
        grade.needs_manual_grade = grade.manual_score is not None
        self.gradebook.db.commit()


@functools.cache
def _executor():
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="gptedu-verify")


class StartVerification(NbGraderPreprocessor):
    """Start :class:`VerifyAnswers`' runs in the background (they need only the submitted code) while the kernel
    runs the notebook. Place it right before ``SandboxExecute``. Without a course secret it stops here."""

    def preprocess(self, nb, resources):
        import copy

        verifier = VerifyAnswers(config=self.config)
        course_secret(self.config)  # fail before the kernel starts
        from gptedu.grading import sandbox

        with contextlib.suppress(sandbox.SandboxError):  # reported by the run itself
            verify_server().start_soon()  # boots (imports torch) beside the kernel
        # a private copy of what the plan reads: the kernel's run changes the notebook meanwhile
        snapshot = copy.deepcopy(nb)
        context = {"nbgrader": dict(resources.get("nbgrader") or {}),
                   "metadata": dict(resources.get("metadata") or {})}
        future = _executor().submit(verifier.verdicts, snapshot, context)
        resources.setdefault(RESOURCE_KEY, {})["pending_verification"] = future
        return nb, resources


def case_key(component, which: str, index: int) -> str:
    return f"{component.name}:{which}:{index}"


def _check_archive(data: bytes) -> None:
    """Refuse results that could expand in nbgrader's process: ``torch.save`` writes every entry uncompressed, so a
    compressed entry (a zip bomb: a few KB declaring GBs of tensors) or entries larger than the bytes received can
    only come from the student's code."""
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise ValueError(f"the results are not a torch archive ({exc})") from None
    if any(e.compress_type != zipfile.ZIP_STORED for e in entries):
        raise ValueError("the results contain a compressed entry (torch.save never writes one)")
    if sum(e.file_size for e in entries) > len(data):
        raise ValueError("the results declare more bytes than were received")


def _parse_outputs(stdout: bytes) -> dict:
    """The outputs after the runner's last marker (``torch.load`` with ``weights_only``: plain data only)."""
    import torch

    from gptedu.grading.verify_runner import MARKER

    start = stdout.rfind(MARKER)
    if start < 0:
        raise ValueError("no results were written")
    data = stdout[start + len(MARKER):]
    _check_archive(data)
    outputs = torch.load(io.BytesIO(data), weights_only=True)
    if not isinstance(outputs, dict):
        raise ValueError("the results are not a dict")
    todo = [outputs]
    while todo:  # a tensor may declare more elements than it stores (stride 0), or reach past its storage
        item = todo.pop()
        if isinstance(item, dict | list | tuple):
            todo += item.values() if isinstance(item, dict) else item
        elif isinstance(item, torch.Tensor) and item.numel():
            stored = item.untyped_storage().nbytes() // item.element_size()
            last = item.storage_offset() + sum((n - 1) * k for n, k in zip(item.shape, item.stride(), strict=True))
            if item.numel() > stored or last >= stored or min(item.stride(), default=1) < 0:
                raise ValueError("a result tensor declares more elements than it holds")
    return outputs


class VerifyServer:
    """Jailed Pythons that import torch before they get work (one waits in advance); each run is a child forked in
    the jail. One jail serves ONE ``key`` = ``(student, kind)``: a student's visible runs share one jail, the hidden
    runs another (what a hidden run leaves in its jail, e.g. SysV IPC objects, never reaches a visible run, whose
    feedback quotes the student's messages), and both end when another student's key comes, so nothing passes
    between students. ``run(files, timeout, key)`` -> (exit code or None on timeout, stdout, stderr tail).
    Unjailed (``GPTEDU_UNSANDBOXED=1``): the same runner in a plain process."""

    def __init__(self, jailed: bool):
        import threading

        self.jailed = jailed
        self._waiting: list[subprocess.Popen] = []
        self._bound: dict[tuple[str, str], subprocess.Popen] = {}  # key -> the jail serving it
        self._dir: str | None = None
        self.lock = threading.Lock()

    def _launch(self) -> subprocess.Popen:
        import collections
        import threading

        from gptedu.grading import sandbox

        if self._dir is None:  # holds only the runner: the jail sees it read-only at /opt/gptedu-verify
            self._dir = tempfile.mkdtemp(prefix="gptedu-verify-")
            shutil.copyfile(Path(__file__).with_name("verify_runner.py"), Path(self._dir) / "verify_runner.py")
        env = {k: v for k, v in os.environ.items() if k in sandbox.ENV_PASSTHROUGH}
        env.update(PATH=os.environ.get("PATH", "/usr/bin:/bin"), HOME=self._dir, TMPDIR=self._dir,
                   NBGRADER_EXECUTION="autograde")
        cmd = [sys.executable, "-I", os.path.join(self._dir, "verify_runner.py")]
        if self.jailed:
            cmd = sandbox.exec_argv([sys.executable, "-I", "/opt/gptedu-verify/verify_runner.py"], "--no-reference",
                                    "--as-pid-1", "--ro", f"{self._dir}:/opt/gptedu-verify")
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                cwd=self._dir, start_new_session=True)
        proc.tail = collections.deque(maxlen=32)  # the last chunks of its stderr
        threading.Thread(target=lambda: [proc.tail.append(c) for c in iter(lambda: proc.stderr.read1(4096), b"")],
                         daemon=True).start()
        return proc

    def start_soon(self) -> None:
        """Start a jailed Python now, unless one is waiting (it boots beside the kernel). Never waits."""
        if not self.lock.acquire(blocking=False):
            return
        try:
            self._waiting = [p for p in self._waiting if p.poll() is None]
            if not self._waiting:
                self._waiting.append(self._launch())
        finally:
            self.lock.release()

    def run(self, files: dict[str, bytes], timeout: float, key: tuple[str, str] | None = None,
            ) -> tuple[int | None, bytes, str]:
        from gptedu.grading.verify_runner import pack_files

        with self.lock:
            proc = self._bound.pop(key, None) if key is not None else None
            stale = [self._bound.pop(k) for k in list(self._bound) if key is None or k[0] != key[0]]
            if proc is None or proc.poll() is not None:
                self._waiting = [p for p in self._waiting if p.poll() is None]
                proc = self._waiting.pop(0) if self._waiting else self._launch()
        for old in stale:
            _end(old)
        try:
            code, out = _exchange(proc, pack_files(files), timeout)
        except Exception as exc:  # noqa: BLE001 - timeout, crash, malformed reply: this jail is done
            _end(proc)
            tail = b"".join(proc.tail).decode(errors="replace")[-2000:]
            return (None if isinstance(exc, TimeoutError) else 1), b"", tail or f"{type(exc).__name__}: {exc}"
        tail = b"".join(proc.tail).decode(errors="replace")[-2000:]
        proc.tail.clear()
        with self.lock:  # runs may come two at a time: the jail kept last wins, any other is ended
            old = self._bound.pop(key, None) if key is not None else proc
            if key is not None:
                self._bound[key] = proc
        if old is not None and old is not proc:
            _end(old)
        if key is None:
            _end(proc)
        self.start_soon()
        return code, out, tail

    def stop(self) -> None:
        with self.lock:
            procs, self._waiting = self._waiting, []
            procs += self._bound.values()
            self._bound = {}
        for proc in procs:
            _end(proc)
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def _exchange(proc: subprocess.Popen, payload: bytes, timeout: float) -> tuple[int, bytes]:
    """Send one run (8-byte length + payload); read its reply (8-byte length, 4-byte exit code, stdout) within
    ``timeout`` seconds. Raises TimeoutError, EOFError or ValueError."""
    import select
    import threading
    import time

    from gptedu.grading.verify_runner import STDOUT_CAP

    def send() -> None:
        with contextlib.suppress(OSError):
            proc.stdin.write(len(payload).to_bytes(8, "big") + payload)
            proc.stdin.flush()

    threading.Thread(target=send, daemon=True).start()
    fd, deadline = proc.stdout.fileno(), time.monotonic() + timeout

    def read_exact(size: int) -> bytes:
        chunks, left = [], size
        while left:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError("no reply in time")
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                raise EOFError("the runner stopped")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    head = read_exact(12)
    size = int.from_bytes(head[:8], "big")
    if size > STDOUT_CAP:  # more than the runner ever sends
        raise ValueError("malformed reply")
    return int.from_bytes(head[8:], "big", signed=True), read_exact(size)


def _end(proc: subprocess.Popen) -> None:
    """End a runner: SIGTERM to its launcher (which ends the jail and removes its cgroup), SIGKILL if it lingers."""
    import signal

    for signum, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 30)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)
    for stream in (proc.stdin, proc.stdout):
        with contextlib.suppress(Exception):
            stream.close()


_SERVERS: dict[bool, VerifyServer] = {}


def verify_server() -> VerifyServer:
    """The process-wide runner source: jailed, or unjailed where ``GPTEDU_UNSANDBOXED=1`` says so. Raises
    :class:`~gptedu.grading.sandbox.SandboxError` (with the fix) when the jail cannot run: never a silent fallback."""
    from gptedu.grading import sandbox

    jailed = not sandbox.unsandboxed()
    found = sandbox.problems() if jailed else []
    if found:
        raise sandbox.SandboxError("the grading sandbox cannot run here (" + "; ".join(found) + "). See `python -m "
                                   f"gptedu.grading.sandbox check`; {sandbox.UNSANDBOXED_ENV}=1 grades without it.")
    if jailed not in _SERVERS:
        import atexit

        if not _SERVERS:
            atexit.register(stop_servers)
        _SERVERS[jailed] = VerifyServer(jailed)
    return _SERVERS[jailed]


def stop_servers() -> None:
    for server in list(_SERVERS.values()):
        server.stop()


def _read_tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def withheld_groups(components) -> dict[tuple[str, ...], list]:
    """Components grouped by the reference classes withheld from their sandbox: every class graded in the
    notebook except the component's prerequisites (``GPTModel`` may use the reference ``TransformerDecoder``; the
    ``TransformerDecoder`` check runs where none exists; notebook 10's block runs with the reference ``LayerNorm``,
    the ``LayerNorm`` check without it)."""
    targets = {component.target for component in components}
    groups: dict[tuple[str, ...], list] = {}
    for component in components:
        allowed = {path.rpartition(".")[2] for path in component.prerequisites.values()}
        withheld = tuple(sorted((targets - allowed) | set(component.equivalents)))
        groups.setdefault(withheld, []).append(component)
    return groups


def run_in_sandbox(specs, cells, source_nb, timeout: int, *, withheld: set[str], cases: dict[str, list],
                   provided: dict[str, str], which: str, student_dir: str | None = None) -> tuple[dict | None, str]:
    """Run the student's cells and ``run_case`` on ``cases`` (component name -> [(key, case)], built on the trusted
    side) in the jail, with the reference copy of ``provided`` (alias -> ``gptedu`` path) without the ``withheld``
    classes; (outputs, problem). ``which``: "visible" or "hidden", the kind of ``cases`` (each kind has its own jail).
    The jail is required unless ``GPTEDU_UNSANDBOXED=1``."""
    import torch

    from gptedu.grading import runner, sandbox

    statements, _ = instructor_prelude(source_nb)
    prelude, wanted = build_prelude(statements, provided, withheld)
    with tempfile.TemporaryDirectory(prefix="gptedu-verify-") as tmp:
        job = Path(tmp) / "job"
        job.mkdir()
        if student_dir and os.path.isdir(student_dir):  # first: the grader's own files below replace any namesake
            sandbox.copy_folder(student_dir, str(job))  # regular files only, no notebooks, size-capped
        write_reference_copy(job, wanted, withheld)
        shutil.copyfile(runner.__file__, job / "grading_runner.py")
        torch.save(cases, job / "cases.pt")
        (job / "job.json").write_text(json.dumps({
            "prelude": prelude, "cells": cells, "cell_seconds": max(5, timeout // 4),
            "specs": [{"name": spec.name, "target": spec.target} for spec in specs],
        }))
        try:
            server = verify_server()
        except sandbox.SandboxError as exc:
            return None, str(exc)
        files = _read_tree(job)
        # one jail per student (every run of the submission) and kind; without a student folder, one code + copy
        owner = os.path.realpath(student_dir) if student_dir else hashlib.sha256(json.dumps(sorted(
            (k, v.hex()) for k, v in files.items() if k != "cases.pt")).encode()).hexdigest()
        key = (owner, which)
        code, stdout, stderr = server.run(files, timeout, key)
        if code is None:
            return None, f"it did not finish within {timeout} s (is there an endless loop at the top level?)"
        try:
            return _parse_outputs(stdout), ""
        except Exception as exc:  # noqa: BLE001 - no or unreadable results: the student's code stopped early
            tail = " ".join(stderr.strip().splitlines()[-3:])
            return None, f"it stopped before producing results ({exc}; exit code {code}). {tail}"


def check_solutions(course: Path, only: list[str] | None = None, timeout: int = 300,
                    secret: bytes | None = None) -> dict[str, dict]:
    """Verify the instructor's solutions of every source notebook out of process (default ``secret``: the course's,
    else a random one)."""
    import secrets as random_secrets

    import nbformat

    from gptedu.grading import components as registry
    from gptedu.grading import secret as course_secrets

    if secret is None:
        try:
            secret = course_secrets.load(course)
        except course_secrets.MissingSecret:
            secret = random_secrets.token_bytes(32)
    results = {}
    for path in sorted(course.glob("source/*/*.ipynb")):
        if only and not path.stem.startswith(tuple(only)):
            continue
        source_nb = nbformat.read(path, as_version=4)
        grade_ids = {c.metadata.get("nbgrader", {}).get("grade_id") for c in source_nb.cells}
        found_components = [c for c in registry.all_components() if set(c.points) & grade_ids]
        # the source's answer cells hold the solutions (their ### BEGIN/END SOLUTION markers are comments)
        cells = [(i, to_python(src)) for i, src in student_code_cells(source_nb, source_nb)]
        verdicts = verify_components(found_components, cells, source_nb, secret, timeout)
        results[path.stem] = {c.name: {which: verdicts[(c.name, which)].text for which in WHICH
                                       if not verdicts[(c.name, which)].passed} for c in found_components}
        unregistered = sorted(gid for cell in source_nb.cells if is_test_cell(cell)
                              for gid in [cell.metadata.nbgrader["grade_id"]] if registry.for_grade_id(gid) is None)
        if unregistered:
            results[path.stem]["(unregistered test cells)"] = {"config": ", ".join(unregistered)}
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


__all__ = ["SaveTrustedGrades", "StartVerification", "Verdict", "VerifyAnswers", "check_solutions", "judge",
           "verify_components"]
