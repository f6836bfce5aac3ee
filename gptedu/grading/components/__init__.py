"""The graded components: one public, typed :class:`Component` per exercise.

    from gptedu.grading import components
    head = components.get("head")                  # Component: .name .title .notebook .points .prerequisites
    cases = head.cases(hidden=True, secret=course_secret)
    failures = head.compare(cases[0], run_case(Head, cases[0]))
    components.for_grade_id("test_head_hidden")    # (head, "hidden")
"""

from __future__ import annotations

from gptedu.grading.components.base import PUBLIC_DEV_SECRET, Component

__all__ = ["PUBLIC_DEV_SECRET", "Component", "all_components", "for_grade_id", "get"]


def _registry() -> dict[str, Component]:
    from gptedu.grading import specs  # facade: today's registry, wrapped

    return {name: Component.from_spec(spec) for name, spec in specs.SPECS.items()}


_CACHE: dict[str, Component] = {}


def all_components() -> list[Component]:
    """Every graded component, in the order of the notebooks."""
    if not _CACHE:
        _CACHE.update(_registry())
    return list(_CACHE.values())


def get(name: str) -> Component:
    """The component called ``name`` (e.g. ``"head"``); ``KeyError`` naming the known ones otherwise."""
    all_components()
    try:
        return _CACHE[name]
    except KeyError:
        raise KeyError(f"No graded component named {name!r}; known: {', '.join(_CACHE)}.") from None


def for_grade_id(grade_id: str) -> tuple[Component, str] | None:
    """``(component, "visible" | "hidden")`` for a test cell's grade id, or ``None`` when it is not a check cell."""
    for component in all_components():
        if grade_id in component.points:
            return component, component.grade_ids[grade_id]
    return None
