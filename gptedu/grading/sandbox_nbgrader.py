"""nbgrader glue for the sandbox: a hardened ``Execute`` and the one call that configures a course.

``SandboxExecute`` replaces nbgrader's ``Execute`` in ``Autograde.autograde_preprocessors`` and adds what nbgrader
lacks, so that every submission ends with a defined grade instead of a crashed notebook:

* a time limit for the whole notebook (``notebook_timeout``) on top of the per-cell ``timeout``: once it is spent,
  the remaining cells are not run and score 0;
* a kernel that dies (memory limit, CPU limit, ``os._exit``, a crash) or stops answering (a loop that swallows
  ``KeyboardInterrupt``) no longer fails the notebook: that cell gets an error explaining what happened, the
  remaining cells are marked "not run", and the notebook is graded;
* a cap on the output a cell may send (``max_output_bytes``), counted over every kind of output (stream text, all
  mime data and display metadata, display updates, error name, value and traceback, widget messages) while it
  streams in, so a cell cannot exhaust nbgrader's memory or write a huge notebook;
* ``SandboxKernelManager``: the jailed kernel's ipc sockets, reached through a fresh private folder per kernel.

No score is read from what the kernel shows: :mod:`gptedu.grading.verify` sets every test cell's score and output.

``configure_nbgrader(c)`` is what ``autograder/nbgrader_config.py`` calls.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import sys
import tempfile
from time import monotonic

from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    ClearOutput,
    DeduplicateIds,
    Execute,
    IgnorePattern,
    LimitOutput,
    NbGraderPreprocessor,
    OverwriteCells,
    OverwriteKernelspec,
)
from traitlets import Bool, Integer, Unicode

RESOURCE_KEY = "gptedu_grading"


def error_output(ename: str, message: str) -> NotebookNode:
    """An ``error`` output, which nbgrader scores 0 and shows in the feedback."""
    lines = [f"\x1b[0;31m{ename}\x1b[0m: {message.splitlines()[0] if message else ''}"]
    lines += message.splitlines()[1:]
    return NotebookNode(output_type="error", ename=ename, evalue=message, traceback=lines)


class _StopNotebook(Exception):
    pass


class SandboxExecute(Execute):
    """nbgrader's ``Execute`` with a notebook time limit, kernel-death handling and an output cap."""

    notebook_timeout = Integer(
        900, help="Seconds for the whole notebook; after that the remaining cells are not run (score 0)."
    ).tag(config=True)
    max_output_bytes = Integer(
        500_000, help="Bytes of output kept per cell; the rest is dropped while it streams in."
    ).tag(config=True)
    prestart_kernel = Bool(
        True, help="While a notebook runs, start a kernel for the next one (same kernel, folder and environment; "
                   "a fresh process that has run nothing), so that kernel start-up overlaps grading."
    ).tag(config=True)

    def _reset(self) -> None:
        """A notebook's run starts: no deadline yet (it starts with the first cell: the kernel's start-up has its
        own timeout), nothing stopped, no cell run, no output."""
        self._deadline = None
        self._stopped = ""
        self._current = -1
        self._output_bytes: dict[int, int] = {}

    def preprocess(self, nb, resources=None, km=None):
        self._resources_for_next = resources
        info = self._info = {"kernel_seconds": 0.0}
        self._reset()
        started = self._started_at = monotonic()
        prestarted = None
        if km is None and self.prestart_kernel:
            self._check_assign_resources(resources)  # what the kernel name and folder depend on
            prestarted = _PRESTARTED.take(self._kernel_key(nb, resources), self.log)
        try:
            with contextlib.suppress(_StopNotebook):
                nb, resources = super().preprocess(nb, resources, prestarted or km)
        except Exception:
            if prestarted is None:
                raise
            # a kernel started in advance that fails to connect must not cost the student anything: start afresh
            self.log.warning("gptedu: the kernel started in advance did not answer; starting a new one")
            self._cleanup_prestarted()
            self._reset()
            with contextlib.suppress(_StopNotebook):
                nb, resources = super().preprocess(nb, resources, None)
            prestarted = None
        finally:
            if prestarted is not None:
                self._cleanup_prestarted()
        info.update(seconds=monotonic() - started, stopped=self._stopped)
        if self._stopped:
            for index, cell in enumerate(nb.cells):
                if index > self._current and cell.cell_type == "code" and cell.source.strip():
                    cell.outputs = [error_output("NotRun", f"This cell was not run: {self._stopped}")]
        if resources is None:
            resources = {}
        resources.setdefault(RESOURCE_KEY, {}).update(info)
        return nb, resources

    def _cleanup_prestarted(self) -> None:
        """nbclient leaves a kernel it did not start running: stop it (and its client) like its own."""
        if self.km is not None:
            with contextlib.suppress(Exception):
                self._cleanup_kernel()
        self.km = self.kc = None

    def _kernel_key(self, nb, resources) -> tuple:
        name = self.kernel_name or nb.metadata.get("kernelspec", {}).get("name", "")
        path = ((resources or {}).get("metadata") or {}).get("path") or ""
        # the grader's own torch sets TORCHINDUCTOR_CACHE_DIR when it first compares a training loop; the jailed
        # kernel has its own /tmp, so that variable does not change what a kernel does
        env = tuple(sorted((k, v) for k, v in os.environ.items() if not k.startswith("TORCHINDUCTOR_")))
        return name, os.path.abspath(path) if path else "", env

    def _start_next_kernel(self) -> None:
        """A kernel for the next notebook, if it will look like this one (same kernel, folder, environment)."""
        if not self.prestart_kernel or self.km is None:
            return
        next_notebook = self._next_notebook()
        if next_notebook is None:
            return
        key = self._kernel_key(self.nb, self._resources_for_next)
        _PRESTARTED.start(key, self, self.log, warm_code=_Prestarted.warm_code_for(next_notebook))

    def _next_notebook(self) -> str | None:
        """The path of this submission's next notebook (nbgrader grades them in sorted order), None if there is
        none, "" if that cannot be told (then a kernel is started in advance all the same)."""
        info = (self._resources_for_next or {}).get("nbgrader") or {}
        if not {"student", "assignment", "notebook"} <= set(info):
            return ""
        try:
            from nbgrader.coursedir import CourseDirectory

            coursedir = CourseDirectory(config=self.config)
            folder = coursedir.format_path(coursedir.submitted_directory, info["student"], info["assignment"])
            later = sorted(n for n in os.listdir(folder) if n.endswith(".ipynb") and n[:-6] > info["notebook"])
            return os.path.join(folder, later[0]) if later else None
        except Exception:  # noqa: BLE001 - only decides whether to start a kernel in advance
            return ""

    def _get_timeout(self, cell):
        timeout = super()._get_timeout(cell)
        if self._deadline is None:
            return timeout
        remaining = max(1, int(self._deadline - monotonic()) + 1)
        return remaining if timeout is None else min(timeout, remaining)

    def preprocess_cell(self, cell, resources, index):
        self._current = index
        if cell.cell_type != "code" or not cell.source.strip():
            return cell, resources
        if self._deadline is None:
            self._deadline = monotonic() + self.notebook_timeout
            self._info["kernel_seconds"] = round(monotonic() - self._started_at, 2)
            self._start_next_kernel()  # this kernel is up: the next one boots while this notebook runs
        if monotonic() >= self._deadline:
            self._current = index - 1
            self._out_of_time()
        try:
            super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._stop(cell, "KernelDied", "the Python kernel died while running this cell. The usual causes: "
                       "too much memory (the grader allows a fixed amount), too much CPU time, os._exit() or "
                       "sys.exit() in your code, or a crash in a native library.")
        except CellTimeoutError:
            self._stop(cell, "KernelUnresponsive", "this cell did not stop when interrupted after its time limit "
                       "(does it catch KeyboardInterrupt, e.g. with a bare `except:`?). The kernel was stopped.")
        if monotonic() >= self._deadline:
            self._out_of_time()
        return cell, resources

    def _out_of_time(self) -> None:
        self._stopped = (f"the notebook used up its time limit ({self.notebook_timeout} s). Look for a loop "
                         "that never ends or a very slow cell above.")
        raise _StopNotebook

    def _stop(self, cell, ename: str, message: str) -> None:
        cell.outputs = [error_output(ename, message), *cell.get("outputs", [])]
        self._stopped = f"an earlier cell stopped the kernel ({ename})."
        raise _StopNotebook

    def process_message(self, msg, cell, cell_index):
        """Count every kind of output a cell sends (stream text, all mime data and metadata, display updates,
        error name, value and traceback, widget messages) as it streams in; past ``max_output_bytes`` the rest
        is dropped."""
        if msg.get("msg_type") in _OUTPUT_MESSAGES:
            # + 64: what each output costs in the notebook beyond its content (many tiny outputs add up)
            size = 64 + _size(msg.get("content")) + sum(len(b) for b in msg.get("buffers") or [])
            used = self._output_bytes.get(cell_index, 0)
            self._output_bytes[cell_index] = used + size
            if used + size > self.max_output_bytes:
                if used <= self.max_output_bytes:  # say it once
                    cell.outputs.append(NotebookNode(
                        output_type="stream", name="stdout",
                        text=f"\n[output cut by the grader: more than {self.max_output_bytes} bytes]\n"))
                    self._output_bytes[cell_index] = self.max_output_bytes + 1
                return None
        return super().process_message(msg, cell, cell_index)

    def on_cell_executed(self, **kwargs):
        """nbgrader appends the execute reply's error when no error output came: capped like the outputs."""
        reply = kwargs["execute_reply"]["content"]
        used = self._output_bytes.get(kwargs["cell_index"], 0)
        if reply.get("status") == "error" and used + _size(reply) > self.max_output_bytes:
            cell = kwargs["cell"]
            if not any(o.get("output_type") == "error" for o in cell.outputs):
                cell.outputs.append(error_output(str(reply.get("ename"))[:200],
                                                 str(reply.get("evalue"))[:2000] + " [cut by the grader]"))
            return None
        return super().on_cell_executed(**kwargs)


_OUTPUT_MESSAGES = {"stream", "display_data", "execute_result", "update_display_data", "error", "comm_open",
                    "comm_msg"}


def _size(obj, depth: int = 0) -> int:
    """Roughly the bytes of a decoded JSON message (strings, keys, numbers); absurd nesting counts as huge."""
    if isinstance(obj, str | bytes):
        return len(obj)
    if depth > 64:
        return 1 << 40
    if isinstance(obj, dict):
        return 2 + sum(len(str(k)) + _size(v, depth + 1) for k, v in obj.items())
    if isinstance(obj, list | tuple):
        return 2 + sum(_size(v, depth + 1) for v in obj)
    return 8


class SandboxKernelManager(AsyncKernelManager):
    """The kernel manager of the jailed kernel: ipc transport, with a fresh private folder per kernel for the links
    to its sockets (the sockets themselves live inside the kernel's jail), removed with the kernel."""

    async def _async_pre_start_kernel(self, **kw):
        self.transport = "ipc"
        self._ipc_dir = tempfile.mkdtemp(prefix="gptedu-ipc-")
        self.ip = os.path.join(self._ipc_dir, "kernel")
        return await super()._async_pre_start_kernel(**kw)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart and getattr(self, "_ipc_dir", None):
            shutil.rmtree(self._ipc_dir, ignore_errors=True)


class SandboxUnavailable(NbGraderPreprocessor):
    """Put first when the sandbox cannot run: every notebook stops here with the reason and the fix."""

    message = Unicode("").tag(config=True)

    def preprocess(self, nb, resources):
        raise RuntimeError(self.message)


class _Prestarted:
    """At most one kernel started in advance for the next notebook, with the key (kernel name, working folder,
    environment) it was started for. A kernel is only ever handed to a notebook with the same key, and only once;
    otherwise it is shut down. The only code it has run is ``warm_code_for``: it imports torch (and, where the next
    notebook builds an optimizer, ``torch._dynamo``, which that loads) while the current notebook still runs,
    binding no name in the user's namespace, so the next notebook starts with torch in ``sys.modules``, as after
    its own ``import torch``."""

    # What the next notebook will import anyway, imported while the current one runs: torch; matplotlib.pyplot
    # (0.6 s, every setup cell imports it) where the notebook mentions matplotlib; torch._dynamo (~1.5 s, loaded by
    # building any torch optimizer: torch/_compile.py) only where it mentions an optimizer -- warming it everywhere
    # competed with the notebooks' own cells for the two cores and made the series slower.
    WARM_CODE = "__import__('torch')"
    WARM_MODULES = (("matplotlib", "matplotlib.pyplot"), ("optim", "torch._dynamo"))

    @classmethod
    def warm_code_for(cls, notebook_path: str) -> str:
        """``WARM_CODE`` plus the ``WARM_MODULES`` whose word the notebook's text mentions."""
        try:
            with open(notebook_path, encoding="utf-8", errors="replace") as f:
                text = f.read(4_000_000)
        except OSError:
            return cls.WARM_CODE
        return "; ".join([cls.WARM_CODE, *(f"__import__({module!r})" for word, module in cls.WARM_MODULES
                                           if word in text)])

    def __init__(self):
        self.key = None
        self.km = None
        self.kc = None

    def start(self, key: tuple, client, log, warm_code: str) -> None:
        from jupyter_core.utils import run_sync

        self.discard()
        try:
            km = client.kernel_manager_class(kernel_name=key[0], config=client.config)
            extra = list(client.extra_arguments)
            if getattr(km, "ipykernel", False) and client.ipython_hist_file and not any(
                    a.startswith("--HistoryManager.hist_file") for a in extra):
                extra.append(f"--HistoryManager.hist_file={client.ipython_hist_file}")
            run_sync(km.start_kernel)(extra_arguments=extra, cwd=key[1] or None)
        except Exception as exc:  # noqa: BLE001 - only an optimisation: the next notebook starts its own
            log.warning("gptedu: could not start the next kernel in advance: %s", exc)
            return
        self.key, self.km = key, km
        self._warm(km, log, warm_code)

    def _warm(self, km, log, code: str) -> None:
        """Send ``code`` (silent: no output, no history, no execution count) without waiting for it."""
        try:
            kc = km.client()
            kc.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
            kc.execute(code, silent=True, store_history=False, allow_stdin=False)
        except Exception as exc:  # noqa: BLE001 - only an optimisation: the notebook imports torch itself
            log.warning("gptedu: could not warm the next kernel: %s", exc)
            return
        self.kc = kc

    def _close_client(self) -> None:
        kc, self.kc = self.kc, None
        if kc is not None:
            with contextlib.suppress(Exception):
                kc.stop_channels()

    def take(self, key: tuple, log):
        from jupyter_core.utils import run_sync

        self._close_client()
        km, self.km = self.km, None
        if km is None:
            return None
        if self.key != key or not run_sync(km.is_alive)():
            self.km = km
            self.discard()
            return None
        return km

    def discard(self) -> None:
        self._close_client()
        km, self.km = self.km, None
        if km is None:
            return
        from jupyter_core.utils import run_sync

        try:  # not now=True: a SIGKILLed launcher cannot remove its jail's (empty) mount point in /tmp
            run_sync(km.shutdown_kernel)(now=False)
        except Exception:  # noqa: BLE001 - at exit the event loop may be gone: kill the launcher directly
            with contextlib.suppress(Exception):
                km.provisioner.process.kill()


_PRESTARTED = _Prestarted()
atexit.register(_PRESTARTED.discard)


# ---------------------------------------------------------------------------------------- damaged submissions
class RestoreCellMetadata(NbGraderPreprocessor):
    """Sanitizing: give back the nbgrader metadata of cells that lost it (an editor stripped it, a copy-paste).

    Cells are matched by their notebook cell id (kept by Jupyter, VS Code and Colab) and type; the metadata comes
    from the released notebook (or the source). The student's answer stays; OverwriteCells then restores locked
    cells as usual.
    """

    def preprocess(self, nb, resources):
        import nbformat
        from nbgrader.coursedir import CourseDirectory

        info = resources["nbgrader"]
        coursedir = CourseDirectory(config=self.config)
        reference = None
        for folder in (coursedir.release_directory, coursedir.source_directory):
            path = os.path.join(coursedir.format_path(folder, ".", info["assignment"]), info["notebook"] + ".ipynb")
            if os.path.isfile(path):
                reference = nbformat.read(path, as_version=4)
                break
        if reference is None:
            return nb, resources
        known = {c.get("id"): c for c in reference.cells if "nbgrader" in c.metadata and c.get("id")}
        present = {c.metadata["nbgrader"].get("grade_id") for c in nb.cells if "nbgrader" in c.metadata}
        for cell in nb.cells:
            original = known.get(cell.get("id"))
            if "nbgrader" in cell.metadata or original is None or original.cell_type != cell.cell_type:
                continue
            if original.metadata["nbgrader"].get("grade_id") in present:
                continue
            cell.metadata["nbgrader"] = dict(original.metadata["nbgrader"])
            self.log.warning("Restored the nbgrader metadata of cell %s (%s)", cell.get("id"),
                             cell.metadata["nbgrader"].get("grade_id"))
        return nb, resources


class SafeOverwriteCells(OverwriteCells):
    """``OverwriteCells`` that still re-inserts missing test cells when their neighbour is missing too.

    nbgrader 0.9.6 raises ``KeyError`` (and fails the whole notebook) when a deleted grade cell's preceding
    solution cell is also gone; here the missing test cells are then appended at the end instead.
    """

    def add_missing_grade_cells(self, nb, resources):
        import copy

        backup = copy.deepcopy(nb.cells)
        try:
            return super().add_missing_grade_cells(nb, resources)
        except (KeyError, ValueError):
            nb.cells = backup
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        solution_ids = {c.name for c in source_nb.solution_cells}
        present = {c.metadata["nbgrader"].get("grade_id") for c in nb.cells if "nbgrader" in c.metadata}
        for grade_cell in source_nb.grade_cells:
            if grade_cell.name not in present:
                self.log.warning("Missing grade cell %s: added at the end of the notebook", grade_cell.name)
                source_cell = next(c for c in source_nb.source_cells if c.name == grade_cell.name)
                nb.cells.append(self.missing_cell_transform(source_cell, grade_cell.max_score,
                                                            is_solution=grade_cell.name in solution_ids))
        return nb, resources


# ------------------------------------------------------------------------------------------------ course config
def configure_nbgrader(c, *, notebook_timeout: int = 900, cell_timeout: int = 120, iopub_timeout: int = 10,
                       baseline: bool | None = None) -> bool:
    """Configure an nbgrader course for safe autograding. Returns True when students' code runs jailed.

    * the sandbox (:mod:`gptedu.grading.sandbox`), failing closed: the jailed kernel ``gptedu-sandbox`` and jailed
      verification. When the sandbox cannot run here, ``nbgrader autograde`` stops at once with the reason and the
      fix (any other way of grading fails each notebook with it). ``GPTEDU_UNSANDBOXED=1`` is the one switch that
      grades without it (the normal kernel AND unjailed verification), with a warning on every command;
    * ``SandboxExecute`` instead of ``Execute``; the scores: ``VerifyAnswers`` decides every test cell from the
      trusted out-of-process comparison and ``SaveTrustedGrades`` (instead of ``SaveAutoGrades``) writes them, never
      reading a cell's outputs; test cells whose metadata was stripped are re-inserted (``add_missing_cells``);
    * hidden cases from the course secret (``<course>/.gptedu/secret``): ``nbgrader autograde`` without it stops
      at once with the command that creates it (``python -m gptedu.grading.secret init``);
    * feedback without hidden tests: hidden test code is stripped, and each test cell shows only the verdict;
    * speed: the verification of a notebook starts in the background while its kernel runs (``StartVerification``),
      each verification job gets a jailed Python started in advance (torch imported), the next notebook's kernel
      starts while the current one runs, and a finished kernel gets 1 s (not 5) to shut down. ``baseline`` (or
      ``$GPTEDU_GRADING_BASELINE=1``) switches all four off: the slower original way, same grades, for
      benchmarks (``benchmarks/bench_autograde.py --baseline``).
    """
    from gptedu.grading import sandbox

    guard = []
    if sandbox.unsandboxed():
        print(f"gptedu: WARNING: {sandbox.UNSANDBOXED_ENV}=1: students' code runs WITHOUT the sandbox (kernel and "
              "verification), with your privileges, network and files. See autograder/README.md, 'Sandbox'.",
              file=sys.stderr)
    else:
        found = sandbox.problems() or sandbox.kernelspec_problems()
        if found:
            message = ("gptedu: refusing to autograde: the grading sandbox cannot run here: " + "; ".join(found)
                       + f". Details: `{sys.executable} -m gptedu.grading.sandbox check`. To grade without it "
                       f"(students' code then runs with your privileges): {sandbox.UNSANDBOXED_ENV}=1.")
            if sys.argv[1:2] == ["autograde"]:
                print(message, file=sys.stderr)
                raise SystemExit(2)
            c.SandboxUnavailable.message = message
            guard = [SandboxUnavailable]
        # on SandboxExecute itself too: the most specific section wins, so no setting on a parent class (a course's
        # c.Execute.kernel_name, a command line's --Execute.kernel_name) can swap the jailed kernel out
        c.Execute.kernel_name = c.ExecutePreprocessor.kernel_name = sandbox.KERNEL_NAME
        c.SandboxExecute.kernel_name = sandbox.KERNEL_NAME
        c.SandboxExecute.kernel_manager_class = SandboxKernelManager

    from gptedu.grading.verify import SaveTrustedGrades, StartVerification, VerifyAnswers

    _refuse_autograde_without_secret(c)

    if baseline is None:
        baseline = os.environ.get("GPTEDU_GRADING_BASELINE", "") not in ("", "0")

    c.Execute.timeout = cell_timeout
    c.SandboxExecute.timeout = cell_timeout
    c.SandboxExecute.notebook_timeout = notebook_timeout
    c.Execute.iopub_timeout = iopub_timeout
    c.SandboxExecute.iopub_timeout = iopub_timeout
    c.Execute.startup_timeout = 120
    c.SandboxExecute.startup_timeout = 120
    # the outputs are in once the last cell ran: give the kernel 1 s to shut down (then SIGTERM, which the jail's
    # launcher turns into the end of the jail and a clean exit; then SIGKILL) instead of up to 5 s; nothing the
    # kernel could still do counts
    if not baseline:
        c.KernelManager.shutdown_wait_time = 1.0
    c.SandboxExecute.prestart_kernel = not baseline
    c.Autograde.autograde_preprocessors = [
        *guard,
        *([] if baseline else [StartVerification]),
        SandboxExecute,
        VerifyAnswers,
        IgnorePattern,
        ClearMetadataPreprocessor,
        LimitOutput,
        SaveTrustedGrades,
        AssignLatePenalties,
        CheckCellMetadata,
    ]
    c.Autograde.sanitize_preprocessors = [
        ClearOutput,
        DeduplicateIds,
        OverwriteKernelspec,
        RestoreCellMetadata,
        SafeOverwriteCells,
        CheckCellMetadata,
    ]
    c.OverwriteCells.add_missing_cells = True
    c.LimitOutput.max_lines = 200
    c.LimitOutput.max_traceback = 40
    # feedback: hidden tests out of the source (a test cell's outputs are already the trusted verdict alone)
    c.GenerateFeedback.preprocessors = [
        "nbgrader.preprocessors.GetGrades",
        "nbgrader.preprocessors.ClearHiddenTests",
        "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    ]
    c.ClearHiddenTests.enforce_metadata = False
    return not sandbox.unsandboxed()


def _refuse_autograde_without_secret(c) -> None:
    """``nbgrader autograde`` on a course without a secret stops here, naming the command that creates one (the
    hidden cases derive from it). Other commands (generate_assignment, feedback, export) do not need it; graded
    any other way (formgrader), each notebook fails with the same message instead."""
    if sys.argv[1:2] != ["autograde"]:
        return
    from gptedu.grading import secret

    root = c.CourseDirectory.root if "root" in c.CourseDirectory else os.getcwd()
    try:
        secret.load(root)
    except secret.MissingSecret as exc:
        print(f"gptedu: refusing to autograde: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
