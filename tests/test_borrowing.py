"""What a review found after the trusted scoring path landed, held: the grader's own correct versions cannot be
borrowed, and the results of a sandboxed run cannot expand in nbgrader's process.

* A later exercise runs with the reference's correct versions of the earlier ones (its ``prerequisites``), in the
  interpreter that runs the student's code, so a student could subclass or call the correct version of the very
  exercise being graded (95 points with no code of their own). A correct version counts only where the case binds
  it, and the binding itself works: a later exercise is graded on its own even when the earlier one is wrong.
* The run's results are read with ``torch.load`` in nbgrader's own process: a few KB of deflated zip entries can
  declare gigabytes of tensors (nbgrader was OOM-killed and the class stopped). ``torch.save`` never compresses, so
  a compressed entry is refused before ``torch.load`` sees it.
"""

from __future__ import annotations

import io
import zipfile

import pytest
import torch

from gptedu.gpt2.layers import LayerNorm
from gptedu.grading import components
from gptedu.grading.components.part1 import top_k_filter as correct_top_k_filter
from gptedu.grading.runner import run_case
from gptedu.grading.verify import _parse_outputs
from gptedu.grading.verify_runner import MARKER


def _first_case(name: str) -> dict:
    return components.get(name).cases(hidden=False)[0]


def test_subclassing_the_graders_own_version_is_a_shortcut():
    case = _first_case("gpt2_layer_norm")
    assert components.get("gpt2_block").prerequisites["LayerNorm"] == "gptedu.gpt2.layers.LayerNorm"
    borrowed = type("LayerNorm", (LayerNorm,), {})
    outputs = run_case(borrowed, case)
    assert outputs["_status"] == "forbidden", outputs["_message"]
    assert "gptedu.gpt2.layers.LayerNorm" in outputs["_message"]
    assert components.get("gpt2_layer_norm").compare(case, outputs)  # and it fails the check


def test_calling_the_graders_own_version_is_a_shortcut():
    case = _first_case("top_k_filter")

    assert components.get("sample_next_token").prerequisites["top_k_filter"].endswith(".part1.top_k_filter")

    def top_k_filter(logits, k):
        return correct_top_k_filter(logits, k)

    outputs = run_case(top_k_filter, case)
    assert outputs["_status"] == "forbidden", outputs["_message"]


STUDENT_BLOCK = """
import torch
from torch import nn

class LayerNorm(nn.Module):  # wrong: the block must not lose points for it
    def __init__(self, emb_dim):
        super().__init__()
        self.scale, self.shift = nn.Parameter(torch.ones(emb_dim)), nn.Parameter(torch.zeros(emb_dim))

    def forward(self, x):
        return x * 0.0

class TransformerBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["emb_dim"]
        self.att = MultiHeadAttention(d, d, cfg["context_len"], cfg["drop_rate"], cfg["n_heads"], cfg["qkv_bias"])
        self.ff = FeedForward(cfg)
        self.norm1, self.norm2 = LayerNorm(d), LayerNorm(d)
        self.drop_shortcut = nn.Dropout(cfg["drop_rate"])

    def forward(self, x):
        x = x + self.drop_shortcut(self.att(self.norm1(x)))
        return x + self.drop_shortcut(self.ff(self.norm2(x)))
"""


def test_a_later_exercise_runs_with_the_correct_earlier_one():
    """The block is correct, its notebook's LayerNorm is not (and MultiHeadAttention, FeedForward are missing):
    the block passes, with the reference's versions bound only while its cases run."""
    namespace: dict = {}
    exec(compile(STUDENT_BLOCK, "<student>", "exec"), namespace)  # noqa: S102 - a student's cell
    wrong = namespace["LayerNorm"]
    spec = components.get("gpt2_block")
    for case in spec.cases(hidden=False):
        outputs = run_case(namespace["TransformerBlock"], case)
        assert outputs["_status"] == "ok", outputs["_message"]
        assert not spec.compare(case, outputs)
    assert namespace["LayerNorm"] is wrong and "FeedForward" not in namespace  # the names are restored
    outputs = run_case(namespace["TransformerBlock"], dict(spec.cases(hidden=False)[0], prerequisites={}))
    assert outputs["_status"] == "error"  # without the binding, the missing FeedForward fails: the binding works


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
