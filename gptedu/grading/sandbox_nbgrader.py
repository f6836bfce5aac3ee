"""nbgrader glue for the sandbox: a hardened ``Execute``, the jailed kernel's manager, repairs of damaged
submissions, and ``configure_nbgrader(c)``, which ``autograder/nbgrader_config.py`` calls.

No score is read from what the kernel shows: :mod:`gptedu.grading.verify` sets every test cell's score and output.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import os
import re
import shutil
import sys
import tempfile
from time import monotonic

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbformat.notebooknode import NotebookNode
from nbgrader.coursedir import CourseDirectory
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
from traitlets import Integer, Unicode

RESOURCE_KEY = "gptedu_grading"


def error_output(ename: str, message: str) -> NotebookNode:
    """An ``error`` output, which nbgrader scores 0 and shows in the feedback."""
    lines = [f"\x1b[0;31m{ename}\x1b[0m: {message.splitlines()[0] if message else ''}"]
    lines += message.splitlines()[1:]
    return NotebookNode(output_type="error", ename=ename, evalue=message, traceback=lines)


class _StopNotebook(Exception):
    pass


class SandboxExecute(Execute):
    """nbgrader's ``Execute``, so that every submission ends with a defined grade instead of a crashed notebook.

    * a time limit for the whole notebook on top of the per-cell ``timeout``; then the remaining cells score 0;
    * a kernel that dies (memory or CPU limit, ``os._exit``, a crash) or ignores interrupts costs the cell it ran
      (an error saying what happened) and the cells after it ("not run"), not the notebook;
    * every kind of output a cell sends is counted while it streams in and dropped past ``max_output_bytes``, so a
      cell cannot exhaust nbgrader's memory or write a huge notebook;
    * while a notebook runs, the kernel for the submission's next notebook starts (:class:`_Prestarted`).
    """

    notebook_timeout = Integer(
        900, help="Seconds for the whole notebook; after that the remaining cells are not run (score 0)."
    ).tag(config=True)
    max_output_bytes = Integer(
        500_000, help="Bytes of output kept per cell; the rest is dropped while it streams in."
    ).tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        resources = {} if resources is None else resources
        self._resources = resources
        self._info = {"kernel_seconds": 0.0}
        self._started_at = monotonic()
        prestarted = _PRESTARTED.take(self._kernel_key(nb, resources)) if km is None else None
        try:
            self._run(nb, resources, prestarted or km)
        except Exception:
            if prestarted is None:
                raise
            # a kernel started in advance that fails to connect must not cost the student anything: start afresh
            self.log.warning("gptedu: the kernel started in advance did not answer; starting a new one")
            self._cleanup_prestarted()
            self._run(nb, resources, None)
        finally:
            if prestarted is not None:  # (after a retry, nbclient has already stopped its own kernel)
                self._cleanup_prestarted()
        self._info["seconds"] = monotonic() - self._started_at
        if self._stopped:
            for index, cell in enumerate(nb.cells):
                if index > self._current and cell.cell_type == "code" and cell.source.strip():
                    cell.outputs = [error_output("NotRun", f"This cell was not run: {self._stopped}")]
        resources.setdefault(RESOURCE_KEY, {}).update(self._info)
        return nb, resources

    def _run(self, nb, resources, km) -> None:
        """Run ``nb`` (its cells in place) from a fresh state: no deadline yet, nothing stopped, no output."""
        self._deadline = None
        self._stopped = ""
        self._current = -1
        self._output_bytes: dict[int, int] = {}
        with contextlib.suppress(_StopNotebook):
            super().preprocess(nb, resources, km)

    def _cleanup_prestarted(self) -> None:
        """nbclient leaves a kernel it did not start running: stop it (and its client) like its own."""
        if self.km is not None:
            with contextlib.suppress(Exception):
                self._cleanup_kernel()
        self.km = self.kc = None

    def _kernel_key(self, nb, resources) -> tuple:
        name = self.kernel_name or nb.metadata.get("kernelspec", {}).get("name", "")
        path = (resources.get("metadata") or {}).get("path") or ""
        # the grader's own torch sets TORCHINDUCTOR_CACHE_DIR when it first compares a training loop; the jailed
        # kernel has its own /tmp, so that variable does not change what a kernel does
        env = tuple(sorted((k, v) for k, v in os.environ.items() if not k.startswith("TORCHINDUCTOR_")))
        return name, os.path.abspath(path) if path else "", env

    def _next_notebook(self) -> str | None:
        """The path of this submission's next notebook (nbgrader grades them in sorted order); None if there is
        none or nbgrader did not say which submission this is."""
        info = self._resources.get("nbgrader") or {}
        try:
            coursedir = CourseDirectory(config=self.config)
            folder = coursedir.format_path(coursedir.submitted_directory, info["student"], info["assignment"])
            later = sorted(n for n in os.listdir(folder) if n.endswith(".ipynb") and n[:-6] > info["notebook"])
        except Exception:  # noqa: BLE001 - only decides whether to start a kernel in advance
            return None
        return os.path.join(folder, later[0]) if later else None

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
        if self._deadline is None:  # the first cell: the kernel is up (its start-up has its own timeout)
            self._deadline = monotonic() + self.notebook_timeout
            self._info["kernel_seconds"] = round(monotonic() - self._started_at, 2)
            following = self._next_notebook()
            if following is not None:  # the next notebook's kernel boots while this one runs
                _PRESTARTED.start(self._kernel_key(self.nb, self._resources), self, self.log,
                                  _Prestarted.warm_code_for(following))
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


# every message that becomes output: stream text, mime data and metadata, display updates, errors, widgets
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
    """The jailed kernel's manager: ipc transport, the links to its sockets (which live inside its jail) in a fresh
    private folder per kernel, removed with the kernel."""

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
    environment) it was started for: handed once, and only to a notebook with the same key; otherwise shut down.
    The only code it has run is ``warm_code_for``, which imports modules and binds no name in the user's namespace
    (the next notebook finds them in ``sys.modules``, as after its own imports)."""

    # torch always; matplotlib.pyplot (0.6 s) where the notebook mentions matplotlib; torch._dynamo (~1.5 s, loaded
    # by building any torch optimizer) only where it mentions one: warmed everywhere, it competed with the notebooks'
    # own cells for the two cores and made the series slower (benchmarks/README.md)
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
        self.key = self.km = self.kc = None

    def start(self, key: tuple, client, log, warm_code: str) -> None:
        """Start a kernel as nbclient's ``client`` would for ``key``, then send it ``warm_code`` (silent: no output,
        history or execution count) without waiting for it."""
        self.discard()
        try:
            self.key, self.km = key, client.kernel_manager_class(kernel_name=key[0], config=client.config)
            extra = list(client.extra_arguments)
            if getattr(self.km, "ipykernel", False) and client.ipython_hist_file and not any(
                    a.startswith("--HistoryManager.hist_file") for a in extra):
                extra.append(f"--HistoryManager.hist_file={client.ipython_hist_file}")
            run_sync(self.km.start_kernel)(extra_arguments=extra, cwd=key[1] or None)
            self.kc = self.km.client()
            self.kc.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
            self.kc.execute(warm_code, silent=True, store_history=False, allow_stdin=False)
        except Exception as exc:  # noqa: BLE001 - only an optimisation: the next notebook starts its own kernel
            log.warning("gptedu: could not start the next kernel in advance: %s", exc)
            self.discard()

    def take(self, key: tuple):
        """The kernel started for ``key``, alive, now the caller's; else None (and any other kernel is shut down)."""
        km = self.km if self.km is not None and self.key == key and run_sync(self.km.is_alive)() else None
        if km is not None:
            self.km = None  # handed over: discard() only closes the warm-up's client
        self.discard()
        return km

    def discard(self) -> None:
        kc, km, self.kc, self.km = self.kc, self.km, None, None
        if kc is not None:
            with contextlib.suppress(Exception):
                kc.stop_channels()
        if km is None:
            return
        try:  # not now=True: a SIGKILLed launcher cannot remove its jail's (empty) mount point in /tmp
            run_sync(km.shutdown_kernel)(now=False)
        except Exception:  # noqa: BLE001 - at exit the event loop may be gone: kill the launcher directly
            with contextlib.suppress(Exception):
                km.provisioner.process.kill()


_PRESTARTED = _Prestarted()
atexit.register(_PRESTARTED.discard)


# ---------------------------------------------------------------------------------------- damaged submissions
SAFE_MIME = ("text/plain", "image/png", "image/jpeg", "image/gif")
_TAG = re.compile(r"<(?=[A-Za-z!/?])")


class InertOutputs(NbGraderPreprocessor):
    """Nothing a submission wrote runs in a reader's browser: formgrader shows the autograded notebook to the
    instructor on the Jupyter server's own origin, HTML included (a student's script there could rewrite the course).
    Outputs keep only plain text and bitmap images; tags in markdown and raw cells show as text. (The course's own
    markdown has no HTML.)"""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type in ("markdown", "raw"):
            cell.source = _TAG.sub("&lt;", cell.source)
        for output in cell.get("outputs", []):
            if "data" in output:
                dropped = sorted(set(output.data) - set(SAFE_MIME))
                output.data = {k: v for k, v in output.data.items() if k in SAFE_MIME}
                if dropped and "text/plain" not in output.data:
                    output.data["text/plain"] = f"[{', '.join(dropped)} output not shown by the grader]"
                output.metadata = {}
        return cell, resources


class SafeOverwriteCells(OverwriteCells):
    """``OverwriteCells`` whose missing test cells go at the end when their preceding cell is missing too (nbgrader
    0.9.6 then raises ``KeyError`` and fails the whole notebook). Test cells whose metadata an editor stripped come
    back this way; their stripped copies run as plain code, whose outputs score nothing."""

    def add_missing_grade_cells(self, nb, resources):
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
def configure_nbgrader(c, *, notebook_timeout: int = 900, cell_timeout: int = 120, iopub_timeout: int = 10) -> bool:
    """Configure an nbgrader course for safe autograding. Returns True when students' code runs jailed.

    The sandbox fails closed: where it cannot run, ``nbgrader autograde`` stops at once with the reason and the fix
    (other ways of grading fail each notebook with it); ``GPTEDU_UNSANDBOXED=1`` grades without it (the normal
    kernel AND unjailed verification), with a warning. ``autograde`` without the course secret stops too. Scores:
    ``StartVerification`` starts the trusted out-of-process comparison while the kernel runs, ``VerifyAnswers``
    decides every test cell from it, ``SaveTrustedGrades`` writes them; no cell's output is read. The feedback
    shows no hidden test code, and each test cell only its verdict.
    """
    from gptedu.grading import sandbox
    from gptedu.grading.verify import SaveTrustedGrades, StartVerification, VerifyAnswers

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
            _refuse_autograde(message)
            c.SandboxUnavailable.message = message
            guard = [SandboxUnavailable]
        # on SandboxExecute itself too: the most specific section wins, so no setting on a parent class (a course's
        # c.Execute.kernel_name, a command line's --Execute.kernel_name) can swap the jailed kernel out
        c.Execute.kernel_name = c.ExecutePreprocessor.kernel_name = sandbox.KERNEL_NAME
        c.SandboxExecute.kernel_name = sandbox.KERNEL_NAME
        c.SandboxExecute.kernel_manager_class = SandboxKernelManager
    if sys.argv[1:2] == ["autograde"]:
        from gptedu.grading import secret

        try:
            secret.load(c.CourseDirectory.root if "root" in c.CourseDirectory else os.getcwd())
        except secret.MissingSecret as exc:
            _refuse_autograde(f"gptedu: refusing to autograde: {exc}")

    c.SandboxExecute.timeout = cell_timeout
    c.SandboxExecute.notebook_timeout = notebook_timeout
    c.SandboxExecute.iopub_timeout = iopub_timeout
    c.SandboxExecute.startup_timeout = 120
    # the outputs are in once the last cell ran: 1 s (not 5) to shut down, then SIGTERM (which the jail's launcher
    # turns into the end of the jail), then SIGKILL; nothing the kernel could still do counts
    c.KernelManager.shutdown_wait_time = 1.0
    c.Autograde.autograde_preprocessors = [
        *guard,
        StartVerification,
        SandboxExecute,
        VerifyAnswers,
        InertOutputs,
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


def _refuse_autograde(message: str) -> None:
    """``nbgrader autograde`` stops here (exit code 2) with ``message``; other commands (generate_assignment,
    feedback, export) go on, and grading any other way (formgrader) fails each notebook with the same reason."""
    if sys.argv[1:2] == ["autograde"]:
        print(message, file=sys.stderr)
        raise SystemExit(2)
