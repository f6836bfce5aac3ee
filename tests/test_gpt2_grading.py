"""Part 2's graded notebooks (assignment ``gpt2``): solutions earn every point, stubs none, typical mistakes none.

The code under test is the notebook's own: its cells are executed in a fresh namespace, as a kernel would, with the
solution regions kept (full points), replaced by the student stub (zero), or edited into a realistic mistake (zero
for that component, with the expected hint in the report).
"""

from __future__ import annotations

import ast
import os
import re
import sys
import types
from pathlib import Path

import nbformat
import pytest

from gptedu.grading import grade_component
from gptedu.grading.components import all_components

SPECS = {c.name: c for c in all_components()}

os.environ.setdefault("MPLBACKEND", "Agg")
SOURCE = Path(__file__).resolve().parents[1] / "autograder" / "source" / "gpt2"
_SOLUTION = re.compile(r"^([ \t]*)### BEGIN SOLUTION.*?### END SOLUTION[ \t]*$", re.MULTILINE | re.DOTALL)
_counter = 0


def notebook_namespace(name: str, replace: dict[str, str] | None = None, stub: bool = False) -> dict:
    """Run the notebook's code cells (not its test cells) in a fresh module namespace and return it."""
    global _counter
    _counter += 1
    nb = nbformat.read(SOURCE / f"{name}.ipynb", as_version=4)
    mod = types.ModuleType(f"__student_{name}_{_counter}")
    sys.modules[mod.__name__] = mod
    ns = mod.__dict__
    ns["QUICK"] = True
    unused = set(replace or {})
    first_code = True
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or meta.get("grade"):
            continue
        # Like the sandbox: the setup cell, the answers, and cells of plain imports/assignments (demos are skipped).
        if not (first_code or meta.get("solution") or _is_simple(cell.source)):
            continue
        first_code = False
        source = cell.source
        if meta.get("solution"):
            for old, new in (replace or {}).items():
                if old in source:
                    source = source.replace(old, new)
                    unused.discard(old)
            if stub:
                source = _SOLUTION.sub(lambda m: f"{m.group(1)}raise NotImplementedError()", source)
        source = source.replace("plt.show()", "plt.close('all')")
        try:
            exec(compile(source, f"<{name}>", "exec"), ns)  # noqa: S102 - the course's own notebook
        except NotImplementedError:
            if not stub:
                raise
    assert not unused, f"mistake snippets not found in the notebook: {sorted(unused)}"
    return ns


def _is_simple(source: str) -> bool:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    return all(isinstance(node, ast.Import | ast.ImportFrom | ast.Assign) for node in tree.body)


def specs_of(notebook: str) -> list[str]:
    return [name for name, spec in SPECS.items() if spec.notebook == notebook]


NOTEBOOKS = ["10_gpt2_blocks", "11_bpe_tokenizer", "12_pretraining_sampling", "13_kv_cache"]


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_solutions_earn_full_points(notebook):
    ns = notebook_namespace(notebook)
    assert specs_of(notebook)
    for spec in specs_of(notebook):
        result = grade_component(spec, ns)
        assert result.points == result.max_points > 0, result.report(hidden=True)


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_untouched_stubs_earn_nothing(notebook):
    ns = notebook_namespace(notebook, stub=True)
    for spec in specs_of(notebook):
        result = grade_component(spec, ns)
        assert result.points == 0, spec
        assert result.failures and result.failures[0].status == "not_attempted", (spec, result.failures[:1])


def test_notebook_headers_state_the_points():
    for notebook in NOTEBOOKS:
        nb = nbformat.read(SOURCE / f"{notebook}.ipynb", as_version=4)
        cells = [c.metadata.get("nbgrader", {}) for c in nb.cells]
        total = sum(m.get("points", 0) for m in cells if m.get("grade"))
        registry = sum(SPECS[s].max_points for s in specs_of(notebook))
        assert total == registry
        assert f"Points in this notebook: {total}**" in nb.cells[0].source
        part2 = sum(spec.max_points for spec in SPECS.values() if spec.notebook[:3] in ("10_", "11_", "12_", "13_",
                                                                                          "14_"))
        assert f"Part 2 total: {part2} points" in nb.cells[0].source
        ids = {m["grade_id"] for m in cells if m.get("grade")}
        assert ids == {gid for s in specs_of(notebook) for gid in SPECS[s].points}


# (spec, replacement in the solution, words expected in the report's cause)
MISTAKES_10 = [
    ("gpt2_layer_norm", {"unbiased=False": "unbiased=True"}, "unbiased"),
    ("gpt2_layer_norm", {"torch.sqrt(var + self.eps)": "(torch.sqrt(var) + self.eps)"}, "outside the square root"),
    ("gpt2_layer_norm", {"return self.scale * (x - mean) / torch.sqrt(var + self.eps) + self.shift":
                         "return (x - mean) / torch.sqrt(var + self.eps)"}, "scale and shift"),
    ("gpt2_gelu", {"0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))":
                   "F.gelu(x)"}, "exact (erf) GELU"),
    ("gpt2_gelu", {"(x + 0.044715 * x**3)": "x"}, "cubic term"),
    ("gpt2_feed_forward", {"            GELU(),\n": "            nn.ReLU(),\n"}, "ReLU"),
    ("gpt2_feed_forward", {"4 * cfg[\"emb_dim\"]": "2 * cfg[\"emb_dim\"]"}, "parameter"),
    ("gpt2_attention", {"/ math.sqrt(self.head_dim)": ""}, "not scaled"),
    ("gpt2_attention", {"/ math.sqrt(self.head_dim)": "/ math.sqrt(self.d_out)"}, "sqrt(head_dim)"),
    ("gpt2_attention", {"scores = scores.masked_fill(self.mask.bool()[:seq, :seq], float(\"-inf\"))": "pass"},
     "mask is missing"),
    ("gpt2_attention", {"return t.view(b, seq, self.n_heads, self.head_dim).transpose(1, 2)":
                        "return t.view(b, self.n_heads, seq, self.head_dim)"}, "without a transpose"),
    ("gpt2_attention", {"return self.out_proj(context)": "return context"}, "out_proj"),
    ("gpt2_attention", {"torch.softmax(scores, dim=-1)": "torch.softmax(scores, dim=-2)"}, "wrong axis"),
    ("gpt2_attention", {"q @ k.transpose(2, 3) / math.sqrt(self.head_dim)":
                        "F.scaled_dot_product_attention(q, k, v, is_causal=True) if False else "
                        "q @ k.transpose(2, 3) / math.sqrt(self.head_dim)\n"
                        "        F.scaled_dot_product_attention(q, k, v)"}, "write it yourself"),
    ("gpt2_embedding", {"return self.drop(self.tok_emb(idx) + self.pos_emb(positions))":
                        "return self.drop(self.tok_emb(idx))"}, "position embedding is not added"),
    ("gpt2_embedding", {"torch.arange(idx.size(1), device=idx.device)": "torch.arange(1, idx.size(1) + 1)"},
     "start at 1"),
    ("gpt2_block", {"x = x + self.drop_shortcut(self.att(self.norm1(x)))\n        x = x + self.drop_shortcut("
                    "self.ff(self.norm2(x)))": "x = self.norm1(x + self.att(x))\n        x = self.norm2(x + "
                    "self.ff(x))"}, "post-LN"),
    ("gpt2_block", {"x = x + self.drop_shortcut(self.ff(self.norm2(x)))":
                    "x = x + self.drop_shortcut(self.ff(self.norm1(x)))"}, "norm2"),
    ("gpt2_model", {"return self.out_head(self.final_norm(self.trf_blocks(self.emb(idx))))":
                    "return self.out_head(self.trf_blocks(self.emb(idx)))"}, "final_norm"),
    ("gpt2_model", {"            self.out_head.weight = self.emb.tok_emb.weight": "            pass"}, "tie_weights"),
    ("gpt2_param_count", {"    if not cfg.get(\"tie_weights\", False):\n        total += vocab * d\n": ""},
     "out_head"),
    ("gpt2_param_count", {"(3 * d if cfg[\"qkv_bias\"] else 0)": "0"}, "QKV biases"),
    ("gpt2_param_count", {"+ cfg[\"context_len\"] * d": ""}, "position embedding"),
]


@pytest.mark.parametrize("spec, replace, hint", MISTAKES_10, ids=[f"{m[0]}-{i}" for i, m in enumerate(MISTAKES_10)])
def test_notebook_10_mistakes_lose_the_points(spec, replace, hint):
    ns = notebook_namespace("10_gpt2_blocks", replace)
    result = grade_component(spec, ns)
    assert result.points == 0, f"{spec} kept {result.points} points with {replace}"
    report = result.report(hidden=True)
    assert hint.lower() in report.lower(), report


MISTAKES_11 = [
    ("bpe_pair_counts", {"for pair in zip(ids, ids[1:]):\n        counts[pair] = counts.get(pair, 0) + 1":
                         "for pair in set(zip(ids, ids[1:])):\n        counts[pair] = 1"}, "overlapping"),
    ("bpe_merge", {"            i += 2\n": "            i += 1\n"}, "merge"),
    ("bpe_train", {"min(counts, key=lambda p: (-counts[p], p))": "max(counts, key=counts.get)"}, "ties"),
    ("bpe_train", {"counts.get(pair, 0) + c * chunk_counts[chunk]": "counts.get(pair, 0) + c"}, "chunk"),
    ("bpe_train", {"chunk_counts = Counter(regex.findall(GPT2_PATTERN, text))": "chunk_counts = Counter([text])"},
     "never across chunks"),
    ("bpe_encode", {"pair = min(pairs, key=lambda p: merges.get(p, float(\"inf\")))":
                    "pair = next((p for p in zip(chunk_ids, chunk_ids[1:]) if p in merges), None)"},
     "order they were learned"),
    ("bpe_decode", {"return b\"\".join(vocab[i] for i in ids).decode(\"utf-8\", errors=\"replace\")":
                    "return \"\".join(vocab[i].decode(\"utf-8\", errors=\"replace\") for i in ids)"},
     "decode once"),
]


@pytest.mark.parametrize("spec, replace, hint", MISTAKES_11, ids=[f"{m[0]}-{i}" for i, m in enumerate(MISTAKES_11)])
def test_notebook_11_mistakes_lose_the_points(spec, replace, hint):
    ns = notebook_namespace("11_bpe_tokenizer", replace)
    result = grade_component(spec, ns)
    assert result.points == 0, f"{spec} kept {result.points} points with {replace}"
    report = result.report(hidden=True)
    assert hint.lower() in report.lower(), report


MISTAKES_13 = [
    ("kv_cached_attention", {"self.mask.bool()[start:end, :end]": "self.mask.bool()[:new, :end]"}, "shifted"),
    ("kv_cached_attention", {"                k = torch.cat([self.cache_k, k], dim=2)\n"
                             "                v = torch.cat([self.cache_v, v], dim=2)\n": ""}, "raised"),
    ("kv_cached_attention", {"return self.out_proj((weights @ v)": "return ((weights @ v)"}, "out_proj"),
    ("kv_cached_generate", {"                cache = KVCache()\n                logits = self(idx[:, -ctx:], "
                            "kv_cache=cache)[:, -1, :]": "                logits = self(idx_next, kv_cache=cache)"
                            "[:, -1, :]"}, "learned positions"),
    ("kv_cached_generate", {"        logits = self(idx[:, -ctx:], kv_cache=cache)[:, -1, :]\n        for":
                            "        logits = self(idx, kv_cache=cache)[:, -1, :]\n        for"}, "learned positions"),
    ("kv_cached_generate", {"                logits = self(idx[:, -ctx:], kv_cache=cache)[:, -1, :]":
                            "                logits = self(idx[:, -(ctx // 2):], kv_cache=cache)[:, -1, :]"}, "stale"),
]


@pytest.mark.parametrize("spec, replace, hint", MISTAKES_13, ids=[f"{m[0]}-{i}" for i, m in enumerate(MISTAKES_13)])
def test_notebook_13_mistakes_lose_the_points(spec, replace, hint):
    ns = notebook_namespace("13_kv_cache", replace)
    result = grade_component(spec, ns)
    assert result.points == 0, f"{spec} kept {result.points} points with {replace}"
    report = result.report(hidden=True)
    assert hint.lower() in report.lower(), report


MISTAKES_12 = [
    ("gpt2_calc_loss_batch", {"F.cross_entropy(logits.flatten(0, 1), target_batch.flatten())":
                              "F.cross_entropy(torch.softmax(logits, -1).flatten(0, 1), target_batch.flatten())"},
     "softmax"),
    ("gpt2_calc_loss_batch", {"return F.cross_entropy(logits.flatten(0, 1), target_batch.flatten())":
                              "return F.cross_entropy(logits.flatten(0, 1), target_batch.flatten()).detach()"},
     "backward"),
    ("gpt2_calc_loss_batch", {"F.cross_entropy(logits.flatten(0, 1), target_batch.flatten())":
                              "F.cross_entropy(logits[:, -1], target_batch[:, -1])"}, "last position"),
    ("gpt2_calc_loss_loader", {"        if i >= n:\n            break\n": ""}, "num_batches is ignored"),
    ("gpt2_calc_loss_loader", {"    return total / n": "    return total"}, "sum"),
    ("gpt2_calc_loss_loader", {"    if len(data_loader) == 0:\n        return float(\"nan\")\n": ""}, "raised"),
    ("gpt2_gen_text", {"model(idx[:, -context_size:])": "model(idx)"}, "crop"),
    ("gpt2_gen_text", {"probs = torch.softmax(logits / temperature, dim=-1)": "probs = torch.softmax(logits, dim=-1)"},
     "temperature is not applied"),
    ("gpt2_gen_text", {"logits = logits.masked_fill(logits < kth, float(\"-inf\"))": "pass"}, "top"),
    ("gpt2_gen_text", {"        if eos_id is not None and bool((idx_next == eos_id).all()):\n            break\n": ""},
     "eos_id"),
    ("gpt2_gen_text", {"idx_next = logits.argmax(dim=-1, keepdim=True)":
                       "idx_next = torch.multinomial(torch.softmax(logits, -1), 1)"}, "argmax"),
]


@pytest.mark.parametrize("spec, replace, hint", MISTAKES_12, ids=[f"{m[0]}-{i}" for i, m in enumerate(MISTAKES_12)])
def test_notebook_12_mistakes_lose_the_points(spec, replace, hint):
    ns = notebook_namespace("12_pretraining_sampling", replace)
    result = grade_component(spec, ns)
    assert result.points == 0, f"{spec} kept {result.points} points with {replace}"
    report = result.report(hidden=True)
    assert hint.lower() in report.lower(), report
