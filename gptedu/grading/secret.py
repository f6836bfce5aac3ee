"""The course secret: hidden cases (sizes, seeds, inputs) derive from it (:func:`derive`), so no one can
precompute them. It lives in the course folder only, ``<course>/.gptedu/secret`` (32 random bytes, hex, mode 0600,
in a folder of mode 0700 whose ``.gitignore`` is ``*``)::

    python -m gptedu.grading.secret init   --course autograder   # once, when the course is set up
    python -m gptedu.grading.secret rotate --course autograder   # a new secret: new hidden cases from now on
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import secrets
import shlex
import sys
from pathlib import Path

FOLDER = ".gptedu"
FILE = "secret"


class MissingSecret(RuntimeError):
    """The course has no secret (or an unreadable one); the message names the command that creates it."""


def derive(secret: bytes, *labels: str | int, low: int = 0, high: int = 2**31 - 1) -> int:
    """An integer in ``[low, high]`` determined by ``secret`` and ``labels`` (HMAC-SHA256), e.g.
    ``derive(secret, "head", "hidden", 0, "seed")``. Different labels give independent values."""
    if high < low:
        raise ValueError(f"derive: empty range [{low}, {high}]")
    message = "\x1f".join(str(label) for label in labels).encode()
    value = int.from_bytes(hmac.new(secret, message, hashlib.sha256).digest()[:8], "big")
    return low + value % (high - low + 1)


def for_submission(secret: bytes, code: list[str], folder: str | os.PathLike | None = None) -> bytes:
    """The secret of one submission's hidden cases: the course ``secret`` keyed with everything the student's code
    can read (its ``code`` cells and the files beside the notebook in ``folder``). A regrade gives the same cases;
    a submission that carries hidden cases leaked during a run is a different submission, with different cases."""
    digest = hashlib.sha256()
    for source in code:
        digest.update(b"cell\x00" + hashlib.sha256(source.encode()).digest())
    if folder is not None and os.path.isdir(folder):
        from gptedu.grading.sandbox import student_files  # what the jail copies, so what the code can read

        for rel, where in student_files(os.fspath(folder)):
            with open(where, "rb") as f:
                digest.update(rel.encode() + b"\x00" + hashlib.file_digest(f, "sha256").digest())
    return hmac.new(secret, b"submission\x00" + digest.digest(), hashlib.sha256).digest()


def path(course: str | os.PathLike) -> Path:
    """Where the course's secret lives: ``<course>/.gptedu/secret``."""
    return Path(course) / FOLDER / FILE


def _command(course: str | os.PathLike, verb: str = "init") -> str:
    return f"python -m gptedu.grading.secret {verb} --course {shlex.quote(os.fspath(course))}"


def load(course: str | os.PathLike) -> bytes:
    """The course's secret (bytes). Raises :class:`MissingSecret`, naming the command to run, when there is none."""
    where = path(course)
    try:
        text = where.read_text().strip()
    except FileNotFoundError:
        raise MissingSecret(f"this course has no grading secret ({where} does not exist), so hidden tests cannot be "
                            f"built. Create it once with: {_command(course)}") from None
    except OSError as exc:
        raise MissingSecret(f"the course's grading secret {where} cannot be read ({exc.strerror}). Run the grader "
                            "as the user who created it, or create a new one with "
                            f"{_command(course, 'rotate')}") from None
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) < 16:
        raise MissingSecret(f"the course's grading secret {where} is damaged (expected at least 32 hex digits). "
                            f"Create a new one with: {_command(course, 'rotate')}")
    return value


def init(course: str | os.PathLike, replace: bool = False) -> Path:
    """Create the course's secret if it has none (an existing one is kept unless ``replace``); returns its path."""
    if not replace and path(course).exists():
        load(course)  # a damaged secret is reported, not silently kept
        return path(course)
    folder = Path(course) / FOLDER
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# the course's grading secret: never commit it\n*\n")
    where = folder / FILE
    tmp = folder / f".{FILE}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    os.replace(tmp, where)  # atomic: a crash never leaves half a secret
    return where


def rotate(course: str | os.PathLike) -> Path:
    """Replace the course's secret: every hidden case changes from the next autograde on."""
    return init(course, replace=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gptedu.grading.secret",
        description="Create (init) or replace (rotate) the course secret from which the hidden tests are built.")
    parser.add_argument("command", choices=("init", "rotate"))
    parser.add_argument("--course", default=".", help="the course folder, which holds nbgrader_config.py (default: .)")
    args = parser.parse_args(argv)
    course = Path(args.course)
    if not (course / "nbgrader_config.py").is_file():
        print(f"error: {course.resolve()} has no nbgrader_config.py: pass the course folder with --course "
              "(e.g. --course autograder)", file=sys.stderr)
        return 2
    try:
        existed = path(course).exists()
        where = init(course, replace=args.command == "rotate")
    except (MissingSecret, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.command == "init" and existed:
        print(f"{where} already exists (kept; `rotate` replaces it).")
    else:
        print(f"wrote {where} (mode 0600, git-ignored). Keep it out of releases and backups you share; "
              "`rotate` replaces it.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
