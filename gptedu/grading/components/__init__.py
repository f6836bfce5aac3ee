"""The graded components: one public, typed :class:`Component` per exercise, grouped by part, loaded lazily.

    from gptedu.grading import components
    head = components.get("head")                  # Component: .name .title .notebook .points .prerequisites
    cases = head.cases(hidden=True, secret=course_secret)
    failures = head.compare(cases[0], run_case(Head, cases[0]))
    components.for_grade_id("test_head_hidden")    # (head, "hidden")

``part1`` (notebooks 01-09) needs only ``gptedu.char``/``gptedu.data``/``gptedu.sampling``; ``part2`` (10-14) needs
``gptedu.gpt2`` (and its ``regex`` extra). A part is imported the first time one of its components is asked for.
"""

from __future__ import annotations

import importlib

from gptedu.grading.components.base import PUBLIC_DEV_SECRET, Component

__all__ = ["PUBLIC_DEV_SECRET", "Component", "all_components", "for_grade_id", "get", "of_notebook"]

PARTS = ("part1", "part2")


def _part(name: str) -> dict[str, Component]:
    return importlib.import_module(f"{__name__}.{name}").COMPONENTS


def all_components() -> list[Component]:
    """Every graded component, in the order of the notebooks (imports every part)."""
    return [c for part in PARTS for c in _part(part).values()]


def get(name: str) -> Component:
    """The component called ``name`` (e.g. ``"head"``); ``KeyError`` naming the known ones otherwise."""
    for part in PARTS:  # part 1 first: its checks never import part 2
        found = _part(part).get(name)
        if found is not None:
            return found
    raise KeyError(f"No graded component named {name!r}; known: {', '.join(c.name for c in all_components())}.")


def of_notebook(notebook: str) -> list[Component]:
    """The components graded in ``notebook`` (``"10_gpt2_blocks"``)."""
    for part in PARTS:  # part 1 first: its checks never import part 2
        found = [c for c in _part(part).values() if c.notebook == notebook]
        if found:
            return found
    return []


def for_grade_id(grade_id: str) -> tuple[Component, str] | None:
    """``(component, "visible" | "hidden")`` for a test cell's grade id (``test_<name>_<which>``), or ``None``."""
    name, _, which = grade_id.removeprefix("test_").rpartition("_")
    if not grade_id.startswith("test_") or which not in ("visible", "hidden"):
        return None
    try:
        found = get(name)
    except KeyError:
        return None
    return (found, which) if grade_id in found.points else None
