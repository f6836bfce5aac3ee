"""The graded components (``gptedu.grading.components``): lazy parts, hidden cases from the secret, the sampling
statistics, no cascades in part 2, and messages that say only true things.

The catalogue in ``tests/mistakes/`` (``test_mistakes.py``) proves that each requirement the notebooks state is
graded (a wrong version of each loses points in its own component only); the tests here pin the machinery.
"""

from __future__ import annotations

import contextlib
import io
import math
import subprocess
import sys

import pytest
import torch
from mistakes.harness import notebook_namespace

from gptedu.grading import CheckFailed, check, grade_component, run_case
from gptedu.grading.components import PUBLIC_DEV_SECRET, all_components, for_grade_id, get
from gptedu.grading.components.base import FALSE_FAILURE_RATE, frequency_bounds, frequency_failure
from gptedu.grading.report import Failure, GradeResult


def test_part1_checks_import_neither_part2_nor_regex():
    code = ("import sys; from gptedu.grading import check, components; components.get('head').cases(True); "
            "print(sorted(m for m in sys.modules if m == 'regex' or m.startswith('gptedu.gpt2')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_registry_by_name_and_grade_id():
    assert len(all_components()) == 35
    head = get("head")
    assert for_grade_id("test_head_hidden") == (head, "hidden")
    assert for_grade_id("test_gpt2_block_visible")[0].name == "gpt2_block"
    assert for_grade_id("test_nothing_hidden") is None and for_grade_id("head_solution") is None
    with pytest.raises(KeyError, match="known: tokenizer"):
        get("nope")


def _fingerprint(case: dict) -> str:
    return case["describe"] + "|".join(str(call.get("describe", "")) for call in case.get("calls", []))


@pytest.mark.parametrize("name", ["head", "get_batch", "sample_next_token", "gpt2_attention", "bpe_train",
                                  "collate_instructions", "gpt2_gen_text"])
def test_hidden_cases_derive_from_the_secret(name):
    component = get(name)

    def cases(hidden, secret=None):
        return [_fingerprint(c) for c in component.cases(hidden, secret)]

    assert cases(True, b"course A") == cases(True, b"course A")
    assert cases(True, b"course A") != cases(True, b"course B")
    assert cases(True) == cases(True, PUBLIC_DEV_SECRET)
    assert cases(False, b"course A") == cases(False, b"course B")  # the self-checks are public


def _binomial_tail(n: int, p: float, t: float) -> float:
    """Exact P(|X/n - p| > t) for X ~ Binomial(n, p)."""
    k = torch.arange(n + 1, dtype=torch.float64)
    log_pmf = (torch.lgamma(torch.tensor(n + 1.0, dtype=torch.float64)) - torch.lgamma(k + 1) - torch.lgamma(n - k + 1)
               + k * math.log(p) + (n - k) * math.log1p(-p))
    outside = (k / n - p).abs() > t
    return float(log_pmf[outside].exp().sum())


def test_frequency_bound_has_the_stated_false_failure_rate():
    """Each category's bound holds with probability >= 1 - alpha/K (exact binomial tails), so a correct sampler fails
    the whole test with probability <= alpha = 1e-6 (union bound)."""
    n = 4000
    probs = torch.tensor([0.001, 0.01, 0.05, 0.2, 0.5, 0.239])
    bounds = frequency_bounds(probs, n)
    for p, t in zip(probs.tolist(), bounds.tolist(), strict=True):
        assert _binomial_tail(n, p, t) <= FALSE_FAILURE_RATE / len(probs), (p, t)


def test_correct_sampling_passes_for_many_seeds_and_a_small_bias_fails():
    probs = torch.softmax(torch.randn(12, generator=torch.Generator().manual_seed(0)) * 1.5, -1)
    for seed in range(200):
        ids = torch.multinomial(probs.expand(4000, -1), 1, generator=torch.Generator().manual_seed(seed))
        assert frequency_failure("c", "d", ids, probs, "") is None, seed
    biased = torch.softmax(torch.log(probs) / 1.25, -1)  # temperature 1.25 instead of 1
    ids = torch.multinomial(biased.expand(4000, -1), 1, generator=torch.Generator().manual_seed(1))
    assert frequency_failure("c", "d", ids, probs, "") is not None


def _sample_ns():
    return notebook_namespace("09_generation")


def test_deterministic_quantiles_fail_because_another_generator_gives_the_same_tokens():
    ns = _sample_ns()

    def sample_next_token(logits, temperature=1.0, top_k=None, generator=None):
        if temperature == 0:
            return logits.argmax(dim=-1, keepdim=True)
        probs = torch.softmax(ns["top_k_filter"](logits / temperature, top_k) if top_k else logits / temperature, -1)
        u = (torch.arange(probs.size(0), dtype=probs.dtype) + 0.5) / probs.size(0)
        return torch.searchsorted(probs.cumsum(-1), u[:, None]).clamp(max=probs.size(-1) - 1)

    result = grade_component("sample_next_token", sample_next_token)
    assert result.points == 0
    assert [f.check for f in result.failures] == ["draws random samples from the generator"] * len(result.failures)


def test_top_k_tie_message_names_the_tie_and_true_counts():
    def top_k_filter(logits, k):  # exactly k positions: drops logits tied with the k-th largest
        values, indices = torch.topk(logits, k, dim=-1)
        return torch.full_like(logits, float("-inf")).scatter(-1, indices, values)

    result = grade_component("top_k_filter", top_k_filter, hidden=False)
    failure = next(f for f in result.failures if "ties" in f.check)
    words = failure.message.replace(";", "").split()
    kept, expected = int(words[words.index("keeps") + 1]), int(words[words.index("expected") + 1])
    assert kept < expected and "tie" in failure.message and "ties" in failure.cause, failure


def test_layer_norm_mistake_costs_its_own_ten_points_only_and_later_checks_say_so():
    ns = notebook_namespace("10_gpt2_blocks")
    exec(compile(  # noqa: S102 - a student's LayerNorm with the unbiased variance
        "class LayerNorm(nn.Module):\n"
        "    def __init__(self, emb_dim):\n"
        "        super().__init__()\n"
        "        self.eps = 1e-5\n"
        "        self.scale = nn.Parameter(torch.ones(emb_dim))\n"
        "        self.shift = nn.Parameter(torch.zeros(emb_dim))\n"
        "    def forward(self, x):\n"
        "        mean, var = x.mean(-1, keepdim=True), x.var(-1, keepdim=True, unbiased=True)\n"
        "        return self.scale * (x - mean) / torch.sqrt(var + self.eps) + self.shift\n", "<answer>", "exec"), ns)
    lost = {name: grade_component(name, ns).max_points - grade_component(name, ns).points
            for name in ("gpt2_layer_norm", "gpt2_block", "gpt2_model")}
    assert lost == {"gpt2_layer_norm": 10, "gpt2_block": 0, "gpt2_model": 0}
    with contextlib.redirect_stdout(io.StringIO()) as buffer:
        check("gpt2_block", ns)
    out = buffer.getvalue()
    assert "passed" in out and "uses your LayerNorm from above, which failed its own check" in out, out


def test_report_counts_the_problems_it_lists_and_hidden_feedback_reveals_nothing():
    failures = [Failure("shape", "Head(d_model=37) on x of shape (3, 11, 37), seed 123456", "expected (3, 11, 5)",
                        "check the transpose."),
                Failure("shape", "Head(d_model=37) on x of shape (2, 5, 37), seed 99", "expected (2, 5, 5)", "c"),
                Failure("values", "Head(d_model=37) ..., seed 123456", "expected 0.25, found 0.5", "scale by sqrt.")]
    result = GradeResult("head", "Head", 0, 20, {}, failures, 3)
    text = result.report()
    assert text.startswith("✗ Head: 2 problems found") and text.count("  ✗ ") == 2
    hidden = result.report(hidden=True)
    assert "2 problems" in hidden and "check the transpose." in hidden and "scale by sqrt." in hidden
    assert not any(secret in hidden for secret in ("37", "123456", "(3, 11", "0.25", "0.5"))


def test_hidden_render_of_real_failures_omits_cases_and_values():
    result = grade_component("top_k_filter", lambda logits, k: logits.masked_fill(
        logits < torch.topk(logits, min(k, logits.size(-1))).values[:, -1:], float("inf")))
    assert result.failures
    for failure in result.failures:
        shown = failure.render(hidden=True)
        assert failure.case not in shown and failure.message not in shown, shown


def test_error_cause_points_at_the_student_line_only_when_the_error_is_there():
    def raises_here(logits, k):
        raise ValueError("my own bug")

    def raises_in_torch(logits, k):
        return torch.topk(logits, k + 100, dim=-1).values  # k out of range: torch raises

    here = run_case(raises_here, get("top_k_filter").cases(False)[0])
    inside = run_case(raises_in_torch, get("top_k_filter").cases(False)[0])
    assert here["_status"] == inside["_status"] == "error"
    assert "names the line of your code" in here["_cause"]
    assert "names the line" not in inside["_cause"] and "raises_in_torch" in inside["_cause"]


def test_check_raises_with_a_report_naming_the_cause():
    def top_k_filter(logits, k):
        return logits.masked_fill(logits < torch.topk(logits, k).values[:, -1:], 0.0)

    with pytest.raises(CheckFailed, match="exactly -inf"):
        check("top_k_filter", {"top_k_filter": top_k_filter})
