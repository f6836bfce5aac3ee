"""The series speaks in its own voice: no prose refers to sources it never introduces.

Ideas from elsewhere are cited by name (Vaswani et al. 2017, Radford et al. 2019, Karpathy's nanoGPT, Raschka's
*Build a Large Language Model (From Scratch)*, ...). What a reader must never meet is "the homework", "the
article" or the title of an uncited article: words that point at a text the series does not give. This test reads
every place a reader meets prose: the README files, the notebook sources and the generated notebooks (cell
sources, not outputs), the benchmarks, and the package's docstrings and comments. Tests are left out: they quote
these phrases to check them (this file does).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

FORBIDDEN = [
    (r"\bthe homework\b", "'the homework': the series never introduces one; say what is meant (notebook 01's ...)"),
    (r"\bhomework's\b", "'homework's': name the notebook or the idea instead"),
    (r"\(homework\)", "'(homework)': name the notebook or the idea instead"),
    (r"\bthe article\b", "'the article': cite the source by name (author, year, title) or speak for yourself"),
    (r"\barticle's\b", "'article's': cite the source by name or speak for yourself"),
    (r"let's build gpt-2", "the title of an uncited article: call part 2 what it is, GPT-2 (Radford et al. 2019)"),
    (r"\bbigram of shakespeare\b", "the series never builds a bigram model of Shakespeare"),
]

PLACES = ["README.md", "docs", "notebooks", "solutions", "autograder", "benchmarks", "gptedu"]
SUFFIXES = {".md", ".py", ".ipynb"}
SKIP = {"__pycache__", ".ipynb_checkpoints", "release", "submitted", "autograded", "feedback"}  # caches, nbgrader's


def prose_files() -> list[Path]:
    files = []
    for place in PLACES:
        path = REPO / place
        candidates = [path] if path.is_file() else sorted(path.rglob("*")) if path.is_dir() else []
        files += [p for p in candidates if p.suffix in SUFFIXES and p.is_file() and not SKIP & set(p.parts)]
    return files


def text_of(path: Path) -> str:
    if path.suffix != ".ipynb":
        return path.read_text(encoding="utf-8")
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(cell["source"]) for cell in cells)


def find_phrases(text: str) -> list[str]:
    """One message per forbidden phrase found in ``text``, with the line it is on."""
    found = []
    for pattern, why in FORBIDDEN:
        for match in re.finditer(pattern, text, flags=re.IGNORECASE):
            line = text[text.rfind("\n", 0, match.start()) + 1 : text.find("\n", match.end())]
            found.append(f"{why}: {line.strip()[:140]!r}")
    return found


def test_the_scan_sees_the_places_readers_read():
    files = {p.relative_to(REPO).as_posix() for p in prose_files()}
    expected = {"README.md", "gptedu/__init__.py", "notebooks/01_data.ipynb", "benchmarks/README.md",
                "solutions/14_instruction_finetuning.ipynb", "autograder/src/gpt2/10_gpt2_blocks.py"}  # fmt: skip
    assert expected <= files, f"the prose scan misses {sorted(expected - files)}"


@pytest.mark.parametrize(
    "text",
    [
        "The homework's first idea leaks.",
        "| part 1 (homework) | GPT-2 |",
        "The article ends its story here.",
        "the Article's loop",
        'Part 2, "Let\'s build GPT-2".',
        "from a character-level bigram of Shakespeare to GPT-2",
    ],
)
def test_each_phrase_is_caught(text):
    assert find_phrases(text), f"{text!r} should be reported"


def test_own_words_pass():
    assert not find_phrases("Notebook 01 splits the text; GPT-2 (Radford et al. 2019) learns its positions.")


def test_no_prose_points_at_a_source_it_never_introduces():
    problems = [f"{p.relative_to(REPO)}: {msg}" for p in prose_files() for msg in find_phrases(text_of(p))]
    assert not problems, "Prose that refers to an unnamed source:\n" + "\n".join(problems)
