"""Intake: every file a student hands in is checked before nbgrader touches it, and nbgrader grades a clean copy.

nbgrader copies submissions with ``shutil`` and follows links (a link to the gradebook, to another student's
notebook, to ``/dev/zero``). Intake reads each file with ``lstat`` and ``O_NOFOLLOW``: only regular files with one
link, within ``Limits``; a notebook must be UTF-8 JSON within limits that Python's ``json`` does not enforce, and
valid nbformat 4. The staging copy (``<course>/intake/<run>/...``) holds only what passed, and nbgrader grades it
(``--CourseDirectory.submitted_directory``); ``submitted/`` stays as handed in. A notebook that fails gets a reason
written for the student (``could not grade: ...``) and a defined 0. :func:`configure_intake` is nbgrader's side.
"""

from __future__ import annotations

import contextlib
import functools
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


@dataclass(frozen=True)
class Limits:
    """What a submitted notebook may be. A Jupyter notebook of this course is well under 1 MB without outputs."""

    notebook_bytes: int = 32 * 2**20
    json_depth: int = 64  # a notebook's JSON is ~6 levels deep; rich outputs add a few
    number_digits: int = 100  # json parses a 4301-digit integer with a ValueError, a 1e6-digit one for minutes
    other_file_bytes: int = 64 * 2**20  # per file, when the exchange inbound is collected
    submission_bytes: int = 256 * 2**20  # per submission folder, when collected
    submission_files: int = 500


class Rejected(Exception):
    """A file that will not be read; ``str(exc)`` says why and what to hand in instead."""


class TooLarge(Rejected):
    """A regular file over its size limit."""


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


_KINDS = {stat.S_IFLNK: "a symbolic link", stat.S_IFDIR: "a folder", stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket",
          stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device"}


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of ``path`` if it is a regular file with one link and at most ``max_bytes``; never follows a
    link, never blocks on a FIFO, and checks the file it opened (not only the name it looked at)."""
    before = os.lstat(path)
    if not stat.S_ISREG(before.st_mode):
        raise Rejected(f"{path.name} is {_kind(before.st_mode)}, not a file")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:  # ELOOP: it became a link after lstat
        raise Rejected(f"{path.name} could not be opened ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as file:  # closes fd
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino):
            raise Rejected(f"{path.name} changed while it was checked")
        if st.st_nlink != 1:
            raise Rejected(f"{path.name} is a hard link to another file ({st.st_nlink} names for one file), "
                           "not a file of its own")
        if st.st_size > max_bytes:
            raise TooLarge(f"{path.name} is {_mb(st.st_size)}, over the {_mb(max_bytes)} limit")
        data = file.read(max_bytes + 1)  # the file may grow after fstat
    if len(data) > max_bytes:
        raise TooLarge(f"{path.name} is over the {_mb(max_bytes)} limit")
    return data


_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def json_problem(data: bytes, limits: Limits = Limits()) -> str:
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


def notebook_problem(data: bytes, limits: Limits = Limits()) -> str:
    """Why ``data`` (read within ``limits.notebook_bytes``) is not a notebook nbgrader can grade ('' when it is)."""
    import nbformat

    again = ("Open it in Jupyter, check that your answers are there, save it (File > Save) and hand in the saved "
             ".ipynb file")
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


@dataclass
class Submission:
    """What intake found in ``submitted/<student>/<assignment>/``: the notebooks staged, those rejected (with the
    message for the student), and notes for the instructor (files not graded, links not followed)."""

    student: str
    staged: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timestamp: str = ""


def check_submission(folder: Path, notebooks: list[str], dest: Path, limits: Limits = Limits()) -> Submission:
    """Check ``folder`` (one student's submission) and copy what passed into ``dest``. ``notebooks``: the
    assignment's notebook names (no ``.ipynb``). Only the top level is read: nbgrader grades nothing else."""
    from nbgrader.utils import parse_utc

    sub = Submission(student=folder.parent.name)
    try:
        for what, where in (("submission", folder), ("student's", folder.parent)):
            if not stat.S_ISDIR(mode := os.lstat(where).st_mode):
                raise Rejected(f"the {what} folder is {_kind(mode)}")
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except (Rejected, OSError) as exc:
        reason = str(exc) if isinstance(exc, Rejected) else f"the submission folder cannot be read ({exc})"
        for name in notebooks:
            sub.rejected[name] = f"could not grade: {reason}. Hand in the notebook files themselves"
        return sub
    dest.mkdir(parents=True, mode=0o700)
    skipped, links = [], []
    for entry in entries:
        path, name, mode = Path(entry.path), entry.name, entry.stat(follow_symlinks=False).st_mode
        if name.endswith(".ipynb") and name[:-6] in notebooks:
            nb = name[:-6]
            try:
                data = read_regular_file(path, limits.notebook_bytes)
            except TooLarge as exc:
                sub.rejected[nb] = (f"could not grade: {exc}. Clear the outputs (Edit > Clear Outputs of All Cells), "
                                    "save and hand it in again")
                continue
            except Rejected as exc:
                sub.rejected[nb] = (f"could not grade: {exc}. Hand in the notebook file itself (the .ipynb saved "
                                    "by Jupyter), not a link or a special file")
                continue
            problem = notebook_problem(data, limits)
            if problem:
                sub.rejected[nb] = f"could not grade: {problem}"
                continue
            _write_private(dest / name, data)
            sub.staged.append(nb)
        elif name in KEPT_FILES:  # nbgrader's bookkeeping: a time, and a hex secret
            try:
                data = read_regular_file(path, 4096)
                text = data.decode("ascii").strip()
                if not (parse_utc(text) if name == "timestamp.txt" else re.fullmatch(r"[0-9a-fA-F]{1,128}", text)):
                    raise ValueError("not hex")
            except (Rejected, UnicodeDecodeError, ValueError, OverflowError, TypeError) as exc:
                sub.notes.append(f"{name} ignored: {exc or type(exc).__name__}")
                continue
            if name == "timestamp.txt":
                sub.timestamp = text
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


@functools.cache
def db_url(course: Path) -> str:
    """The gradebook URL from the course's ``nbgrader_config.py`` (default: ``gradebook.db`` in the course)."""
    from traitlets.config.loader import PyFileConfigLoader

    url = f"sqlite:///{course.resolve() / 'gradebook.db'}"
    with contextlib.suppress(BaseException):  # no configuration, or one that fails: the default location
        cfg = PyFileConfigLoader(str(course / "nbgrader_config.py")).load_config()
        url = str(cfg.get("CourseDirectory", {}).get("db_url") or url)
    return url


def nbgrader_env(**extra: str) -> dict[str, str]:
    """The environment for an nbgrader subprocess: this interpreter's scripts first on ``PATH`` (nbgrader runs
    ``alembic`` from ``PATH`` when it creates a gradebook), plus ``extra``."""
    env = dict(os.environ, **extra)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


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
          sources: dict[str, Path] | None = None, limits: Limits = Limits()) -> Staging:
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
REFUSAL = (
    "gptedu: plain `nbgrader autograde` is switched off in this course: it would copy and grade the raw "
    "submitted/ folders, following any link a student put there. Run\n"
    "    python -m gptedu.grading.autograde_class ASSIGNMENT [--student GLOB] [--force] [-- nbgrader flags]\n"
    "from the course folder instead: it checks every file first, then runs nbgrader autograde on a clean copy "
    "(autograder/README.md, 'Autograde').")


def _refuse(converter) -> None:
    raise SystemExit(REFUSAL)  # formgrader's API catches it too, and shows the message


def configure_intake(c) -> None:
    """Course configuration: nbgrader autogrades only the checked copy named by ``$GPTEDU_INTAKE_DIR`` (plain
    ``nbgrader autograde`` and formgrader's button are refused), ``collect`` copies only regular files and
    ``release_feedback`` names the students it cannot reach instead of stopping for the class."""
    staged = os.environ.get(ENV, "")
    if staged:  # autograde_class's nbgrader, however it was started: it reads the checked copy, nothing else
        if (os.path.isabs(staged) or ".." in Path(staged).parts or not staged.startswith(STAGING + "/")
                or not os.path.isfile(os.path.join(staged, MARKER))):
            raise SystemExit(f"gptedu: {ENV}={staged!r} is not a folder made by gptedu.grading.intake here")
        c.CourseDirectory.submitted_directory = staged
    else:  # one converter runs both `nbgrader autograde` and formgrader's button (inside the Jupyter server)
        from nbgrader.converters import Autograde

        Autograde.start = _refuse
    _quiet_known_warnings()
    c.ExchangeFactory.collect = "gptedu.grading.intake.CheckedCollect"
    c.ExchangeFactory.release_feedback = "gptedu.grading.intake.CheckedReleaseFeedback"
    c.ZipCollectApp.collector_plugin = "gptedu.grading.intake.FileTimeCollectorPlugin"
    c.ExtractorPlugin.zip_ext = [".zip"]  # zipfile writes regular files only; tar archives can carry links


@functools.cache
def _released_checksums() -> frozenset[str]:
    """Checksums of the locked cells of the released notebooks (nbgrader runs in the course folder)."""
    import nbformat
    from nbgrader.utils import compute_checksum, is_locked

    found = set()
    for path in Path("release").glob("*/*.ipynb"):
        with contextlib.suppress(Exception):  # only decides whether a warning is shown
            found.update(compute_checksum(c) for c in nbformat.read(path, as_version=4).cells
                         if "nbgrader" in c.metadata and is_locked(c))
    return frozenset(found)


def _not_spurious_checksum_warning(record) -> bool:
    """Drops nbgrader's "Attribute 'checksum' for cell X has changed!" for a test cell the student did not touch:
    the gradebook's checksum includes the hidden tests the released cell lacks (upstream issue #1961)."""
    args = record.args if isinstance(record.args, tuple) else ()
    return not (str(record.msg).startswith("Attribute '%s' for cell %s has changed!") and len(args) == 4
                and args[0] == "checksum" and args[3] in _released_checksums())


def _quiet_known_warnings() -> None:
    """No warning on a normal run: the checksum warning above, and SQLAlchemy 2's "not in session" warnings from
    nbgrader's gradebook code."""
    import logging
    import warnings

    for name in ("AutogradeApp", "NbGraderAPI", "FormgradeExtension"):
        logging.getLogger(name).addFilter(_not_spurious_checksum_warning)  # addFilter adds a filter once
    warnings.filterwarnings("ignore", message=r"Object of type <\w+> not in session")


def checked_copytree(src: Path, dest: Path, ignore: list[str], limits: Limits = Limits()) -> list[str]:
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
            if any(Path(rel).match(p) for p in ignore):
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
    return left_out


def _nbgrader_classes() -> dict[str, type]:
    """The classes ``configure_intake`` names, made on first use (importing nbgrader's exchange takes seconds)."""
    from nbgrader.exchange.default.collect import ExchangeCollect
    from nbgrader.exchange.default.release_feedback import ExchangeReleaseFeedback
    from nbgrader.plugins.zipcollect import FileNameCollectorPlugin
    from traitlets import Unicode

    class _CheckedCollect(ExchangeCollect):
        def do_copy(self, src, dest, log=None):
            for item in checked_copytree(Path(src), Path(dest), list(self.coursedir.ignore)):
                self.log.warning("gptedu intake: not collected: %s", item)

    class _CheckedReleaseFeedback(ExchangeReleaseFeedback):
        """Skips (and names) the students it cannot release to, instead of a ``FileNotFoundError`` for the class."""

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
        """Without a ``timestamp`` from ``named_regexp``, the submission time is the file's time in the zip archive,
        read in ``zip_timezone`` (zip archives store local times without a zone)."""

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
