"""Out-of-process verification on the course's richest notebook (``07_gpt``: two components, prerequisites).

The instructor's solution is confirmed; a student who binds the graded ``TransformerDecoder`` to the reference
decoder the notebook imports for ``GPTModel`` gets the decoder failed (the reference is never in the sandbox of the
component being graded) while ``GPTModel``, which may use it, still passes. Runs without the sandbox too (then the
verification subprocess only blocks imports of ``gptedu``).
"""

from __future__ import annotations

import course_kit as kit
import nbformat
import pytest

from gptedu.grading import components, verify

pytestmark = pytest.mark.slow

SOURCE = kit.REPO / "autograder" / "source" / "gpt_from_scratch" / "07_gpt.ipynb"


def _verdicts(nb, source_nb):
    """component -> the kinds of case ("visible", "hidden") it fails."""
    found = [c for c in components.all_components() if c.notebook == "07_gpt"]
    cells = [(i, verify.to_python(s)) for i, s in verify.student_code_cells(nb, source_nb)]
    verdicts = verify.verify_components(found, cells, source_nb, b"a course secret", 300)
    return {c.name: {which for which in verify.WHICH if not verdicts[(c.name, which)].passed} for c in found}


def _solved(source_nb, replace: dict[str, str] | None = None):
    nb = nbformat.from_dict(source_nb)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            cell.source = (replace or {}).get(meta["grade_id"], kit.strip_markers(cell.source))
    return nb


@pytest.fixture(scope="module")
def source_nb():
    return nbformat.read(SOURCE, as_version=4)


def test_groups_keep_the_graded_reference_out(source_nb):
    groups = verify.withheld_groups([c for c in components.all_components() if c.notebook == "07_gpt"])
    by_spec = {spec.name: set(withheld) for withheld, group in groups.items() for spec in group}
    assert "TransformerDecoder" in by_spec["decoder"]
    assert "TransformerDecoder" not in by_spec["gpt_forward"]  # GPTModel may build on the reference decoder
    assert "GPTModel" in by_spec["gpt_forward"]


def test_solution_is_confirmed_and_a_borrowed_reference_is_not(source_nb):
    assert _verdicts(_solved(source_nb), source_nb) == {"decoder": set(), "gpt_forward": set(), "gpt_generate": set()}
    cheat = _solved(source_nb, {"decoder_solution": "TransformerDecoder = ReferenceDecoder\n"})
    found = _verdicts(cheat, source_nb)
    assert set(found["decoder"]) == {"visible", "hidden"}  # failed
    assert found["gpt_forward"] == set() and found["gpt_generate"] == set()


def test_answers_inside_time_magics_are_verified(source_nb):
    """A ``%%time`` answer cell (or a ``%time`` line) still defines the student's code in the trusted run; other
    magics stay no-ops there."""
    timed = {}
    for cell in source_nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            timed[meta["grade_id"]] = "%%time\n" + kit.strip_markers(cell.source)
    assert _verdicts(_solved(source_nb, timed), source_nb) == {"decoder": set(), "gpt_forward": set(),
                                                              "gpt_generate": set()}
    assert verify.to_python("%time x = 1\n%ls\n") == "x = 1\nget_ipython().run_line_magic('ls', '')\n"


def test_an_answer_that_imports_the_reference_scores_nothing(source_nb):
    """The reference package is not in the verification's jail (nor importable in an unjailed run): an answer that
    imports the graded class from it fails, and the visible verdict names the import that failed."""
    cheat = _solved(source_nb, {"decoder_solution": "from gptedu.char.decoder import TransformerDecoder\n"})
    found = [c for c in components.all_components() if c.notebook == "07_gpt"]
    cells = [(i, verify.to_python(s)) for i, s in verify.student_code_cells(cheat, source_nb)]
    verdicts = verify.verify_components(found, cells, source_nb, b"a course secret", 300)
    assert not verdicts[("decoder", "visible")].passed and not verdicts[("decoder", "hidden")].passed
    assert "gptedu" in verdicts[("decoder", "visible")].text
    assert verdicts[("gpt_forward", "visible")].passed
