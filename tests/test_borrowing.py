"""What a review found after the trusted scoring path landed, held: the grader's own correct versions cannot be
borrowed, and the results of a sandboxed run cannot expand in nbgrader's process.

* The sandboxed run keeps the correct stand-ins for earlier exercises (``runner.STAND_INS``) in the interpreter that
  runs the student's code, so a student could subclass or call the stand-in of the very exercise being graded
  (95 points with no code of their own). A stand-in counts only where the case binds it.
* The run's results are read with ``torch.load`` in nbgrader's own process: a few KB of deflated zip entries can
  declare gigabytes of tensors (nbgrader was OOM-killed and the class stopped). ``torch.save`` never compresses, so
  a compressed entry is refused before ``torch.load`` sees it.
"""

from __future__ import annotations

import io
import zipfile

import pytest
import torch

from gptedu.grading import components
from gptedu.grading.runner import STAND_INS, run_case
from gptedu.grading.verify import _parse_outputs
from gptedu.grading.verify_runner import MARKER


def _first_case(name: str) -> dict:
    return components.get(name).cases(hidden=False)[0]


def test_subclassing_the_graders_own_version_is_a_shortcut():
    case = _first_case("gpt2_layer_norm")
    borrowed = type("LayerNorm", (STAND_INS["LayerNorm"],), {})
    outputs = run_case(borrowed, case)
    assert outputs["_status"] == "forbidden", outputs["_message"]
    assert "the grader's own LayerNorm" in outputs["_message"]
    assert components.get("gpt2_layer_norm").compare(case, outputs)  # and it fails the check


def test_calling_the_graders_own_version_is_a_shortcut():
    case = _first_case("top_k_filter")

    def top_k_filter(logits, k):
        return STAND_INS["top_k_filter"](logits, k)

    outputs = run_case(top_k_filter, case)
    assert outputs["_status"] == "forbidden", outputs["_message"]


def _archive(compression: int) -> bytes:
    plain = io.BytesIO()
    torch.save({"_status": "ok", "out:x": torch.arange(12.0).reshape(3, 4)}, plain)
    if compression == zipfile.ZIP_STORED:
        return plain.getvalue()
    source, packed = zipfile.ZipFile(io.BytesIO(plain.getvalue())), io.BytesIO()
    with zipfile.ZipFile(packed, "w", compression) as archive:
        for info in source.infolist():
            archive.writestr(info.filename, source.read(info.filename))
    return packed.getvalue()


def test_results_are_read_when_torch_wrote_them():
    outputs = _parse_outputs(b"printed by the student\n" + MARKER + _archive(zipfile.ZIP_STORED))
    assert torch.equal(outputs["out:x"], torch.arange(12.0).reshape(3, 4))


def test_compressed_results_are_refused_before_torch_load():
    data = _archive(zipfile.ZIP_DEFLATED)
    assert torch.load(io.BytesIO(data), weights_only=True)["_status"] == "ok"  # torch.load itself accepts them
    with pytest.raises(ValueError, match="compressed entry"):
        _parse_outputs(MARKER + data)


@pytest.mark.parametrize("tensor", [torch.ones(1).expand(2**20), torch.ones(4).as_strided((4, 4), (1, 0))])
def test_results_that_declare_more_than_they_store_are_refused(tensor):
    """A few stored bytes can declare a huge tensor (stride 0): comparing it in nbgrader's process would allocate
    without limit. Dense tensors, permuted ones included, are read as they are."""
    packed = io.BytesIO()
    torch.save({"case": {"out:x": tensor}}, packed)
    assert len(packed.getvalue()) < 10_000
    with pytest.raises(ValueError, match="declares more elements"):
        _parse_outputs(MARKER + packed.getvalue())
    packed = io.BytesIO()
    torch.save({"case": {"out:x": torch.arange(12.0).reshape(3, 4).t()}}, packed)
    assert _parse_outputs(MARKER + packed.getvalue())["case"]["out:x"].shape == (4, 3)
