"""Intake: every file a student hands in is checked before nbgrader touches it, and nbgrader grades a clean copy.

nbgrader copies a submission with ``shutil`` as the grader's user and follows links: a link beside the notebook
exposes the gradebook or another student's work, a link to ``/dev/zero`` is copied forever, and a notebook that is
itself a link earns someone else's points. Intake looks at each file with ``lstat`` and never follows a link:

* only regular files with one link (no symbolic links, hard links, devices, FIFOs or sockets) are read, opened with
  ``O_NOFOLLOW | O_NONBLOCK`` and checked again on the open file, at most ``Limits.notebook_bytes`` of them;
* a notebook must be UTF-8 JSON within limits that Python's ``json`` does not enforce (nesting depth, digits in a
  number: ``json`` raises ``RecursionError`` or ``ValueError`` there) and a valid nbformat 4 notebook;
* the staging copy (``<course>/intake/<run>/...``) holds only the notebooks that passed, a valid ``timestamp.txt``
  and the exchange's ``submission_secret.txt``; nbgrader grades that copy
  (``--CourseDirectory.submitted_directory``), never ``submitted/`` itself, which stays as handed in.

A notebook that fails gets a reason written for the student (``could not grade: ...``, with what to resubmit);
the caller gives it a defined 0. Nothing else of the student, and no other student, is affected.
:func:`configure_intake` is nbgrader's side of it (autograde, collect, release_feedback, zip_collect).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

STAGING = "intake"  # <course>/intake/: nbgrader reads its submissions from here (relative, regex-safe names)
ENV = "GPTEDU_INTAKE_DIR"  # set by autograde_class: the staging folder (relative to the course) nbgrader reads
MARKER = ".gptedu-intake"  # written into every staging folder intake made
KEPT_FILES = ("timestamp.txt", "submission_secret.txt")  # nbgrader's own bookkeeping, checked and kept
PRIVATE = (".gptedu",)  # course folders that no copy may contain (the course secret)


@dataclass(frozen=True)
class Limits:
    """What a submitted notebook may be. A Jupyter notebook of this course is well under 1 MB without outputs."""

    notebook_bytes: int = 32 * 2**20
    json_depth: int = 64  # a notebook's JSON is ~6 levels deep; rich outputs add a few
    number_digits: int = 100  # json parses a 4301-digit integer with a ValueError, a 1e6-digit one for minutes
    other_file_bytes: int = 64 * 2**20  # per file, when the exchange inbound is collected
    submission_bytes: int = 256 * 2**20  # per submission folder, when collected
    submission_files: int = 500


DEFAULT_LIMITS = Limits()


class Rejected(Exception):
    """A file that will not be read; ``str(exc)`` says why and what to hand in instead."""


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of ``path`` if it is a regular file with one link and at most ``max_bytes``; never follows a
    link, never blocks on a FIFO, and checks the file it opened (not only the name it looked at)."""
    before = os.lstat(path)
    if not stat.S_ISREG(before.st_mode):
        raise Rejected(f"{path.name} is {_kind(before.st_mode)}, not a file")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Rejected(f"{path.name} is a symbolic link, not a file") from None
        raise Rejected(f"{path.name} could not be opened ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as file:  # closes fd
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino):
            raise Rejected(f"{path.name} changed while it was checked")
        if st.st_nlink != 1:
            raise Rejected(f"{path.name} is a hard link to another file ({st.st_nlink} names for one file), "
                           "not a file of its own")
        if st.st_size > max_bytes:
            raise Rejected(f"{path.name} is {_mb(st.st_size)}, over the {_mb(max_bytes)} limit")
        data = file.read(max_bytes + 1)  # the file may grow after fstat
    if len(data) > max_bytes:
        raise Rejected(f"{path.name} is over the {_mb(max_bytes)} limit")
    return data


_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def json_problem(data: bytes, limits: Limits = DEFAULT_LIMITS) -> str:
    """Why these bytes are not JSON that Python's ``json`` can parse safely ('' when they are): nesting depth and
    number length are measured on the text, before ``json`` sees it."""
    skeleton = _STRING.sub(b'""', data)  # strings cannot hide brackets or digits from the scan below
    long_number = re.search(rb"\d{%d,}" % (limits.number_digits + 1), skeleton)
    if long_number:
        return (f"it contains a number with more than {limits.number_digits} digits (a Jupyter notebook never "
                "does; was it edited by hand?)")
    depth = deepest = 0
    for match in _BRACKET.finditer(skeleton):
        depth += 1 if match.group() in (b"[", b"{") else -1
        if depth > deepest:
            deepest = depth
            if deepest > limits.json_depth:
                return (f"its JSON is nested more than {limits.json_depth} levels deep (a Jupyter notebook never "
                        "is; was it edited by hand?)")
    return ""


def notebook_problem(data: bytes, limits: Limits = DEFAULT_LIMITS) -> str:
    """Why ``data`` is not a notebook nbgrader can grade ('' when it is)."""
    import nbformat

    again = ("Open it in Jupyter, check that your answers are there, save it (File > Save) and hand in the saved "
             ".ipynb file")
    if len(data) > limits.notebook_bytes:
        return (f"the notebook is {_mb(len(data))}, over the {_mb(limits.notebook_bytes)} limit. Clear the "
                "outputs (Edit > Clear Outputs of All Cells), save and hand it in again")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return ("the file is not UTF-8 text, so it is not a notebook (was another file renamed to .ipynb?). "
                + again)
    problem = json_problem(data, limits)
    if problem:
        return f"the notebook cannot be read safely: {problem}. {again}"
    try:
        content = json.loads(text)
    except json.JSONDecodeError as exc:
        return (f"the notebook is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); it was "
                f"probably damaged while saving or edited by hand. {again}")
    except (ValueError, RecursionError) as exc:  # checked above; kept as a last line of defence
        return f"the notebook cannot be read safely ({type(exc).__name__}). {again}"
    if not isinstance(content, dict) or content.get("nbformat") != 4:
        return f"the file is JSON but not a Jupyter notebook of format 4. {again}"
    try:
        nbformat.validate(nbformat.from_dict(content))
    except Exception as exc:  # noqa: BLE001 - any validation error is the student's to fix
        return f"the file is JSON but not a valid notebook ({str(exc).splitlines()[0][:200]}). {again}"
    return ""


def _timestamp_problem(data: bytes) -> str:
    from nbgrader.utils import parse_utc

    try:
        text = data.decode("ascii").strip()
        if not text:
            return "timestamp.txt is empty"
        parse_utc(text)
    except (UnicodeDecodeError, ValueError, OverflowError, TypeError) as exc:
        return f"timestamp.txt is not a time ({type(exc).__name__})"
    return ""


@dataclass
class Submission:
    """What intake found in ``submitted/<student>/<assignment>/``: the notebooks staged, those rejected (with the
    message for the student), and notes for the instructor (files not graded, links not followed)."""

    student: str
    staged: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timestamp: str = ""


def check_submission(folder: Path, notebooks: list[str], dest: Path | None,
                     limits: Limits = DEFAULT_LIMITS) -> Submission:
    """Check ``folder`` (one student's submission) and, when ``dest`` is given, copy what passed into ``dest``.

    ``notebooks`` are the assignment's notebook names (without ``.ipynb``). Only the folder's top level is read:
    nbgrader grades nothing else, so nothing else is copied (and nothing is followed)."""
    sub = Submission(student=folder.parent.name)
    try:
        st = os.lstat(folder)
        if not stat.S_ISDIR(st.st_mode):
            raise Rejected(f"the submission folder is {_kind(st.st_mode)}")
        st = os.lstat(folder.parent)
        if not stat.S_ISDIR(st.st_mode):
            raise Rejected(f"the student's folder is {_kind(st.st_mode)}")
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except (Rejected, OSError) as exc:
        reason = str(exc) if isinstance(exc, Rejected) else f"the submission folder cannot be read ({exc})"
        for name in notebooks:
            sub.rejected[name] = f"could not grade: {reason}. Hand in the notebook files themselves"
        return sub
    if dest is not None:
        dest.mkdir(parents=True, mode=0o700)
    skipped, links = [], []
    for entry in entries:
        path = Path(entry.path)
        mode = entry.stat(follow_symlinks=False).st_mode
        name = entry.name
        if name.endswith(".ipynb") and name[:-6] in notebooks:
            nb = name[:-6]
            try:
                data = read_regular_file(path, limits.notebook_bytes)
            except Rejected as exc:
                sub.rejected[nb] = (f"could not grade: {exc}. Hand in the notebook file itself (the .ipynb saved "
                                    "by Jupyter), not a link or a special file")
                continue
            problem = notebook_problem(data, limits)
            if problem:
                sub.rejected[nb] = f"could not grade: {problem}"
                continue
            if dest is not None:
                _write_private(dest / name, data)
            sub.staged.append(nb)
        elif name in KEPT_FILES:
            try:
                data = read_regular_file(path, 4096)
                problem = _timestamp_problem(data) if name == "timestamp.txt" else (
                    "" if re.fullmatch(rb"[0-9a-fA-F]{1,128}\s*", data) else "submission_secret.txt is not hex")
            except Rejected as exc:
                problem = str(exc)
            if problem:
                sub.notes.append(f"{name} ignored: {problem}")
                continue
            if name == "timestamp.txt":
                sub.timestamp = data.decode("ascii").strip()
            if dest is not None:
                _write_private(dest / name, data)
        elif stat.S_ISLNK(mode) or not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            links.append(f"{name} ({_kind(mode)})")
        elif name.endswith(".ipynb"):
            sub.notes.append(f"{name} is not a notebook of this assignment (renamed? expected: "
                             f"{', '.join(n + '.ipynb' for n in notebooks)}): not graded")
        else:
            skipped.append(name + ("/" if stat.S_ISDIR(mode) else ""))
    for what, names in (("not read, not followed", links), ("not graded (only the notebooks are)", skipped)):
        if names:
            sub.notes.append(f"{what}: " + ", ".join(names[:10]) + (" ..." if len(names) > 10 else ""))
    return sub


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


@dataclass
class Staging:
    """One intake run: ``folders`` (relative to the course, one per worker) hold the checked copies."""

    run: Path
    folders: list[str]
    submissions: dict[str, Submission]
    worker_of: dict[str, int]

    def remove(self) -> None:
        shutil.rmtree(self.run, ignore_errors=True)
        parent = self.run.parent
        if parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()


_DB_URLS: dict[Path, str] = {}


def db_url(course: Path) -> str:
    """The gradebook URL from the course's ``nbgrader_config.py`` (default: ``gradebook.db`` in the course)."""
    from traitlets.config.loader import PyFileConfigLoader

    course = course.resolve()
    if course not in _DB_URLS:
        url = f"sqlite:///{course / 'gradebook.db'}"
        with contextlib.suppress(BaseException):  # no configuration, or one that fails: the default location
            cfg = PyFileConfigLoader(str(course / "nbgrader_config.py")).load_config()
            url = str(cfg.get("CourseDirectory", {}).get("db_url") or url)
        _DB_URLS[course] = url
    return _DB_URLS[course]


def assignment_notebooks(course: Path, assignment: str) -> list[str]:
    """The assignment's notebook names, from the gradebook (what nbgrader grades), else from ``source/``."""
    try:
        from nbgrader.api import Gradebook

        with Gradebook(db_url(course)) as gb:
            names = sorted(nb.name for nb in gb.find_assignment(assignment).notebooks)
        if names:
            return names
    except Exception:  # noqa: BLE001 - no gradebook yet: fall back to the source folder
        pass
    return sorted(p.stem for p in (course / "source" / assignment).glob("*.ipynb"))


def stage(course: Path, assignment: str, students: list[str], *, workers: int = 1,
          sources: dict[str, Path] | None = None, limits: Limits = DEFAULT_LIMITS) -> Staging:
    """Check the submissions of ``students`` and copy what passed into ``<course>/intake/<run>/w<k>/``.

    Students are dealt round-robin to ``workers`` folders (one per nbgrader process). ``sources`` maps a student
    to another folder to read instead of ``submitted/<student>/<assignment>`` (the self-check's solutions)."""
    notebooks = assignment_notebooks(course, assignment)
    root = course / STAGING
    root.mkdir(mode=0o700, exist_ok=True)
    run = root / f"run{os.getpid()}"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(mode=0o700)
    folders = [f"{STAGING}/{run.name}/w{k}" for k in range(workers)]
    for folder in folders:
        (course / folder).mkdir(mode=0o700)
        (course / folder / MARKER).write_text("checked copies made by gptedu.grading.intake\n")
    submissions, worker_of = {}, {}
    for k, student in enumerate(students):
        worker_of[student] = k % workers
        src = (sources or {}).get(student) or course / "submitted" / student / assignment
        dest = course / folders[k % workers] / student / assignment
        submissions[student] = check_submission(src, notebooks, dest, limits)
        submissions[student].student = student
    return Staging(run, folders, submissions, worker_of)


# ------------------------------------------------------------------------------------------ nbgrader's side
def _nbgrader_command() -> str:
    """The nbgrader subcommand this process runs ('' when it is not the nbgrader CLI, e.g. a Jupyter server)."""
    argv = sys.argv
    if not argv or "nbgrader" not in os.path.basename(argv[0]) and not argv[0].endswith(
            os.path.join("nbgrader", "__main__.py")):
        return ""
    return next((a for a in argv[1:] if not a.startswith("-")), "")


REFUSAL = (
    "gptedu: plain `nbgrader autograde` is switched off in this course: it would copy and grade the raw "
    "submitted/ folders, following any link a student put there. Run\n"
    "    python -m gptedu.grading.autograde_class ASSIGNMENT [--student GLOB] [--force] [-- nbgrader flags]\n"
    "from the course folder instead: it checks every file first, then runs nbgrader autograde on a clean copy "
    "(autograder/README.md, 'Autograde').")


def _refuse_formgrader_autograde() -> None:
    """formgrader's Autograde button runs nbgrader's converter inside the Jupyter server, past the command line:
    it answers with the refusal instead."""
    try:
        from nbgrader.apps.api import NbGraderAPI
    except ImportError:
        return

    def autograde(self, assignment_id, student_id, force=True, create=True):
        return {"success": False, "error": REFUSAL, "log": REFUSAL}

    NbGraderAPI.autograde = autograde


def configure_intake(c) -> None:
    """Course configuration: nbgrader autogrades only checked copies; collect and release_feedback are checked.

    * under ``autograde_class`` (``$GPTEDU_INTAKE_DIR`` names a staging folder intake made): nbgrader reads its
      submissions from there;
    * ``nbgrader autograde`` run by hand, or formgrader's Autograde button: refused with a message naming the
      command to run instead (they would copy and grade the raw ``submitted/`` folders);
    * ``nbgrader collect``: ``CheckedCollect`` copies only regular files from the exchange inbound;
    * ``nbgrader release_feedback``: ``CheckedReleaseFeedback`` releases what it can and names the students it
      cannot reach (no ``timestamp.txt`` / ``submission_secret.txt``: they came by ``zip_collect`` or by hand).
    """
    command = _nbgrader_command()
    staged = os.environ.get(ENV, "")
    if staged:  # autograde_class's nbgrader, however it was started: it reads the checked copy, nothing else
        if (os.path.isabs(staged) or ".." in Path(staged).parts or not staged.startswith(STAGING + "/")
                or not os.path.isfile(os.path.join(staged, MARKER))):
            raise SystemExit(f"gptedu: {ENV}={staged!r} is not a folder made by gptedu.grading.intake here")
        c.CourseDirectory.submitted_directory = staged
    elif command == "autograde":
        raise SystemExit(REFUSAL)
    elif not command:
        _refuse_formgrader_autograde()
    _quiet_known_warnings()
    c.ExchangeFactory.collect = "gptedu.grading.intake.CheckedCollect"
    c.ExchangeFactory.release_feedback = "gptedu.grading.intake.CheckedReleaseFeedback"
    c.ZipCollectApp.collector_plugin = "gptedu.grading.intake.FileTimeCollectorPlugin"
    c.ExtractorPlugin.zip_ext = [".zip"]  # zipfile writes regular files only; tar archives can carry links


class _ReleasedChecksums:
    """Logging filter for nbgrader's "Attribute 'checksum' for cell X has changed!" when nothing was changed.

    The gradebook holds the checksum of a test cell *with* its hidden tests; the released cell has them removed,
    so every untouched submission logs that warning (upstream issue #1961). The warning is dropped only when the
    submitted cell's checksum is the released cell's, i.e. the student did not touch it; real edits still warn."""

    def __init__(self):
        self._released: set[str] | None = None

    def released(self) -> set[str]:
        if self._released is None:
            import nbformat
            from nbgrader.utils import compute_checksum, is_locked

            self._released = set()
            for path in Path("release").glob("*/*.ipynb"):  # nbgrader runs in the course folder
                try:
                    nb = nbformat.read(path, as_version=4)
                except Exception:  # noqa: BLE001 - only decides whether a warning is shown
                    continue
                self._released.update(compute_checksum(cell) for cell in nb.cells
                                      if "nbgrader" in cell.metadata and is_locked(cell))
        return self._released

    def filter(self, record) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        spurious = (str(record.msg).startswith("Attribute '%s' for cell %s has changed!") and len(args) == 4
                    and args[0] == "checksum" and args[3] in self.released())
        return not spurious


def _quiet_known_warnings() -> None:
    """No warning on a normal run: nbgrader 0.9.6's spurious checksum warning (#1961) and SQLAlchemy 2's
    "not in session" warnings from nbgrader's gradebook code."""
    import logging
    import warnings

    for name in ("AutogradeApp", "NbGraderAPI", "FormgradeExtension"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _ReleasedChecksums) for f in logger.filters):
            logger.addFilter(_ReleasedChecksums())
    warnings.filterwarnings("ignore", message=r"Object of type <\w+> not in session")


def checked_copytree(src: Path, dest: Path, limits: Limits = DEFAULT_LIMITS, log=None,
                     ignore=None) -> list[str]:
    """Copy the regular files and folders under ``src`` to ``dest``; links, devices, FIFOs, sockets, hard links
    and files over the limits are left out (and returned, with the reason). Never follows a link."""
    left_out: list[str] = []
    total = count = 0
    st = os.lstat(src)
    if not stat.S_ISDIR(st.st_mode):
        raise Rejected(f"{src} is {_kind(st.st_mode)}, not a submission folder")
    dest.mkdir(parents=True, mode=0o700)
    stack = [(src, dest)]
    while stack:
        here, there = stack.pop()
        for entry in sorted(os.scandir(here), key=lambda e: e.name):
            path, rel = Path(entry.path), os.path.relpath(entry.path, src)
            if ignore and any(Path(rel).match(p) for p in ignore):
                continue
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                (there / entry.name).mkdir(mode=0o700)
                stack.append((path, there / entry.name))
                continue
            count += 1
            try:
                if count > limits.submission_files:
                    raise Rejected(f"more than {limits.submission_files} files")
                data = read_regular_file(path, limits.other_file_bytes)
                if total + len(data) > limits.submission_bytes:
                    raise Rejected(f"the folder is over {_mb(limits.submission_bytes)}")
            except (Rejected, OSError) as exc:
                left_out.append(f"{rel}: {exc}")
                continue
            total += len(data)
            _write_private(there / entry.name, data)
    if log is not None:
        for item in left_out:
            log.warning("gptedu intake: not collected: %s", item)
    return left_out


def _nbgrader_classes() -> dict[str, type]:
    """The classes the course configuration names (``CheckedCollect``, ``CheckedReleaseFeedback``,
    ``FileTimeCollectorPlugin``), made on first use: importing nbgrader's exchange costs every other command."""
    from nbgrader.exchange.default.collect import ExchangeCollect
    from nbgrader.exchange.default.release_feedback import ExchangeReleaseFeedback
    from nbgrader.plugins.zipcollect import FileNameCollectorPlugin
    from traitlets import Unicode

    class _CheckedCollect(ExchangeCollect):
        """nbgrader's collect, copying only regular files (``checked_copytree``) out of the exchange inbound."""

        def do_copy(self, src, dest, log=None):
            checked_copytree(Path(src), Path(dest), log=self.log, ignore=list(self.coursedir.ignore))

    class _CheckedReleaseFeedback(ExchangeReleaseFeedback):
        """nbgrader's release_feedback, which skips (and names) the students it cannot release to instead of
        stopping for the whole class with ``FileNotFoundError``."""

        def copy_files(self):
            import glob

            excluded = [s for s in self.coursedir.student_id_exclude.split(",") if s]
            pattern = self.coursedir.format_path(self.coursedir.feedback_directory, "*",
                                                 self.coursedir.assignment_id)
            for folder in sorted(glob.glob(pattern)):
                student = Path(folder).parent.name
                missing = [n for n in KEPT_FILES if not os.path.isfile(os.path.join(folder, n))]
                if missing and student not in excluded:
                    self.log.warning(
                        "gptedu: no feedback released to '%s': %s missing (the submission did not come through "
                        "the exchange, e.g. zip_collect). Send them %s/*.html another way.", student,
                        " and ".join(missing), folder)
                    excluded.append(student)
            self.coursedir.student_id_exclude = ",".join(excluded)
            super().copy_files()

    class _FileTimeCollectorPlugin(FileNameCollectorPlugin):
        """nbgrader's file-name collector; when ``named_regexp`` has no ``timestamp`` group (or it matched
        nothing), the submission time is the file's modification time as stored in the archive, read in
        ``zip_timezone`` (zip archives store local times without a zone)."""

        zip_timezone = Unicode("UTC", help="Time zone of the times stored in the archives (e.g. Europe/Paris); "
                                           "'' to use no file time (zip students are then never late).",
                               ).tag(config=True)

        def collect(self, submission_file):
            info = super().collect(submission_file)
            if info is None or info.get("timestamp") or not self.zip_timezone:
                return info
            when = _archive_time(Path(submission_file), self.zip_timezone)
            if when:
                info["timestamp"] = when
            return info

    return {"CheckedCollect": _CheckedCollect, "CheckedReleaseFeedback": _CheckedReleaseFeedback,
            "FileTimeCollectorPlugin": _FileTimeCollectorPlugin}


def _archive_time(extracted: Path, zone: str) -> str:
    """The time stored for ``extracted`` in the archive it came from (``downloaded/<a>/archive/*.zip``), as
    ``YYYY-MM-DD HH:MM:SS <zone>``; '' when it cannot be told (several archives disagree, not a zip)."""
    import zipfile
    from datetime import datetime
    from zoneinfo import ZoneInfo

    parts = extracted.parts
    if "extracted" not in parts:
        return ""
    i = len(parts) - 1 - parts[::-1].index("extracted")
    if len(parts) < i + 3:
        return ""
    # zip_collect extracts archive/<name>.zip into extracted/<name>/ (create_own_folder)
    archive, inner = Path(*parts[:i]) / "archive" / f"{parts[i + 1]}.zip", "/".join(parts[i + 2:])
    times = set()
    try:
        with zipfile.ZipFile(archive) as z:
            times = {info.date_time for info in z.infolist() if info.filename == inner}
    except (zipfile.BadZipFile, OSError):
        return ""
    if len(times) != 1:
        return ""
    local = datetime(*times.pop(), tzinfo=ZoneInfo(zone))
    return local.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def __getattr__(name: str):  # nbgrader imports these by name from the configuration
    if name not in ("CheckedCollect", "CheckedReleaseFeedback", "FileTimeCollectorPlugin"):
        raise AttributeError(name)
    globals().update(_nbgrader_classes())
    return globals()[name]
