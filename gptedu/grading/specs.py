"""The registry of graded components of part 1: cases, and the comparison with the ``gptedu`` reference.

Each :class:`Spec` has

1. ``cases(hidden)`` — plain-data cases (constructor kwargs, inputs, the weights to inject, seeds); visible cases
   for the self-checks, hidden ones with sizes and seeds the student never saw;
2. ``run_case`` — in :mod:`gptedu.grading.runner` (torch only, no ``gptedu``), shared by every spec;
3. ``compare(case, outputs)`` — runs the reference on the same case and returns a list of :class:`Failure`, each
   naming the check, the tensor and position, expected vs found, and the most likely cause (found by testing the
   student's output against typical mistakes computed from the reference weights).

Test cells of the notebooks are named ``test_<spec>_visible`` and ``test_<spec>_hidden`` (``Spec.points``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from gptedu.char import attention, decoder, feedforward, loop, model, positional
from gptedu.data import CharTokenizer, TextDataset
from gptedu.grading.report import Failure, tensor_failure
from gptedu.grading.runner import TinyLM
from gptedu.sampling import filter_logits

ATTENTION_SHORTCUTS = {"forbid_torch_attention": True}


@dataclass
class Spec:
    """One graded component: where it lives, its points per test cell, its cases and its comparison."""

    name: str
    title: str
    target: str  # the class or function name the student defines in the notebook
    notebook: str
    points: dict[str, int]  # grade id -> points, e.g. {"test_head_visible": 10, "test_head_hidden": 10}
    make_cases: Callable[[bool], list[dict]]
    compare: Callable[[dict, dict], list[Failure]]
    # Names the notebook imports from gptedu for this exercise (earlier steps): name in the notebook -> reference
    # class. A sandbox that cannot import gptedu must provide these under those names.
    prerequisites: dict[str, str] = field(default_factory=dict)
    notes: str = ""
    _cache: dict = field(default_factory=dict, repr=False)

    def cases(self, hidden: bool) -> list[dict]:
        key = bool(hidden)
        if key not in self._cache:
            self._cache[key] = self.make_cases(key)
        # Hand out copies of the dicts so a run can never alter the cached cases.
        return [dict(c) for c in self._cache[key]]

    @property
    def grade_ids(self) -> dict[str, str]:
        """grade id -> ``"visible"`` or ``"hidden"``."""
        return {gid: ("hidden" if gid.endswith("_hidden") else "visible") for gid in self.points}

    @property
    def max_points(self) -> int:
        return sum(self.points.values())


# ============================================================================================== shared helpers
def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _params_of(module: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Named parameters of a freshly built reference module, with LayerNorms randomised (so a swapped norm shows)."""
    g = _gen(seed + 1000)
    params = {}
    for name, p in module.named_parameters():
        value = p.detach().clone()
        if ".norm" in name or name.startswith("norm"):
            value = (1.0 + 0.3 * torch.randn(p.shape, generator=g)) if name.endswith("weight") else (
                0.2 * torch.randn(p.shape, generator=g))
        params[name] = value
    return params


def _build_ref(cls: Callable, init: dict, params: dict[str, torch.Tensor] | None) -> nn.Module:
    ref = cls(**init)
    if params is not None:
        missing, unexpected = ref.load_state_dict(params, strict=False)
        bad = [m for m in missing if m in dict(ref.named_parameters())]
        if bad or unexpected:  # a bug in the cases themselves, not in the student's code
            raise RuntimeError(f"grading case does not fit the reference: missing {bad}, unexpected {unexpected}")
    return ref.eval()


def _kw(init: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in init.items())


def _shape(t: torch.Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


def _status_failures(spec_title: str, case: dict, outputs: dict) -> list[Failure]:
    status = outputs.get("_status", "error")
    if status == "ok":
        return []
    checks = {
        "not_attempted": "not attempted",
        "error": "your code raised an error",
        "load_error": "parameter names and shapes match the exercise",
        "forbidden": "no shortcuts (write it yourself)",
    }
    causes = {
        "error": "read the error above: it names the line of your code that failed.",
        "load_error": "use exactly the attribute names and layer sizes given in the exercise.",
        "forbidden": "this exercise is about writing the computation yourself.",
    }
    return [Failure(checks.get(status, status), case["describe"], outputs.get("_message", ""),
                    causes.get(status, ""), status=status)]


def _changed_after(x: torch.Tensor, t: int, seed: int, vocab: int | None = None) -> torch.Tensor:
    """A copy of ``x`` where every position after ``t`` is replaced (to test that outputs at <= t do not move)."""
    g = _gen(seed + 7)
    changed = x.clone()
    if vocab is None:
        changed[:, t + 1:] = torch.randn(changed[:, t + 1:].shape, generator=g)
    else:
        changed[:, t + 1:] = (changed[:, t + 1:] + 1 + torch.randint(vocab - 1, changed[:, t + 1:].shape,
                                                                     generator=g)) % vocab
    return changed


def _module_case(spec: str, index: int, label: str, cls: Callable, init: dict, x_shape: tuple, seed: int,
                 methods=("forward",), causal: bool = False, vocab: int | None = None, shortcuts=None,
                 with_params: bool = True, prepare: Callable | None = None, report_buffers=None) -> dict:
    torch.manual_seed(seed)
    ref = cls(**init)
    params = _params_of(ref, seed) if with_params else None
    if prepare is not None and params is not None:
        params = prepare(params)
    g = _gen(seed)
    x = torch.randint(vocab, x_shape, generator=g) if vocab else torch.randn(x_shape, generator=g)
    inputs = {"x": x}
    t = x_shape[1] // 2
    if causal and x_shape[1] > 1:
        inputs["x_changed"] = _changed_after(x, t, seed, vocab)
    case = {
        "spec": spec, "id": f"{spec}/{index}", "kind": "module", "label": label, "init": dict(init),
        "params": params, "inputs": inputs, "methods": list(methods), "seed": seed, "causal_t": t,
        "shortcuts": dict(shortcuts or {}),
        "describe": f"{label}({_kw(init)}) on {'token ids' if vocab else 'x'} of shape {_shape(x)}, seed {seed}",
    }
    if report_buffers:
        case["report_buffers"] = list(report_buffers)
    return case


def _match_variant(found: torch.Tensor, variants: list[tuple[str, torch.Tensor]], atol: float) -> str:
    """The explanation of the first typical mistake whose output equals ``found``, else ``""``."""
    for explanation, value in variants:
        if isinstance(found, torch.Tensor) and value is not None and found.shape == value.shape and torch.allclose(
                found.double(), value.double(), atol=max(atol, 1e-5), rtol=1e-4):
            return explanation
    return ""


def _compare_module(case: dict, outputs: dict, cls: Callable, title: str, atol: float, rtol: float,
                    default_cause: str, variants: Callable | None = None, causal: bool = False,
                    extra: Callable | None = None) -> list[Failure]:
    failures = _status_failures(title, case, outputs)
    if failures:
        return failures
    ref = _build_ref(cls, case["init"], case.get("params"))
    for input_name, x in case["inputs"].items():
        for method in case["methods"]:
            key = f"{method}:{input_name}"
            with torch.no_grad():
                expected = (ref if method == "forward" else getattr(ref, method))(x.clone())
            failure = tensor_failure(f"`{method}` matches the reference (same weights)", case["describe"],
                                     f"{method}({input_name})", expected, outputs.get(key), atol, rtol, "")
            if failure is not None:
                cause = ""
                if variants is not None:
                    with torch.no_grad():
                        cause = _match_variant(outputs.get(key), variants(ref, x.clone(), method), atol)
                failure.cause = cause or default_cause
                failures.append(failure)
    if causal and "x_changed" in case["inputs"] and "forward:x_changed" in outputs and "forward:x" in outputs:
        t = case["causal_t"]
        a, b = outputs["forward:x"], outputs["forward:x_changed"]
        if a.shape == b.shape and a.dim() >= 2:
            fail = tensor_failure("causality: positions <= t ignore every position after t", case["describe"],
                                  f"forward(x)[:, :{t + 1}] vs forward(x with positions > {t} changed)",
                                  a[:, : t + 1].double(), b[:, : t + 1], 1e-5, 0.0,
                                  "positions after t receive attention: is the causal mask applied, and before "
                                  "the softmax?")
            if fail is not None:
                fail.message = "changing positions after t changed the output at positions <= t. " + fail.message
                failures.append(fail)
    if extra is not None:
        failures.extend(extra(case, outputs, ref))
    return failures


# ============================================================================================== 02 positional
def _pe_table(num: int, d: int, swap: bool = False, exp_scale: float = 1.0, start: int = 0) -> torch.Tensor:
    pos = torch.arange(start, start + num, dtype=torch.float64)[:, None]
    two_i = torch.arange(0, d, 2, dtype=torch.float64)
    angle = pos / (10000.0 ** (exp_scale * two_i / d))
    pe = torch.zeros(num, d, dtype=torch.float64)
    first, second = (torch.cos, torch.sin) if swap else (torch.sin, torch.cos)
    pe[:, 0::2] = first(angle)
    pe[:, 1::2] = second(angle[:, : d // 2])
    return pe


def _pe_cases(hidden: bool) -> list[dict]:
    sizes = ([(dict(d_model=32), (3, 37, 32), 101), (dict(d_model=6, num_range=20), (2, 20, 6), 102),
              (dict(d_model=64, num_range=300), (1, 257, 64), 103)] if hidden else
             [(dict(d_model=16, num_range=50), (2, 10, 16), 1), (dict(d_model=8, num_range=100), (1, 100, 8), 2)])
    return [_module_case("positional_encoding", i, "PositionalEncoding", positional.PositionalEncoding, init, shape,
                         seed, with_params=False, report_buffers=["pe"]) for i, (init, shape, seed) in enumerate(sizes)]


def _pe_variants(ref, x, method):
    seq, d = x.shape[1], x.shape[2]
    return [
        ("sin and cos are swapped: even columns (2i) take sin, odd columns (2i+1) take cos.",
         x + _pe_table(seq, d, swap=True)[None]),
        ("the exponent is twice too large: the column index j already equals 2i for even columns, so use "
         "10000^(j/d_model) for the pair (j, j+1), not 10000^(2j/d_model).",
         x + _pe_table(seq, d, exp_scale=2.0)[None]),
        ("the exponent uses i instead of 2i: the frequency of pair i is 1/10000^(2i/d_model).",
         x + _pe_table(seq, d, exp_scale=0.5)[None]),
        ("positions start at 1; the first position is pos = 0.", x + _pe_table(seq, d, start=1)[None]),
        ("forward returns the encoding alone: it must return x + pe[:, :seq].",
         _pe_table(seq, d)[None].expand_as(x).clone()),
        ("forward returns x unchanged: the positional code is never added; return x + self.pe[:, :seq].",
         x.clone()),  # (variant added by the mistakes suite, tests/mistakes/)
    ]


def _pe_extra(case, outputs, ref) -> list[Failure]:
    failures = []
    init = case["init"]
    num_range, d = init.get("num_range", 5000), init["d_model"]
    if int(outputs.get("_num_params", torch.tensor(0))) != 0:
        failures.append(Failure("no learnable parameters", case["describe"],
                                f"found {int(outputs['_num_params'])} learnable parameters, expected 0.",
                                "the table is fixed: store it with self.register_buffer('pe', ...), not nn.Parameter."))
    if "buffer:pe" not in outputs:
        where = "a parameter" if "param:pe" in outputs else "missing"
        failures.append(Failure("`pe` is a registered buffer", case["describe"], f"`pe` is {where}.",
                                "register the table with self.register_buffer('pe', pe) so it moves with .to(device) "
                                "and is saved with the model."))
    else:
        expected = _pe_table(num_range, d)[None].float()
        fail = tensor_failure("buffer `pe` equals the closed form PE[pos,2i]=sin(pos/10000^(2i/d)), "
                              "PE[pos,2i+1]=cos(...)", case["describe"], "pe", expected, outputs["buffer:pe"], 2e-3,
                              0.0, "")
        if fail is not None:
            fail.cause = ("expected shape (1, num_range, d_model): add the batch dimension with pe.unsqueeze(0)."
                          if "shape" in fail.message else "compare your formula with the one in the markdown above.")
            failures.append(fail)
    return failures


def _pe_compare(case, outputs):
    return _compare_module(case, outputs, positional.PositionalEncoding, "PositionalEncoding", 1e-4, 0.0,
                           "compare your table with the formula; plot it next to the reference heatmap.",
                           _pe_variants, extra=_pe_extra)


# ============================================================================================== 03 head
def _attn(q, k, v, scale: float, mask_mode: str = "before", dim: int = -1):
    seq = q.size(1)
    scores = q @ k.transpose(-2, -1) * scale
    tril = torch.tril(torch.ones(seq, seq, dtype=torch.bool))
    if mask_mode == "before":
        scores = scores.masked_fill(~tril, float("-inf"))
    elif mask_mode == "upper":
        scores = scores.masked_fill(tril.T.logical_not(), float("-inf"))
    w = torch.softmax(scores, dim=dim)
    if mask_mode == "after":
        w = w.masked_fill(~tril, 0.0)
    return w, w @ v


def _head_variants(ref, x, method):
    q, k, v = ref.query(x), ref.key(x), ref.value(x)
    d_k, d_v, d_model = q.size(-1), v.size(-1), x.size(-1)
    options = [
        ("the scores are not scaled: divide q @ k^T by sqrt(d_k) before the softmax.", 1.0, "before", -1),
        ("the scores are divided by d_k instead of sqrt(d_k).", 1 / d_k, "before", -1),
        ("the scores are scaled with d_model instead of d_k: divide by sqrt(d_k), the size of one query.",
         1 / math.sqrt(d_model), "before", -1),
        ("the scores are scaled with d_v instead of d_k.", 1 / math.sqrt(d_v), "before", -1),
        ("the causal mask is missing: set the scores of positions after t to -inf before the softmax.",
         1 / math.sqrt(d_k), "none", -1),
        ("the mask is applied after the softmax: mask the scores (with -inf) before the softmax so each row still "
         "sums to 1.", 1 / math.sqrt(d_k), "after", -1),
        ("the mask is the wrong triangle: position t may look at positions <= t (torch.tril), not >= t.",
         1 / math.sqrt(d_k), "upper", -1),
        ("the softmax runs over the wrong axis: normalise over the keys, softmax(scores, dim=-1).",
         1 / math.sqrt(d_k), "before", -2),
    ]
    out = []
    for text, scale, mode, dim in options:
        w, y = _attn(q, k, v, scale, mode, dim)
        out.append((text, y if method == "forward" else w))
    return out


def _head_extra(case, outputs, ref) -> list[Failure]:
    failures = []
    w = outputs.get("attention_weights:x")
    if isinstance(w, torch.Tensor) and w.dim() == 3 and w.size(-1) == w.size(-2):
        seq = w.size(-1)
        sums = w.double().sum(-1)
        fail = tensor_failure("each row of the attention weights sums to 1", case["describe"],
                              "attention_weights(x).sum(-1)", torch.ones_like(sums), sums, 1e-5, 0.0,
                              "the softmax must run over the last axis (the keys), after masking.")
        if fail:
            failures.append(fail)
        upper = torch.triu(torch.ones(seq, seq, dtype=torch.bool), diagonal=1)
        leaked = w.double().abs()[:, upper]
        if leaked.numel() and float(leaked.max()) > 1e-6:
            b, i, j = torch.nonzero(w.double().abs() * upper > 1e-6)[0].tolist()
            failures.append(Failure(
                "causality: no weight on future positions", case["describe"],
                f"position {i} gives weight {float(w[b, i, j]):.4g} to the later position {j} (batch {b}).",
                "positions after t receive attention: is the mask applied before the softmax, with torch.tril?",
                "attention_weights(x)"))
    return failures


def _head_cases(hidden: bool) -> list[dict]:
    sizes = ([(dict(d_model=32, d_k=8, d_v=16, context_len=64), (2, 33, 32), 201),
              (dict(d_model=12, d_k=12, d_v=4, context_len=5), (1, 5, 12), 202),
              (dict(d_model=24, d_k=6, d_v=6), (4, 100, 24), 203)] if hidden else
             [(dict(d_model=16, d_k=8, d_v=8, context_len=12), (2, 12, 16), 11),
              (dict(d_model=16, d_k=4, d_v=6, context_len=20), (3, 7, 16), 12)])
    return [_module_case("head", i, "Head", attention.Head, init, shape, seed,
                         methods=("forward", "attention_weights"), causal=True, shortcuts=ATTENTION_SHORTCUTS)
            for i, (init, shape, seed) in enumerate(sizes)]


def _head_compare(case, outputs):
    return _compare_module(case, outputs, attention.Head, "Head", 1e-5, 1e-4,
                           "compare each step with the formula softmax(mask(q k^T / sqrt(d_k))) v.",
                           _head_variants, causal=True, extra=_head_extra)


# ============================================================================================== 04 multi-head
def _mha_cases(hidden: bool) -> list[dict]:
    sizes = ([(dict(d_model=32, num_heads=8, context_len=40), (3, 40, 32), 301),
              (dict(d_model=24, num_heads=3), (2, 17, 24), 302),
              (dict(d_model=6, num_heads=1, context_len=9), (1, 9, 6), 303)] if hidden else
             [(dict(d_model=16, num_heads=4, context_len=12), (2, 12, 16), 21),
              (dict(d_model=8, num_heads=2, context_len=10), (1, 5, 8), 22)])
    shortcuts = {**ATTENTION_SHORTCUTS, "allowed_reference": ["Head."]}
    return [_module_case("multi_head", i, "MultiHeadAttention", attention.MultiHeadAttention, init, shape, seed,
                         causal=True, shortcuts=shortcuts) for i, (init, shape, seed) in enumerate(sizes)]


def _mha_variants(ref, x, method):
    heads = torch.cat([h(x) for h in ref.heads], dim=-1)
    return [
        ("the output projection is missing: apply self.proj to the concatenated heads.", heads),
        ("the projection's bias is missing: proj is nn.Linear(d_model, d_model) with its bias.",
         heads @ ref.proj.weight.T),
        ("the heads are summed instead of concatenated along the last axis.",
         ref.proj(sum(h(x) for h in ref.heads).repeat(1, 1, len(ref.heads)))),
    ]


def _mha_compare(case, outputs):
    return _compare_module(case, outputs, attention.MultiHeadAttention, "MultiHeadAttention", 1e-5, 1e-4,
                           "concatenate the heads' outputs along the last axis (dim=-1) in the order of self.heads, "
                           "then apply self.proj.", _mha_variants, causal=True)


# ============================================================================================== 05 feed-forward
def _ffn_cases(hidden: bool) -> list[dict]:
    sizes = ([(dict(d_model=32, d_ff=128), (3, 7, 32), 401), (dict(d_model=8, d_ff=8), (1, 1, 8), 402),
              (dict(d_model=20), (2, 11, 20), 403)] if hidden else
             [(dict(d_model=16, d_ff=64), (2, 5, 16), 31), (dict(d_model=8, d_ff=24), (4, 3, 8), 32)])
    return [_module_case("feed_forward", i, "FeedForward", feedforward.FeedForward, init, shape, seed)
            for i, (init, shape, seed) in enumerate(sizes)]


def _ffn_variants(ref, x, method):
    lin1, lin2 = ref.ffn[0], ref.ffn[2]
    return [
        ("ReLU is used where the exercise asks for GELU (nn.GELU()).", lin2(F.relu(lin1(x)))),
        ("GELU with the tanh approximation: the exercise uses the exact nn.GELU() (approximate='none').",
         lin2(F.gelu(lin1(x), approximate="tanh"))),
        ("the activation is missing between the two linear layers.", lin2(lin1(x))),
        ("a residual connection is added inside FeedForward: return ffn(x) only (the decoder layer adds x).",
         x + ref(x)),
    ]


def _ffn_compare(case, outputs):
    return _compare_module(case, outputs, feedforward.FeedForward, "FeedForward", 1e-5, 1e-4,
                           "self.ffn must be nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), "
                           "nn.Linear(d_ff, d_model)).", _ffn_variants)


# ============================================================================================== 06 decoder layer
LAYER_PREREQS = ["MultiHeadAttention.", "Head.", "FeedForward."]


def _layer_cases(hidden: bool) -> list[dict]:
    sizes = ([(dict(d_model=32, num_heads=4, d_ff=64, context_len=24), (2, 24, 32), 501),
              (dict(d_model=12, num_heads=3, d_ff=16, context_len=7), (3, 5, 12), 502)] if hidden else
             [(dict(d_model=16, num_heads=2, d_ff=32, context_len=10), (2, 10, 16), 41),
              (dict(d_model=8, num_heads=4, d_ff=8, context_len=12), (1, 6, 8), 42)])
    shortcuts = {**ATTENTION_SHORTCUTS, "allowed_reference": LAYER_PREREQS}
    return [_module_case("decoder_layer", i, "TransformerDecoderLayer", decoder.TransformerDecoderLayer, init, shape,
                         seed, causal=True, shortcuts=shortcuts) for i, (init, shape, seed) in enumerate(sizes)]


def _layer_variants(ref, x, method):
    a, f, n1, n2 = ref.attn, ref.ffn, ref.norm1, ref.norm2
    h = n1(x + a(x))
    post = n2(h + f(h))
    y1 = x + a(n1(x))
    swapped_1 = x + a(n2(x))
    return [
        ("post-norm instead of pre-norm: normalise *before* each sub-layer, x = x + attn(norm1(x)).", post),
        ("the residual connection around attention is missing: x = x + attn(norm1(x)).", a(n1(x)) + f(n2(a(n1(x))))),
        ("the residual connection around the feed-forward is missing: x = x + ffn(norm2(x)).", f(n2(y1))),
        ("norm1 and norm2 are swapped: norm1 goes before attention, norm2 before the feed-forward.",
         swapped_1 + f(n1(swapped_1))),
        ("the feed-forward reads the layer input instead of the attention output: x = x + attn(norm1(x)), then "
         "x = x + ffn(norm2(x)) on the updated x.", y1 + f(n2(x))),
        ("no layer norm at all.", (x + a(x)) + f(x + a(x))),
    ]


def _layer_compare(case, outputs):
    return _compare_module(case, outputs, decoder.TransformerDecoderLayer, "TransformerDecoderLayer", 1e-5, 1e-4,
                           "pre-norm: x = x + attn(norm1(x)); then x = x + ffn(norm2(x)).", _layer_variants,
                           causal=True)


# ============================================================================================== 07 decoder + GPT
DECODER_PREREQS = [*LAYER_PREREQS, "TransformerDecoderLayer."]
GPT_PREREQS = [*DECODER_PREREQS, "TransformerDecoder.", "PositionalEncoding.", "sinusoidal_table"]
GPT_PREREQ_NAMES = {"ReferenceDecoder": "gptedu.char.decoder.TransformerDecoder",
                    "PositionalEncoding": "gptedu.char.positional.PositionalEncoding"}


def _decoder_cases(hidden: bool) -> list[dict]:
    sizes = ([(dict(d_model=16, num_heads=4, d_ff=24, context_len=12, num_layers=3), (2, 12, 16), 601),
              (dict(d_model=8, num_heads=2, d_ff=16, context_len=9, num_layers=1), (3, 4, 8), 602)] if hidden else
             [(dict(d_model=16, num_heads=2, d_ff=32, context_len=10, num_layers=2), (2, 10, 16), 51)])
    shortcuts = {**ATTENTION_SHORTCUTS, "allowed_reference": DECODER_PREREQS}
    return [_module_case("decoder", i, "TransformerDecoder", decoder.TransformerDecoder, init, shape, seed,
                         causal=True, shortcuts=shortcuts) for i, (init, shape, seed) in enumerate(sizes)]


def _decoder_variants(ref, x, method):
    y = x
    for layer in ref.layers:
        y = layer(y)
    only_first = ref.norm(ref.layers[0](x))
    return [
        ("the final LayerNorm (self.norm) is missing after the last layer.", y),
        ("only the first layer is applied: loop over every layer in self.layers, feeding each the previous output.",
         only_first),
    ]


def _decoder_compare(case, outputs):
    return _compare_module(case, outputs, decoder.TransformerDecoder, "TransformerDecoder", 1e-5, 1e-4,
                           "apply every layer in order, then the final norm: for layer in self.layers: x = layer(x); "
                           "return self.norm(x).", _decoder_variants, causal=True)


def _gpt_cases(hidden: bool) -> list[dict]:
    sizes = ([(dict(vocab_size=23, d_model=16, num_heads=4, d_ff=32, context_len=16, num_layers=2), (3, 16), 701),
              (dict(vocab_size=65, d_model=24, num_heads=2, d_ff=24, context_len=30, num_layers=1), (2, 9), 702)]
             if hidden else
             [(dict(vocab_size=11, d_model=16, num_heads=2, d_ff=32, context_len=12, num_layers=2), (2, 12), 61)])
    shortcuts = {**ATTENTION_SHORTCUTS, "allowed_reference": GPT_PREREQS}
    return [_module_case("gpt_forward", i, "GPTModel", model.GPTModel, init, shape, seed, causal=True,
                         vocab=init["vocab_size"], shortcuts=shortcuts) for i, (init, shape, seed) in enumerate(sizes)]


def _gpt_variants(ref, x, method):
    emb = ref.embedding(x)
    return [
        ("the positional encoding is not added: x = self.pos_encoding(self.embedding(x)).",
         ref.fc_out(ref.decoder(emb))),
        ("the embeddings are scaled by sqrt(d_model); this model adds the positional encoding to the plain "
         "embeddings.", ref.fc_out(ref.decoder(ref.pos_encoding(emb * math.sqrt(emb.size(-1)))))),
        ("forward returns probabilities (softmax): return the raw logits; the loss and the sampler apply softmax.",
         torch.softmax(ref(x), dim=-1)),
        ("the decoder is skipped.", ref.fc_out(ref.pos_encoding(emb))),
    ]


def _gpt_compare(case, outputs):
    return _compare_module(case, outputs, model.GPTModel, "GPTModel", 2e-5, 1e-4,
                           "embedding -> positional encoding -> decoder -> fc_out, returning logits "
                           "(batch, seq, vocab_size).", _gpt_variants, causal=True)


GEN_TEMPERATURE_GREEDY = 1e-4  # the homework's generate() divides by the temperature, so "greedy" is T -> 0


def _generate_cases(hidden: bool) -> list[dict]:
    settings = ([(dict(vocab_size=17, d_model=16, num_heads=2, d_ff=32, context_len=10, num_layers=2), 801, 2.0),
                 (dict(vocab_size=9, d_model=8, num_heads=4, d_ff=16, context_len=5, num_layers=1), 802, 0.5)]
                if hidden else
                [(dict(vocab_size=13, d_model=16, num_heads=2, d_ff=32, context_len=8, num_layers=2), 71, 0.6)])
    cases = []
    for i, (init, seed, temp) in enumerate(settings):
        torch.manual_seed(seed)
        ref = model.GPTModel(**init)
        params = _params_of(ref, seed)
        params["fc_out.weight"] = params["fc_out.weight"] * 6.0  # spread the logits: clear argmax, peaked sampling
        g = _gen(seed)
        vocab, ctx = init["vocab_size"], init["context_len"]
        sample_prompt = torch.randint(vocab, (1, 2), generator=g).repeat(4000, 1)
        runs = [
            {"name": "greedy", "prompt": torch.randint(vocab, (2, 3), generator=g), "max_new_tokens": 6,
             "temperature": GEN_TEMPERATURE_GREEDY, "seed": seed},
            {"name": "crop", "prompt": torch.randint(vocab, (1, ctx + 3), generator=g), "max_new_tokens": 5,
             "temperature": GEN_TEMPERATURE_GREEDY, "seed": seed + 1},
            {"name": "shape", "prompt": torch.randint(vocab, (3, 4), generator=g), "max_new_tokens": 5,
             "temperature": 1.0, "seed": seed + 2},
            {"name": "sample", "prompt": sample_prompt, "max_new_tokens": 1, "temperature": temp, "seed": seed + 3},
        ]
        cases.append({
            "spec": "gpt_generate", "id": f"gpt_generate/{i}", "kind": "generate", "label": "GPTModel",
            "init": dict(init), "params": params, "runs": runs, "seed": seed,
            "shortcuts": {**ATTENTION_SHORTCUTS, "allowed_reference": GPT_PREREQS},
            "describe": f"GPTModel({_kw(init)}).generate, seed {seed}",
        })
    return cases


def _generate_compare(case, outputs):
    failures = _status_failures("GPTModel.generate", case, outputs)
    if failures:
        return failures
    ref = _build_ref(model.GPTModel, case["init"], case["params"])
    vocab, ctx = case["init"]["vocab_size"], case["init"]["context_len"]
    runs = {r["name"]: r for r in case["runs"]}
    for name in ("shape", "greedy", "crop"):
        run = runs[name]
        prompt, found = run["prompt"], outputs.get(f"tokens:{name}")
        desc = (f"{case['describe']}: start_tokens of shape {_shape(prompt)}, max_new_tokens={run['max_new_tokens']},"
                f" temperature={run['temperature']}")
        expected_shape = (prompt.size(0), prompt.size(1) + run["max_new_tokens"])
        if not isinstance(found, torch.Tensor) or tuple(found.shape) != expected_shape:
            got = tuple(found.shape) if isinstance(found, torch.Tensor) else type(found).__name__
            failures.append(Failure("generate returns the prompt followed by the new tokens", desc,
                                    f"expected shape {expected_shape}, found {got}.",
                                    "append each new token with torch.cat([idx, next_token], dim=1) and return the "
                                    "whole sequence (prompt included).", f"tokens:{name}"))
            continue
        if not torch.equal(found[:, : prompt.size(1)].long(), prompt):
            failures.append(Failure("the prompt is kept unchanged at the start", desc,
                                    "the first tokens of the result differ from start_tokens.",
                                    "return torch.cat of the prompt and the generated tokens.", f"tokens:{name}"))
            continue
        if found.min() < 0 or found.max() >= vocab:
            failures.append(Failure("tokens are valid ids", desc, f"found ids outside 0..{vocab - 1}.",
                                    "sample indices of the vocabulary from the last position's logits.",
                                    f"tokens:{name}"))
            continue
        if name in ("greedy", "crop"):
            expected = ref.generate(prompt, run["max_new_tokens"], temperature=0.0)
            if not torch.equal(found.long(), expected):
                pos = torch.nonzero(found.long() != expected)[0].tolist()
                logits_here = ref(expected[:, max(0, pos[1] - ctx): pos[1]][pos[0]: pos[0] + 1])[0, -1]
                cause = ("with temperature -> 0 the sampled token must be the argmax of the last position's logits: "
                         "divide the logits by the temperature before the softmax, and use the logits of the LAST "
                         "position, logits[:, -1, :].")
                if name == "crop":
                    cause = (f"the prompt is longer than context_len={ctx}: feed only the last context_len tokens to "
                             f"the model at each step, idx[:, -context_len:].")
                failures.append(Failure(
                    "temperature -> 0 gives the greedy (argmax) continuation" if name == "greedy" else
                    "the context is cropped to the last context_len tokens", desc,
                    f"token {pos[1]} of row {pos[0]}: expected {int(expected[tuple(pos)])} (the argmax, logit "
                    f"{float(logits_here.max()):.3f}), found {int(found[tuple(pos)])}.", cause, f"tokens:{name}"))
    run = runs["sample"]
    found = outputs.get("tokens:sample")
    prompt = run["prompt"]
    if isinstance(found, torch.Tensor) and found.shape == (prompt.size(0), prompt.size(1) + 1):
        with torch.no_grad():
            logits = ref(prompt[:1])[0, -1].double()
        expected_p = torch.softmax(logits / run["temperature"], -1)
        counts = torch.bincount(found[:, -1].long().clamp(0, vocab - 1), minlength=vocab).double()
        empirical = counts / counts.sum()
        tv = 0.5 * float((empirical - expected_p).abs().sum())
        if tv > 0.06:
            at_t1 = torch.softmax(logits, -1)
            if 0.5 * float((empirical - at_t1).abs().sum()) < 0.04:
                cause = ("the samples follow temperature 1: divide the logits by the temperature BEFORE the softmax "
                         "(dividing probabilities after the softmax changes nothing once they are renormalised).")
            elif float(empirical.max()) > 0.99:
                cause = "every row picked the same token: sample with torch.multinomial(probs, 1) instead of argmax."
            else:
                cause = ("sample from softmax(logits[:, -1, :] / temperature) with torch.multinomial(probs, "
                         "num_samples=1).")
            top = torch.argsort(expected_p, descending=True)[:3].tolist()
            failures.append(Failure(
                "sampled tokens follow softmax(logits / temperature)",
                f"{case['describe']}: 4000 identical prompts, one new token each, temperature={run['temperature']}",
                f"total-variation distance {tv:.3f} between your samples' frequencies and the expected distribution "
                f"(allowed 0.06); e.g. token {top[0]}: expected {float(expected_p[top[0]]):.3f}, found "
                f"{float(empirical[top[0]]):.3f}.", cause, "tokens:sample"))
    return failures


# ============================================================================================== 01 data
SAMPLE_TEXT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
               "First Citizen:\nYou are all resolved rather to die than to famish?\n")


def _tokenizer_cases(hidden: bool) -> list[dict]:
    texts = ([(SAMPLE_TEXT, "You are all resolved?\n", "ZQ#"), ("abcabc xyz", "zyx cab", "é")] if hidden else
             [("hello world!", "hello", "hi?")])
    cases = []
    for i, (corpus, text, unknown) in enumerate(texts):
        chars = sorted(set(corpus))
        ids = [chars.index(c) for c in reversed(text)]
        cases.append({
            "spec": "tokenizer", "id": f"tokenizer/{i}", "kind": "calls", "label": "CharTokenizer",
            "construct": {"args": [chars]}, "attributes": ["vocab_size", "s2i", "i2s"],
            "calls": [
                {"name": "encode", "method": "encode", "args": [text], "describe": repr(text)},
                {"name": "decode", "method": "decode", "args": [ids], "describe": str(ids)},
                {"name": "unknown", "method": "encode", "args": [text[:2] + unknown], "expect_error": True,
                 "describe": repr(text[:2] + unknown)},
            ],
            "chars": chars, "unknown": unknown,
            "describe": f"CharTokenizer(sorted(set({corpus[:20]!r}{'...' if len(corpus) > 20 else ''})))",
        })
    return cases


def _tokenizer_compare(case, outputs):
    failures = _status_failures("CharTokenizer", case, outputs)
    if failures:
        return failures
    ref = CharTokenizer(case["chars"])
    desc = case["describe"]
    vs = outputs.get("attr:vocab_size")
    if not isinstance(vs, torch.Tensor) or int(vs) != ref.vocab_size:
        failures.append(Failure("vocab_size", desc, f"expected {ref.vocab_size}, found {vs}.",
                                "vocab_size is the number of distinct characters, len(chars) (a number, e.g. a "
                                "@property, not a method)."))
    for attr, mapping in (("s2i", ref.s2i), ("i2s", ref.i2s)):
        keys, values = outputs.get(f"attr:{attr}.keys"), outputs.get(f"attr:{attr}.values")
        exp_keys = [repr(k) for k in sorted(mapping, key=repr)]
        exp_values = [repr(mapping[k]) for k in sorted(mapping, key=repr)]
        if keys != exp_keys or values != exp_values:
            failures.append(Failure(f"`{attr}` maps {'characters to ids' if attr == 's2i' else 'ids to characters'}",
                                    desc, f"expected a dict like {dict(list(mapping.items())[:3])} ..., found "
                                          f"keys {str(keys)[:60]}.",
                                    "s2i = {ch: i for i, ch in enumerate(chars)}; i2s is its inverse."))
    calls = {c["name"]: c for c in case["calls"]}
    enc = tensor_failure("encode", f"{desc}.encode({calls['encode']['describe']})", "encode(text)",
                         torch.tensor(ref.encode(calls["encode"]["args"][0])), outputs.get("result:encode"), 0.0,
                         0.0, "encode returns a list of ids, one per character, s2i[ch].")
    if enc:
        failures.append(enc)
    expected_text = ref.decode(calls["decode"]["args"][0])
    if outputs.get("result:decode") != expected_text:
        failures.append(Failure("decode", f"{desc}.decode({calls['decode']['describe']})",
                                f"expected {expected_text!r}, found {outputs.get('result:decode')!r}.",
                                "decode joins i2s[i] of each id into one string: ''.join(...)."))
    raised = outputs.get("raised:unknown", "")
    unknown = case["unknown"]
    where = f"{desc}.encode({calls['unknown']['describe']})"
    if not raised:
        failures.append(Failure("unknown characters raise a clear error", where,
                                "no exception was raised.",
                                "raise ValueError naming the unknown character(s) instead of skipping them."))
    elif not raised.startswith(("ValueError", "KeyError")) or not any(ch in raised for ch in unknown):
        failures.append(Failure("unknown characters raise a clear error", where,
                                f"the error was: {raised[:120]}",
                                f"raise ValueError with a message that names the character(s), e.g. {unknown[0]!r}."))
    return failures


def _dataset_cases(hidden: bool) -> list[dict]:
    shapes = [(7, 5, 301), (1, 3, 302), (20, 1, 303)] if hidden else [(4, 6, 81)]
    cases = []
    for i, (n, seq, seed) in enumerate(shapes):
        g = _gen(seed)
        src = torch.randint(65, (n, seq), generator=g).tolist()
        tgt = torch.randint(65, (n, seq), generator=g).tolist()
        picks = sorted({0, n - 1, n // 2})
        calls = [{"name": "len", "method": "__len__", "args": [], "describe": ""}]
        calls += [{"name": f"item{j}", "method": "__getitem__", "args": [j], "describe": str(j)} for j in picks]
        cases.append({
            "spec": "text_dataset", "id": f"text_dataset/{i}", "kind": "calls", "label": "TextDataset",
            "construct": {"args": [src, tgt]}, "calls": calls, "src": src, "tgt": tgt, "picks": picks,
            "describe": f"TextDataset of {n} pairs of length {seq}",
        })
    return cases


def _dataset_compare(case, outputs):
    failures = _status_failures("TextDataset", case, outputs)
    if failures:
        return failures
    ref = TextDataset(case["src"], case["tgt"])
    desc = case["describe"]
    n = outputs.get("result:len")
    if not isinstance(n, torch.Tensor) or int(n) != len(ref):
        failures.append(Failure("len(dataset)", desc, f"expected {len(ref)}, found {n}.",
                                "__len__ returns the number of (src, tgt) pairs, len(self.src_seqs)."))
    for j in case["picks"]:
        src, tgt = ref[j]
        for part, expected in ((0, src), (1, tgt)):
            found = outputs.get(f"result:item{j}.{part}")
            name = f"dataset[{j}][{part}] ({'src' if part == 0 else 'tgt'})"
            pytype = outputs.get(f"result:item{j}.{part}.pytype")
            if pytype:  # (check added by the mistakes suite, tests/mistakes/data/returns_python_lists.py)
                failures.append(Failure("items are torch.long tensors", desc, f"{name} is a Python {pytype}.",
                                        "return torch.tensor(seq, dtype=torch.long): a DataLoader stacks tensors "
                                        "into (batch, seq), but turns a batch of lists into seq tensors of shape "
                                        "(batch,)."))
                continue
            if isinstance(found, torch.Tensor) and found.dtype != torch.long:
                failures.append(Failure("items are torch.long tensors", desc, f"{name} has dtype {found.dtype}.",
                                        "nn.Embedding and cross_entropy need integer ids: torch.tensor(seq, "
                                        "dtype=torch.long)."))
                continue
            fail = tensor_failure("items are the (src, tgt) pair at that index", desc, name, expected, found, 0, 0,
                                  "return (src_seqs[idx], tgt_seqs[idx]) as tensors, in that order.")
            if fail:
                failures.append(fail)
    return failures


def _get_batch_cases(hidden: bool) -> list[dict]:
    shapes = [(500, 16, 8, 401), (40, 3, 39, 402)] if hidden else [(200, 4, 10, 91)]
    cases = []
    for i, (n, batch, seq, seed) in enumerate(shapes):
        data = (torch.arange(n) * 7919) % n  # a permutation: every value says where its window starts
        if math.gcd(7919, n) != 1:
            raise RuntimeError("grading case needs n coprime with 7919")
        calls = [{"name": "first", "args": [data, batch, seq], "generator_seed": seed,
                  "describe": f"data of length {n}, batch_size={batch}, seq_len={seq}, generator seed {seed}"},
                 {"name": "again", "args": [data, batch, seq], "generator_seed": seed, "seed": seed + 1,
                  "describe": "same generator seed again"},
                 {"name": "many", "args": [data, 256, seq], "generator_seed": seed + 2, "describe": "256 windows"}]
        cases.append({"spec": "get_batch", "id": f"get_batch/{i}", "kind": "calls", "label": "get_batch",
                      "calls": calls, "data": data, "batch": batch, "seq": seq,
                      "describe": f"get_batch(data of length {n}, batch_size={batch}, seq_len={seq}, generator)"})
    return cases


def _get_batch_compare(case, outputs):
    failures = _status_failures("get_batch", case, outputs)
    if failures:
        if "equal size" in failures[0].message:  # (cause added by the mistakes suite: data/start_overruns_end)
            failures[0].cause = ("a window ran past the end of the data, so its target is one token short: draw "
                                 "the starts from torch.randint(len(data) - seq_len, ...).")
        return failures
    data, batch, seq = case["data"], case["batch"], case["seq"]
    n = len(data)
    desc = case["describe"]
    position = torch.empty(n, dtype=torch.long)
    position[data] = torch.arange(n)
    for call, rows in (("first", batch), ("many", 256)):
        x, y = outputs.get(f"result:{call}.0"), outputs.get(f"result:{call}.1")
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
            failures.append(Failure("returns (x, y)", desc, "expected a pair of tensors (x, y).",
                                    "return x, y — both of shape (batch_size, seq_len)."))
            return failures
        for name, t in (("x", x), ("y", y)):
            if tuple(t.shape) != (rows, seq):
                failures.append(Failure("shapes", desc, f"{name} has shape {tuple(t.shape)}, expected {(rows, seq)}.",
                                        "stack batch_size windows of seq_len tokens each."))
                return failures
        if x.dtype != torch.long or y.dtype != torch.long:
            failures.append(Failure("dtype", desc, f"x has dtype {x.dtype}, y has {y.dtype}; expected torch.long.",
                                    "token ids must be long for nn.Embedding and cross_entropy."))
        starts = position[x[:, 0].long().clamp(0, n - 1)]
        offsets = torch.arange(seq)
        if int(starts.max()) + seq >= n + 0 and bool((starts + seq >= n).any()):
            failures.append(Failure("windows stay inside the data", desc,
                                    f"a window starts at {int(starts.max())}; with seq_len={seq} its target would run "
                                    f"past the end (data has {n} tokens).",
                                    "draw starts from torch.randint(len(data) - seq_len, ...)."))
            return failures
        exp_x = data[starts[:, None] + offsets]
        exp_y = data[starts[:, None] + offsets + 1]
        fx = tensor_failure("each row of x is a contiguous slice data[s : s+seq_len]", desc, "x", exp_x, x.long(), 0, 0,
                            "take consecutive tokens: data[s : s + seq_len].")
        if fx:
            failures.append(fx)
            return failures
        fy = tensor_failure("y is x shifted by one: y = data[s+1 : s+seq_len+1]", desc, "y", exp_y, y.long(), 0, 0,
                            "the target is the NEXT token at every position: y = data[s + 1 : s + seq_len + 1]."
                            if not torch.equal(y.long(), x.long()) else
                            "targets are not shifted: y equals x, so the model would learn to copy its input.")
        if fy:
            failures.append(fy)
            return failures
    if "result:again.0" in outputs and not torch.equal(outputs["result:again.0"], outputs["result:first.0"]):
        failures.append(Failure("uses the generator it is given", desc,
                                "two calls with generators seeded alike gave different batches.",
                                "pass generator=generator to torch.randint so batches are reproducible."))
    many = outputs.get("result:many.0")
    possible = n - seq
    if isinstance(many, torch.Tensor) and possible > 1 and \
            len(set(position[many[:, 0].long()].tolist())) < min(20, possible // 2):
        failures.append(Failure("windows start at random positions", desc,
                                f"256 windows used fewer than {min(20, possible // 2)} distinct start positions.",
                                "draw the starts at random: torch.randint(len(data) - seq_len, (batch_size,), ...)."))
    return failures


# ============================================================================================== 08 training loop
def _loop_cases(mode: str, hidden: bool) -> list[dict]:
    settings = [(13, 6, 5, 3, 0.2, 901), (7, 4, 3, 8, 0.05, 902)] if hidden else [(11, 8, 4, 5, 0.1, 95)]
    cases = []
    for i, (vocab, d, batches, seq, lr, seed) in enumerate(settings):
        torch.manual_seed(seed)
        tiny = TinyLM(vocab, d)
        params = {k: v.detach().clone() for k, v in tiny.named_parameters()}
        g = _gen(seed)
        data = [(torch.randint(vocab, (4, seq), generator=g), torch.randint(vocab, (4, seq), generator=g))
                for _ in range(batches)]
        cases.append({"spec": mode, "id": f"{mode}/{i}", "kind": "loop", "mode": mode, "label": mode,
                      "init": {"vocab_size": vocab, "d_model": d}, "params": params, "batches": data, "lr": lr,
                      "seed": seed,
                      "describe": f"{mode}() on a tiny model, {batches} batches of shape (4, {seq}), "
                                  + (f"SGD(lr={lr:g}, momentum=0.9)" if mode == "train" else "CrossEntropyLoss")})
    return cases


def _loop_reference(case, variant: str = "") -> tuple[float, dict]:
    tiny = TinyLM(**case["init"])
    tiny.load_state_dict(case["params"])
    criterion = nn.CrossEntropyLoss()
    batches = [(s.clone(), t.clone()) for s, t in case["batches"]]
    if case["mode"] == "evaluate":
        return loop.evaluate(tiny, batches, criterion, "cpu"), {k: v.detach() for k, v in tiny.named_parameters()}
    opt = torch.optim.SGD(tiny.parameters(), lr=case["lr"], momentum=0.9)
    if not variant:
        loss = loop.train(tiny, batches, criterion, opt, "cpu")
        return loss, {k: v.detach() for k, v in tiny.named_parameters()}
    losses = []
    for src, tgt in batches:
        if variant != "no_zero_grad":
            opt.zero_grad()
        logits = tiny(src)
        target = src if variant == "src_targets" else tgt  # "src_targets": a mistake of the mistakes suite
        loss = criterion(logits.reshape(-1, logits.size(-1)), target.reshape(-1))
        loss.backward()
        if variant != "no_step":
            opt.step()
        losses.append(loss.item())
    return sum(losses) / len(losses), {k: v.detach() for k, v in tiny.named_parameters()}


def _loop_compare(case, outputs):
    title = case["mode"]
    failures = _status_failures(title, case, outputs)
    if failures:
        return failures
    desc = case["describe"]
    expected_loss, expected_params = _loop_reference(case)
    found = outputs.get("loss")
    training = outputs.get("calls_training", torch.tensor([], dtype=torch.bool))
    grad = outputs.get("calls_grad", torch.tensor([], dtype=torch.bool))
    n_batches = len(case["batches"])
    if len(training) != n_batches:
        failures.append(Failure("one forward pass per batch", desc,
                                f"the model was called {len(training)} time(s) for {n_batches} batches.",
                                "loop over every (src, tgt) batch of the dataloader once and call model(src)."))
        return failures
    if case["mode"] == "train":
        if not bool(training.all()):
            failures.append(Failure("the model is in training mode", desc,
                                    "the model was in eval mode during the forward pass.",
                                    "call model.train() at the start of train()."))
        if not bool(grad.all()):
            failures.append(Failure("gradients are enabled in train()", desc, "forward ran under torch.no_grad().",
                                    "only evaluate() uses torch.no_grad()."))
    else:
        if bool(training.any()):
            failures.append(Failure("the model is in eval mode", desc, "the model was in training mode.",
                                    "call model.eval() at the start of evaluate() (dropout must be off)."))
        if bool(grad.any()):
            failures.append(Failure("no gradients in evaluate()", desc, "forward ran with autograd on.",
                                    "wrap the loop in torch.no_grad() (or decorate evaluate with @torch.no_grad())."))
        if any(bool(outputs.get(f"hasgrad:{k}", False)) for k in expected_params):
            failures.append(Failure("evaluate() does not backpropagate", desc, "parameters received gradients.",
                                    "evaluate only computes the loss: no loss.backward(), no optimizer."))
    if found is None or abs(float(found) - expected_loss) > 1e-5:
        last = _last_batch_loss(case)
        cause = "return the mean of the per-batch losses: total / number of batches (use loss.item())."
        if found is not None and abs(float(found) - expected_loss * n_batches) < 1e-4:
            cause = "the loss is summed over batches: divide by the number of batches to return the mean."
        elif found is not None and abs(float(found) - last) < 1e-5:
            cause = "only the last batch's loss is returned: accumulate every batch's loss and return the mean."
        failures.append(Failure("returns the mean loss over the batches", desc,
                                f"expected {expected_loss:.6f}, found {float(found) if found is not None else None}.",
                                cause, "loss"))
    for name, expected in expected_params.items():
        fail = tensor_failure("parameters after the epoch match the reference" if case["mode"] == "train" else
                              "evaluate() leaves the parameters unchanged", desc, name, expected,
                              outputs.get(f"param:{name}"), 1e-5, 1e-4, "")
        if fail:
            if case["mode"] == "train":
                found_p = outputs.get(f"param:{name}")
                cause = "per batch: optimizer.zero_grad(); loss = criterion(...); loss.backward(); optimizer.step()."
                for variant, text in (("no_step", "optimizer.step() is never called: the weights did not move."),
                                      ("no_zero_grad", "optimizer.zero_grad() is missing: gradients accumulate "
                                                       "across batches."),
                                      ("src_targets", "the loss compares the logits with the inputs (src): the "
                                                      "targets are tgt, the next token at every position.")):
                    _, vparams = _loop_reference(case, variant)
                    if isinstance(found_p, torch.Tensor) and found_p.shape == vparams[name].shape and \
                            torch.allclose(found_p, vparams[name], atol=1e-5):
                        cause = text
                        break
                fail.cause = cause
            else:
                fail.cause = "evaluate() must not update the model: no backward(), no optimizer step."
            failures.append(fail)
            break
    return failures


def _last_batch_loss(case) -> float:
    tiny = TinyLM(**case["init"])
    tiny.load_state_dict(case["params"])
    if case["mode"] == "evaluate":
        src, tgt = case["batches"][-1]
        with torch.no_grad():
            logits = tiny(src)
        return float(F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt.reshape(-1)))
    opt = torch.optim.SGD(tiny.parameters(), lr=case["lr"], momentum=0.9)
    loss_value = 0.0
    for src, tgt in case["batches"]:
        opt.zero_grad()
        logits = tiny(src)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt.reshape(-1))
        loss.backward()
        opt.step()
        loss_value = loss.item()
    return loss_value


# ============================================================================================== 09 sampling
def _topk_cases(hidden: bool) -> list[dict]:
    settings = [((3, 50), 7, 1001), ((2, 5), 5, 1002), ((1, 9), 1, 1003), ((4, 6), 10, 1004)] if hidden else [
        ((2, 10), 3, 111), ((1, 8), 1, 112)]
    cases = []
    for i, (shape, k, seed) in enumerate(settings):
        logits = torch.randn(shape, generator=_gen(seed)) * 3
        cases.append({"spec": "top_k_filter", "id": f"top_k_filter/{i}", "kind": "calls", "label": "top_k_filter",
                      "calls": [{"name": "out", "args": [logits, k], "describe": f"logits {_shape(logits)}, k={k}"}],
                      "logits": logits, "k": k, "describe": f"top_k_filter(logits of shape {_shape(logits)}, k={k})"})
    return cases


def _topk_compare(case, outputs):
    failures = _status_failures("top_k_filter", case, outputs)
    if failures:
        return failures
    logits, k = case["logits"], case["k"]
    expected = filter_logits(logits, top_k=k)
    found = outputs.get("result:out")
    if isinstance(found, torch.Tensor) and found.shape == expected.shape:
        kept_exp, kept_found = torch.isfinite(expected), torch.isfinite(found)
        if not torch.equal(kept_exp, kept_found):
            n_exp, n_found = int(kept_exp[0].sum()), int(kept_found[0].sum())
            if bool((found == 0).any()) and not bool((expected == 0).any()):
                cause = "the dropped logits are set to 0; set them to -inf so their probability becomes exactly 0."
            elif n_found == n_exp - 1:
                cause = "one logit too few is kept: keep every logit >= the k-th largest (compare with <, not <=)."
            elif k >= logits.size(-1):
                cause = "k >= vocabulary size must keep every logit (use min(k, logits.size(-1)))."
            else:
                cause = "keep the k largest logits of EACH row (torch.topk(logits, k, dim=-1)), -inf elsewhere."
            failures.append(Failure("keeps exactly the k largest logits of each row", case["describe"],
                                    f"row 0 keeps {n_found} finite logits, expected {n_exp}.", cause, "result"))
            return failures
        found = torch.where(kept_found, found, torch.zeros_like(found))
        expected = torch.where(kept_exp, expected, torch.zeros_like(expected))
    fail = tensor_failure("the kept logits are unchanged, the others are -inf", case["describe"], "result",
                          expected, found, 1e-6, 0.0, "return a tensor of the same shape: the k largest logits "
                          "unchanged, every other entry -inf.")
    return [fail] if fail else []


def _sample_cases(hidden: bool) -> list[dict]:
    settings = [(12, 0.5, 4, 1101), (30, 1.5, None, 1102), (5, 1.0, 2, 1103)] if hidden else [
        (10, 0.7, 3, 121)]
    cases = []
    for i, (vocab, temp, k, seed) in enumerate(settings):
        g = _gen(seed)
        greedy_logits = torch.randn(6, vocab, generator=g) * 2
        row = torch.randn(1, vocab, generator=g) * 1.5
        many = row.repeat(4000, 1)
        calls = [
            {"name": "greedy", "args": [greedy_logits], "kwargs": {"temperature": 0.0}, "generator_seed": seed,
             "describe": f"logits {_shape(greedy_logits)}, temperature=0"},
            {"name": "temp", "args": [many], "kwargs": {"temperature": temp}, "generator_seed": seed + 1,
             "describe": f"4000 identical rows, temperature={temp}"},
            {"name": "temp_again", "args": [many], "kwargs": {"temperature": temp}, "generator_seed": seed + 1,
             "seed": seed + 5, "describe": "the same generator seed again"},
        ]
        if k is not None:
            calls.append({"name": "topk", "args": [many], "kwargs": {"temperature": temp, "top_k": k},
                          "generator_seed": seed + 2,
                          "describe": f"4000 identical rows, temperature={temp}, top_k={k}"})
        cases.append({"spec": "sample_next_token", "id": f"sample_next_token/{i}", "kind": "calls",
                      "label": "sample_next_token", "calls": calls, "stand_ins": ["top_k_filter"],
                      "row": row, "greedy_logits": greedy_logits,
                      "temperature": temp, "top_k": k,
                      "describe": f"sample_next_token on a vocabulary of {vocab}, temperature {temp}, top_k={k}"})
    return cases


def _sample_compare(case, outputs):
    failures = _status_failures("sample_next_token", case, outputs)
    if failures:
        return failures
    desc = case["describe"]
    greedy = outputs.get("result:greedy")
    expected = case["greedy_logits"].argmax(-1, keepdim=True)
    fail = tensor_failure("temperature 0 picks the argmax (greedy)", desc, "sample_next_token(logits, 0)", expected,
                          greedy, 0, 0, "with temperature == 0 return logits.argmax(dim=-1, keepdim=True) "
                                        "(no division by zero, no sampling).")
    if fail:
        failures.append(fail)
    row = case["row"][0].double()
    temp, k = case["temperature"], case["top_k"]
    for call, top_k in (("temp", None), ("topk", k)):
        if call == "topk" and k is None:
            continue
        found = outputs.get(f"result:{call}")
        if not isinstance(found, torch.Tensor) or tuple(found.shape) != (4000, 1):
            got = tuple(found.shape) if isinstance(found, torch.Tensor) else type(found).__name__
            failures.append(Failure("returns one token id per row, shape (batch, 1)", desc,
                                    f"expected shape (4000, 1), found {got}.",
                                    "torch.multinomial(probs, num_samples=1) returns (batch, 1)."))
            continue
        filtered = filter_logits(row[None], top_k=top_k)[0] if top_k else row
        expected_p = torch.softmax(filtered / temp, -1)
        ids = found[:, 0].long()
        if top_k:
            allowed = torch.isfinite(filtered)
            outside = ids[~allowed[ids.clamp(0, len(row) - 1)]]
            if len(outside):
                failures.append(Failure("top-k: only the k most likely tokens are ever sampled", desc,
                                        f"{len(outside)} of 4000 samples are outside the top {top_k} (e.g. token "
                                        f"{int(outside[0])}).",
                                        "set the logits outside the top k to -inf before the softmax."))
                continue
        counts = torch.bincount(ids.clamp(0, len(row) - 1), minlength=len(row)).double()
        empirical = counts / counts.sum()
        tv = 0.5 * float((empirical - expected_p).abs().sum())
        if tv > 0.05:
            at_t1 = torch.softmax(filtered, -1)
            cause = "sample from softmax(logits / temperature) with torch.multinomial(probs, 1, generator=generator)."
            if 0.5 * float((empirical - at_t1).abs().sum()) < 0.04 and temp != 1.0:
                cause = "the temperature has no effect: divide the logits by it BEFORE the softmax."
            elif float(empirical.max()) > 0.99:
                cause = "every row picked the same token: sample with torch.multinomial instead of taking the argmax."
            within = " within the top k" if top_k else ""
            failures.append(Failure(f"samples follow softmax(logits / temperature){within}",
                                    desc, f"total-variation distance {tv:.3f} from the expected distribution "
                                          "(allowed 0.05).", cause, call))
    again, first = outputs.get("result:temp_again"), outputs.get("result:temp")
    if isinstance(again, torch.Tensor) and isinstance(first, torch.Tensor) and not torch.equal(again, first):
        failures.append(Failure("uses the generator it is given", desc,
                                "two calls with generators seeded alike gave different samples.",
                                "pass generator=generator to torch.multinomial."))
    return failures


# ============================================================================================== the registry
def _spec(name, title, target, notebook, visible, hidden, make_cases, compare, prerequisites=None) -> Spec:
    return Spec(name, title, target, notebook, {f"test_{name}_visible": visible, f"test_{name}_hidden": hidden},
                make_cases, compare, _as_prerequisites(prerequisites))


def _as_prerequisites(prerequisites) -> dict[str, str]:
    """Accept a mapping (name in the notebook -> reference class) or a plain list of names."""
    if prerequisites is None:
        return {}
    if isinstance(prerequisites, dict):
        return dict(prerequisites)
    return {name: name for name in prerequisites}


SPECS: dict[str, Spec] = {s.name: s for s in [
    _spec("tokenizer", "CharTokenizer (encode/decode)", "CharTokenizer", "01_data", 3, 2, _tokenizer_cases,
          _tokenizer_compare),
    _spec("text_dataset", "TextDataset", "TextDataset", "01_data", 3, 2, _dataset_cases, _dataset_compare),
    _spec("get_batch", "get_batch (random windows, shifted targets)", "get_batch", "01_data", 3, 2,
          _get_batch_cases, _get_batch_compare),
    _spec("positional_encoding", "PositionalEncoding", "PositionalEncoding", "02_positional_encoding", 5, 5,
          _pe_cases, _pe_compare),
    _spec("head", "Head (masked scaled dot-product attention)", "Head", "03_single_head", 10, 10, _head_cases,
          _head_compare),
    _spec("multi_head", "MultiHeadAttention", "MultiHeadAttention", "04_multi_head", 5, 5, _mha_cases, _mha_compare,
          {"Head": "gptedu.char.attention.Head"}),
    _spec("feed_forward", "FeedForward", "FeedForward", "05_feed_forward", 5, 5, _ffn_cases, _ffn_compare),
    _spec("decoder_layer", "TransformerDecoderLayer (pre-norm)", "TransformerDecoderLayer", "06_decoder_layer", 5, 5,
          _layer_cases, _layer_compare, {"MultiHeadAttention": "gptedu.char.attention.MultiHeadAttention",
                                         "FeedForward": "gptedu.char.feedforward.FeedForward"}),
    _spec("decoder", "TransformerDecoder", "TransformerDecoder", "07_gpt", 5, 5, _decoder_cases, _decoder_compare,
          {"TransformerDecoderLayer": "gptedu.char.decoder.TransformerDecoderLayer"}),
    _spec("gpt_forward", "GPTModel.forward", "GPTModel", "07_gpt", 8, 7, _gpt_cases, _gpt_compare, GPT_PREREQ_NAMES),
    _spec("gpt_generate", "GPTModel.generate", "GPTModel", "07_gpt", 8, 7, _generate_cases, _generate_compare,
          GPT_PREREQ_NAMES),
    _spec("train", "train (one epoch)", "train", "08_training", 5, 5, lambda h: _loop_cases("train", h),
          _loop_compare),
    _spec("evaluate", "evaluate", "evaluate", "08_training", 3, 2, lambda h: _loop_cases("evaluate", h),
          _loop_compare),
    _spec("top_k_filter", "top_k_filter", "top_k_filter", "09_generation", 3, 2, _topk_cases, _topk_compare),
    _spec("sample_next_token", "sample_next_token", "sample_next_token", "09_generation", 5, 5, _sample_cases,
          _sample_compare),
]}


def get_spec(name: str) -> Spec:
    try:
        return SPECS[name]
    except KeyError:
        raise KeyError(f"No graded component named {name!r}; known: {', '.join(SPECS)}.") from None


def spec_for_grade_id(grade_id: str) -> tuple[Spec, str] | None:
    """``(spec, "visible" | "hidden")`` for a test cell's grade id, or ``None`` when it is not a check cell."""
    for spec in SPECS.values():
        if grade_id in spec.points:
            return spec, spec.grade_ids[grade_id]
    return None


# Part 2 ("Let's build GPT-2", notebooks 10-14) keeps its specs in its own module.
from gptedu.grading.specs_gpt2 import GPT2_SPECS  # noqa: E402

SPECS.update(GPT2_SPECS)
from gptedu.grading.specs_gpt2_more import GPT2_MORE_SPECS  # noqa: E402  (notebook 14)

SPECS.update(GPT2_MORE_SPECS)
