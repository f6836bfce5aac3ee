"""The part-1 checks themselves: a correct implementation gets every point, each check fails on a realistic wrong
implementation (with the right "most likely cause"), stubs are "not attempted", shortcuts are rejected, and
``run_case`` works without ``gptedu``.

Wrong implementations are the reference's own source with one realistic edit (``reference_namespace(replace)``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from reference_edits import TARGETS, reference_namespace
from torch import nn

from gptedu.grading import CheckFailed, check, grade_component, run_case
from gptedu.grading.components import all_components

SPECS = {c.name: c for c in all_components()}

PART1 = [name for name, spec in SPECS.items() if spec.notebook[:2] <= "09"]


@pytest.fixture(scope="module")
def correct():
    return reference_namespace()


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_registry_covers_every_part1_component():
    assert set(TARGETS) == set(PART1)
    assert sum(SPECS[n].max_points for n in PART1) == 145
    points = {n: SPECS[n].max_points for n in PART1}
    # the points of each graded exercise
    assert points["positional_encoding"] == 10 and points["head"] == 20 and points["multi_head"] == 10
    assert points["feed_forward"] == 10 and points["decoder_layer"] == 10 and points["decoder"] == 10
    assert points["gpt_forward"] + points["gpt_generate"] == 30


@pytest.mark.parametrize("name", PART1)
def test_correct_implementation_gets_full_points(correct, name):
    result = grade_component(name, correct)
    assert result.points == result.max_points == SPECS[name].max_points, result.report()
    assert result.passed and result.cases_run >= 3


def test_hidden_cases_differ_from_visible_ones():
    for name in PART1:
        spec = SPECS[name]
        visible, hidden = spec.cases(hidden=False), spec.cases(hidden=True)
        assert visible and hidden
        assert {c["describe"] for c in visible}.isdisjoint(c["describe"] for c in hidden), name


def test_cases_are_deterministic():
    for name in ("head", "gpt_generate", "get_batch"):
        a, b = SPECS[name].cases(True), SPECS[name].cases(True)
        for ca, cb in zip(a, b, strict=True):
            for key, value in ca.items():
                if isinstance(value, torch.Tensor):
                    assert torch.equal(value, cb[key])
                elif isinstance(value, dict) and value and isinstance(next(iter(value.values())), torch.Tensor):
                    assert all(torch.equal(value[k], cb[key][k]) for k in value)


# One realistic mistake per check (M's suite has many more): (component, source edit, words of the expected cause).
MISTAKES = [
    ("tokenizer", {"return [self.s2i[ch] for ch in text]": "return [self.s2i[ch] for ch in text if ch in self.s2i]"},
     "ValueError"),
    ("tokenizer", {"self.i2s: dict[int, str] = dict(enumerate(chars))": "self.i2s = dict(enumerate(reversed(chars)))"},
     ""),
    ("text_dataset", {"torch.as_tensor(self.tgt_seqs[idx], dtype=torch.long),":
                      "torch.as_tensor(self.src_seqs[idx], dtype=torch.long),"}, "(src, tgt)"),
    ("text_dataset", {"torch.as_tensor(self.src_seqs[idx], dtype=torch.long),":
                      "torch.as_tensor(self.src_seqs[idx], dtype=torch.float32),"}, "long"),
    ("get_batch", {"return chunks[:, :-1].long(), chunks[:, 1:].long()":
                   "return chunks[:, :-1].long(), chunks[:, :-1].long()"}, "not shifted"),
    ("get_batch", {"starts = torch.randint(len(data) - seq_len, (batch_size,), generator=generator)":
                   "starts = torch.randint(len(data) - seq_len, (batch_size,))"}, "generator"),
    ("positional_encoding", {"pe[:, 0::2] = torch.sin(position * div_term)\n    pe[:, 1::2] = torch.cos(":
                             "pe[:, 0::2] = torch.cos(position * div_term)\n    pe[:, 1::2] = torch.sin("},
     "sin and cos are swapped"),
    ("positional_encoding", {'self.register_buffer("pe", sinusoidal_table(num_range, d_model)[None])':
                             "self.pe = nn.Parameter(sinusoidal_table(num_range, d_model)[None])"}, "buffer"),
    ("head", {"/ math.sqrt(k.size(-1))": ""}, "not scaled"),
    ("head", {'scores = scores.masked_fill(self.mask[:seq, :seq] == 0, float("-inf"))\n        return torch.softmax('
              'scores, dim=-1)': 'return torch.softmax(scores, dim=-1).masked_fill(self.mask[:seq, :seq] == 0, 0.0)'},
     "after the softmax"),
    ("head", {"return torch.softmax(scores, dim=-1)": "return torch.softmax(scores, dim=-2)"}, "wrong axis"),
    ("multi_head", {"return self.proj(torch.cat([head(x) for head in self.heads], dim=-1))":
                    "return torch.cat([head(x) for head in self.heads], dim=-1)"}, "projection is missing"),
    ("feed_forward", {"nn.GELU()": "nn.ReLU()"}, "ReLU"),
    ("decoder_layer", {"x = x + self.attn(self.norm1(x))\n        return x + self.ffn(self.norm2(x))":
                       "x = self.norm1(x + self.attn(x))\n        return self.norm2(x + self.ffn(x))"}, "post-norm"),
    ("decoder_layer", {"x = x + self.attn(self.norm1(x))\n        return x + self.ffn(self.norm2(x))":
                       "x = self.attn(self.norm1(x))\n        return x + self.ffn(self.norm2(x))"}, "residual"),
    ("decoder", {"        return self.norm(x)\n": "        return x\n"}, "final LayerNorm"),
    ("gpt_forward", {"self.fc_out(self.decoder(self.pos_encoding(self.embedding(x))))":
                     "self.fc_out(self.decoder(self.embedding(x)))"}, "positional encoding is not added"),
    ("gpt_generate", {"logits = self(idx[:, -self.context_len :])[:, -1, :]": "logits = self(idx)[:, -1, :]"},
     "context_len"),
    ("gpt_generate", {"logits = filter_logits(logits / temperature, top_k=top_k, top_p=top_p)\n    probs = "
                      "torch.softmax(logits, dim=-1)": "logits = filter_logits(logits, top_k=top_k, top_p=top_p)\n"
                      "    probs = torch.softmax(logits, dim=-1) / temperature"}, "temperature"),
    ("gpt_generate", {"logits = self(idx[:, -self.context_len :])[:, -1, :]":
                      "logits = self(idx[:, -self.context_len :])[:, 0, :]"}, "LAST position"),
    ("train", {"        optimizer.zero_grad(set_to_none=True)\n": ""}, "zero_grad"),
    ("train", {"    return total / batches\n\n\n@torch.no_grad()": "    return loss.item()\n\n\n@torch.no_grad()"},
     "last batch"),
    ("evaluate", {"@torch.no_grad()\ndef evaluate": "def evaluate"}, "no_grad"),
    ("evaluate", {"    model.eval()\n    total, batches = 0.0, 0\n    for src, tgt in dataloader:\n        total +=":
                  "    total, batches = 0.0, 0\n    for src, tgt in dataloader:\n        total +="}, "model.eval()"),
    ("top_k_filter", {'logits.masked_fill(logits < kth, float("-inf"))': 'logits.masked_fill(logits <= kth, '
                                                                        'float("-inf"))'}, "one logit too few"),
    ("top_k_filter", {'logits.masked_fill(logits < kth, float("-inf"))': "logits.masked_fill(logits < kth, 0.0)"},
     "-inf"),
    ("sample_next_token", {"    if temperature == 0:\n        return logits.argmax(dim=-1, keepdim=True)\n":
                           "    if temperature == 0:\n        temperature = 1.0\n"}, "argmax"),
    ("sample_next_token", {"logits = filter_logits(logits / temperature, top_k=top_k, top_p=top_p)":
                           "logits = filter_logits(logits, top_k=top_k, top_p=top_p)"}, "temperature is not applied"),
    ("sample_next_token", {"return torch.multinomial(probs, num_samples=1, generator=generator)":
                           "return torch.multinomial(probs, num_samples=1)"}, "generator"),
]


@pytest.mark.parametrize(("name", "edit", "cause"), MISTAKES, ids=[f"{m[0]}-{i}" for i, m in enumerate(MISTAKES)])
def test_each_check_fails_on_a_realistic_mistake(name, edit, cause):
    ns = reference_namespace(edit)
    result = grade_component(name, ns)
    assert result.points < result.max_points, f"{name}: the mistake {edit} was not caught"
    assert result.points == 0, f"{name}: the mistake only lost {result.max_points - result.points} points"
    report = result.report()
    assert cause in report, report
    assert "Traceback" not in report


def test_every_part1_component_has_a_mistake():
    assert {m[0] for m in MISTAKES} == set(PART1)


# ----------------------------------------------------------------------------------------------- not attempted
class StubModule(nn.Module):
    def __init__(self, *args, **kwargs):
        super().__init__()
        # YOUR CODE HERE
        raise NotImplementedError()


def stub_function(*args, **kwargs):
    raise NotImplementedError()


@pytest.mark.parametrize("name", PART1)
def test_untouched_stub_is_not_attempted(name):
    obj = StubModule if SPECS[name].target[0].isupper() else stub_function
    result = grade_component(name, obj)
    assert result.points == 0 and result.not_attempted, result.report()
    assert "not attempted" in result.report()


def test_missing_definition_is_not_attempted():
    result = grade_component("head", {})
    assert result.not_attempted and result.points == 0


def test_check_raises_a_friendly_assertion(capsys, correct):
    with pytest.raises(CheckFailed) as info:
        check("head", StubModule)
    assert isinstance(info.value, AssertionError)
    lines = info.value._render_traceback_()
    assert any("not attempted" in line for line in lines)
    assert check("head", correct) is None  # nothing numeric as the cell's last value
    assert "passed" in capsys.readouterr().out


def test_error_in_student_code_names_the_line():
    class Broken(nn.Module):
        def __init__(self, d_model, d_k, d_v, context_len=100):
            super().__init__()
            self.query = nn.Linear(d_model, d_k, bias=False)
            self.key = nn.Linear(d_model, d_k, bias=False)
            self.value = nn.Linear(d_model, d_v, bias=False)

        def attention_weights(self, x):
            return self.query(x) @ self.key(x)  # forgot the transpose

        def forward(self, x):
            return self.attention_weights(x) @ self.value(x)

    result = grade_component("head", Broken)
    assert result.points == 0
    assert "self.query(x) @ self.key(x)" in result.report()


def test_wrong_attribute_names_say_so():
    class Renamed(nn.Module):
        def __init__(self, d_model, d_k, d_v, context_len=100):
            super().__init__()
            self.q = nn.Linear(d_model, d_k, bias=False)
            self.k = nn.Linear(d_model, d_k, bias=False)
            self.v = nn.Linear(d_model, d_v, bias=False)

        def forward(self, x):
            return x

    report = grade_component("head", Renamed).report()
    assert "missing parameters" in report and "query.weight" in report


# ----------------------------------------------------------------------------------------------- shortcuts
class SdpaHead(nn.Module):
    def __init__(self, d_model, d_k, d_v, context_len=100):
        super().__init__()
        self.query = nn.Linear(d_model, d_k, bias=False)
        self.key = nn.Linear(d_model, d_k, bias=False)
        self.value = nn.Linear(d_model, d_v, bias=False)

    def attention_weights(self, x):
        q, k = self.query(x), self.key(x)
        scores = q @ k.transpose(-2, -1) / k.size(-1) ** 0.5
        mask = torch.tril(torch.ones(x.size(1), x.size(1), dtype=torch.bool))
        return torch.softmax(scores.masked_fill(~mask, float("-inf")), -1)

    def forward(self, x):
        return F.scaled_dot_product_attention(self.query(x), self.key(x), self.value(x), is_causal=True)


def test_builtin_attention_is_rejected():
    result = grade_component("head", SdpaHead)
    assert result.points == 0
    assert any(f.status == "forbidden" for f in result.failures)
    assert "scaled_dot_product_attention" in result.report()


@pytest.mark.parametrize("op", ["scaled_dot_product_attention.default", "_scaled_dot_product_flash_attention_for_cpu"])
def test_attention_through_the_dispatcher_is_rejected(op):
    """``torch.ops.aten`` calls bypass ``__torch_function__``: the guard sees them through its profile hook."""

    class OpsHead(SdpaHead):
        def forward(self, x):
            out = eval(f"torch.ops.aten.{op}")(self.query(x), self.key(x), self.value(x), is_causal=True)
            return out[0] if isinstance(out, tuple) else out

    result = grade_component("head", OpsHead)
    assert result.points == 0 and any(f.status == "forbidden" for f in result.failures), result.report()
    assert f"aten.{op}" in result.report()


def test_wrapping_the_reference_is_rejected():
    import gptedu

    class Wrapper(gptedu.MultiHeadAttention):
        pass

    assert grade_component("multi_head", Wrapper).points == 0
    assert grade_component("head", gptedu.Head).points == 0


def test_nn_multihead_attention_is_rejected():
    class TorchMHA(nn.Module):
        def __init__(self, d_model, num_heads=8, context_len=100):
            super().__init__()
            self.inner = nn.MultiheadAttention(d_model, num_heads, batch_first=True)

        def forward(self, x):
            mask = torch.triu(torch.ones(x.size(1), x.size(1), dtype=torch.bool), 1)
            return self.inner(x, x, x, attn_mask=mask)[0]

    result = grade_component("multi_head", TorchMHA)
    assert result.points == 0 and "MultiheadAttention" in result.report()


def test_prerequisites_from_the_reference_are_allowed():
    """Notebook 04 builds MultiHeadAttention from gptedu's Head: that is not a shortcut."""
    from gptedu import Head

    class MyMHA(nn.Module):
        def __init__(self, d_model, num_heads=8, context_len=100):
            super().__init__()
            size = d_model // num_heads
            self.heads = nn.ModuleList(Head(d_model, size, size, context_len) for _ in range(num_heads))
            self.proj = nn.Linear(d_model, d_model)

        def forward(self, x):
            return self.proj(torch.cat([torch.einsum("bts,bsd->btd", h.attention_weights(x), h.value(x))
                                        for h in self.heads], dim=-1))

    result = grade_component("multi_head", MyMHA)
    assert result.points == result.max_points, result.report()


def test_unusual_but_correct_head_gets_full_points():
    """einsum, another masking value, other local names, a non-persistent mask and extra helpers all pass."""

    class OddHead(nn.Module):
        def __init__(self, d_model, d_k, d_v, context_len=100):
            super().__init__()
            self.query = nn.Linear(d_model, d_k, bias=False)
            self.key = nn.Linear(d_model, d_k, bias=False)
            self.value = nn.Linear(d_model, d_v, bias=False)
            self.register_buffer("tril", torch.tril(torch.ones(context_len, context_len)), persistent=False)

        def _scores(self, x):
            a, b = self.query(x), self.key(x)
            return torch.einsum("btd,bsd->bts", a, b) * a.shape[-1] ** -0.5

        def attention_weights(self, x):
            n = x.shape[1]
            return F.softmax(self._scores(x).masked_fill(self.tril[:n, :n] == 0, -1e9), dim=-1)

        def forward(self, x):
            return torch.einsum("bts,bsd->btd", self.attention_weights(x), self.value(x))

    result = grade_component("head", OddHead)
    assert result.points == result.max_points, result.report()


# ----------------------------------------------------------------------------------------------- runner contract
def test_runner_imports_nothing_from_gptedu():
    import gptedu.grading.runner as runner

    tree = ast.parse(Path(runner.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                 and node.module}
    assert "gptedu" not in imported, imported
    assert all(name in sys.stdlib_module_names or name == "torch" for name in imported), imported


def test_run_case_works_where_gptedu_cannot_be_imported(tmp_path):
    """Cases are plain data: a process that cannot import gptedu runs them and the outputs compare clean."""
    import gptedu.grading.runner as runner

    spec = SPECS["head"]
    cases = spec.cases(hidden=True)
    torch.save(cases, tmp_path / "cases.pt")
    (tmp_path / "grading_runner.py").write_text(Path(runner.__file__).read_text())
    script = textwrap.dedent('''
        import sys
        sys.path.insert(0, ".")
        sys.modules["gptedu"] = None  # importing gptedu now fails
        import math, torch
        from torch import nn
        from grading_runner import run_case

        class Head(nn.Module):
            def __init__(self, d_model, d_k, d_v, context_len=100):
                super().__init__()
                self.query = nn.Linear(d_model, d_k, bias=False)
                self.key = nn.Linear(d_model, d_k, bias=False)
                self.value = nn.Linear(d_model, d_v, bias=False)
                self.register_buffer("mask", torch.tril(torch.ones(context_len, context_len)))

            def attention_weights(self, x):
                T = x.size(1)
                s = self.query(x) @ self.key(x).transpose(-2, -1) / math.sqrt(self.key.out_features)
                return torch.softmax(s.masked_fill(self.mask[:T, :T] == 0, float("-inf")), -1)

            def forward(self, x):
                return self.attention_weights(x) @ self.value(x)

        cases = torch.load(sys.argv[1], weights_only=True)
        torch.save([run_case(Head, case) for case in cases], sys.argv[2])
    ''')
    (tmp_path / "job.py").write_text(script)
    proc = subprocess.run([sys.executable, "-I", "job.py", "cases.pt", "out.pt"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    outputs = torch.load(tmp_path / "out.pt", weights_only=True)
    for case, out in zip(cases, outputs, strict=True):
        assert out["_status"] == "ok", out["_message"]
        assert spec.compare(case, out) == []


def test_run_case_reports_status_keys(correct):
    case = SPECS["feed_forward"].cases(hidden=False)[0]
    out = run_case(correct["FeedForward"], case)
    assert out["_status"] == "ok" and out["_message"] == "" and out["_forbidden"] == []
    assert run_case(stub_function, SPECS["top_k_filter"].cases(False)[0])["_status"] == "not_attempted"
