"""The :class:`Component` description, and the helpers the parts' components share.

A component's life: ``cases(hidden, secret)`` builds plain-data cases (visible ones are public and fixed; hidden
ones derive their sizes, seeds and inputs from the course secret), :func:`gptedu.grading.runner.run_case` runs the
student's object on each case (torch only, also inside the sandbox), and ``compare(case, outputs)`` runs the
reference on the same case and returns the :class:`~gptedu.grading.report.Failure` list.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from gptedu.grading.report import Failure, tensor_failure
from gptedu.grading.runner import kwargs_text
from gptedu.grading.secret import derive

# The secret of the public development course: tests and the mistakes suite use it, and anyone can recompute its
# hidden cases. A real course passes its own secret (created by the instructor, kept in the course folder).
PUBLIC_DEV_SECRET = b"gptedu public development secret: not for grading a class"


@dataclass(frozen=True)
class Component:
    """One graded exercise: its test cells and points, its cases, and the comparison with the reference.

    ``target``: the name the student defines (``"Head"``). ``points``: grade id -> points, e.g.
    ``{"test_head_visible": 10, "test_head_hidden": 10}``. ``prerequisites``: name in the notebook -> reference
    object (``"gptedu.char.attention.Head"``) for an earlier step: one the notebook imports, or an earlier graded
    exercise of the same notebook whose student version this one calls. Every case runs with these names
    bound to the reference (in the sandbox, to its pruned copy, which holds nothing else), so a mistake in an earlier
    step costs points there only. ``forbid_torch_attention``: the exercise computes attention by hand, so PyTorch's
    own attention is a shortcut; ``allowed_reference``: the qualified-name prefixes of reference code the student's
    code may run (``"Head."``: the prerequisites and what they call). Every case carries these three (the runner
    reads them from the case). ``equivalents``: reference classes that already do what this exercise asks under
    another name (the GPT-2 attention takes a KV cache): never in the run that grades it.
    """

    name: str
    title: str
    target: str
    notebook: str
    points: dict[str, int]
    make_cases: Callable[[bool, bytes], list[dict]] = field(repr=False)
    compare_fn: Callable[[dict, dict], list[Failure]] = field(repr=False)
    prerequisites: dict[str, str] = field(default_factory=dict)
    forbid_torch_attention: bool = False
    allowed_reference: tuple[str, ...] = ()
    equivalents: tuple[str, ...] = ()
    _cache: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    @property
    def grade_ids(self) -> dict[str, str]:
        """grade id -> ``"visible"`` or ``"hidden"``."""
        return {gid: ("hidden" if gid.endswith("_hidden") else "visible") for gid in self.points}

    @property
    def max_points(self) -> int:
        return sum(self.points.values())

    def cases(self, hidden: bool, secret: bytes | None = None) -> list[dict]:
        """Plain-data cases; hidden ones derive from ``secret`` (``None``: :data:`PUBLIC_DEV_SECRET`)."""
        secret = secret if secret is not None else PUBLIC_DEV_SECRET
        key = (bool(hidden), secret if hidden else b"")
        if key not in self._cache:
            if len(self._cache) >= 8:  # every submission has its own hidden cases: keep the cache small
                self._cache.pop(next(k for k in self._cache if k[0]))
            self._cache[key] = [dict(case, forbid_torch_attention=self.forbid_torch_attention,
                                     allowed_reference=list(self.allowed_reference),
                                     prerequisites=dict(self.prerequisites))
                                for case in self.make_cases(bool(hidden), secret)]
        return [dict(c) for c in self._cache[key]]  # copies: a run can never alter the cached cases

    def compare(self, case: dict, outputs: dict) -> list[Failure]:
        """Run the reference on ``case`` and list how ``outputs`` (from ``run_case``) differ from it; a run that did
        not finish (not attempted, an error, wrong parameter names, a shortcut) is that one failure."""
        return status_failures(case, outputs) or self.compare_fn(case, outputs)


def component(name: str, title: str, target: str, notebook: str, visible: int, hidden: int,
              make_cases: Callable[[bool, bytes], list[dict]], compare: Callable[[dict, dict], list[Failure]],
              prerequisites: dict[str, str] | None = None,
              forbid_torch_attention: bool = False, allowed_reference: tuple[str, ...] = (),
              equivalents: tuple[str, ...] = ()) -> Component:
    """A component with the usual two test cells, ``test_<name>_visible`` and ``test_<name>_hidden``."""
    return Component(name, title, target, notebook, {f"test_{name}_visible": visible, f"test_{name}_hidden": hidden},
                     make_cases, compare, dict(prerequisites or {}), forbid_torch_attention,
                     tuple(allowed_reference), tuple(equivalents))


class Draw:
    """Hidden case parameters of one component, derived from the course secret: ``draw(0, "seq", 3, 40)``."""

    def __init__(self, secret: bytes, component_name: str):
        self.secret, self.name = secret, component_name

    def __call__(self, *labels: str | int, low: int = 0, high: int = 2**31 - 1) -> int:
        return derive(self.secret, self.name, "hidden", *labels, low=low, high=high)

    def seed(self, *labels: str | int) -> int:
        return self(*labels, "seed", low=10_000, high=2**31 - 1)

    def choice(self, options, *labels: str | int):
        return options[self(*labels, "choice", low=0, high=len(options) - 1)]


# ============================================================================================== building cases
def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def reference_params(module: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Named parameters of a freshly built reference module, with norms randomised (so a swapped norm shows)."""
    g = gen(seed + 1000)
    params = {}
    for name, p in module.named_parameters():
        value = p.detach().clone()
        leaf = name.rsplit(".", 1)[-1]
        if ".norm" in name or name.startswith("norm") or leaf in ("scale", "shift"):
            value = (1.0 + 0.3 * torch.randn(p.shape, generator=g)) if leaf in ("weight", "scale") else (
                0.2 * torch.randn(p.shape, generator=g))
        params[name] = value
    return params


def build_reference(cls: Callable, init: dict, params: dict[str, torch.Tensor] | None) -> nn.Module:
    ref = cls(**init)
    if params is not None:
        missing, unexpected = ref.load_state_dict(params, strict=False)
        bad = [m for m in missing if m in dict(ref.named_parameters())]
        if bad or unexpected:  # a bug in the cases themselves, not in the student's code
            raise RuntimeError(f"grading case does not fit the reference: missing {bad}, unexpected {unexpected}")
    return ref.eval()


def shape_text(t: torch.Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


def changed_after(x: torch.Tensor, t: int, seed: int, vocab: int | None = None) -> torch.Tensor:
    """A copy of ``x`` where every position after ``t`` is replaced (to test that outputs at <= t do not move)."""
    g = gen(seed + 7)
    changed = x.clone()
    tail = changed[:, t + 1:]
    if vocab is None:
        changed[:, t + 1:] = torch.randn(tail.shape, generator=g)
    else:
        changed[:, t + 1:] = (tail + 1 + torch.randint(vocab - 1, tail.shape, generator=g)) % vocab
    return changed


def module_cases(name: str, cls: Callable, sizes: list[tuple[dict, tuple, int]], *, label: str | None = None,
                 methods=("forward",), causal: bool = False, token_ids: bool = False,
                 with_params: bool = True, report_buffers=(), train_mode: bool = False) -> list[dict]:
    """One case per ``(init, x_shape, seed)`` of an ``nn.Module``: constructor kwargs, the weights to inject, the
    inputs (for a causal module also ``x_changed``, the same after position t), the methods to call.
    ``token_ids``: the inputs are ids below ``init``'s ``vocab_size`` (or ``cfg["vocab_size"]``), not floats.
    ``train_mode``: cases with a ``drop_rate`` > 0 also run ``forward`` in training mode, twice under one seed (to
    see where dropout acts)."""
    label = label or cls.__name__
    cases = []
    for index, (init, x_shape, seed) in enumerate(sizes):
        vocab = init.get("vocab_size") or init["cfg"]["vocab_size"] if token_ids else None
        torch.manual_seed(seed)
        params = reference_params(cls(**init), seed) if with_params else None
        x = torch.randint(vocab, x_shape, generator=gen(seed)) if vocab else torch.randn(x_shape, generator=gen(seed))
        t = x_shape[1] // 2
        inputs = {"x": x, "x_changed": changed_after(x, t, seed, vocab)} if causal and x_shape[1] > 1 else {"x": x}
        cases.append({
            "id": f"{name}/{index}", "kind": "module", "label": label, "init": dict(init),
            "params": params, "inputs": inputs, "methods": list(methods), "seed": seed, "causal_t": t,
            "report_buffers": list(report_buffers),
            "describe": f"{label}({kwargs_text(init)}) on {'token ids' if vocab else 'x'} of shape {shape_text(x)}, "
                        f"seed {seed}",
        })
        if train_mode and init.get("drop_rate", init.get("cfg", {}).get("drop_rate", 0)) > 0:
            cases[-1]["train_seeds"] = [seed + 11, seed + 11]
    return cases


def module_component(name: str, title: str, notebook: str, visible: int, hidden: int, check: ModuleCheck,
                     sizes: list[tuple[dict, tuple, int]], hidden_size: Callable[[Draw, int], tuple],
                     n_hidden: int, adjust: Callable[[list[dict]], list[dict]] | None = None,
                     cases: dict | None = None, **options) -> Component:
    """A component whose target is the ``nn.Module`` ``check.cls``: visible ``sizes`` ``(init, x_shape, seed)``,
    hidden ones ``hidden_size(Draw(secret, name), i)`` for ``i < n_hidden``, built by :func:`module_cases` with
    ``cases`` (then ``adjust``), compared by ``check``; ``options``: those of :func:`component`."""

    def make_cases(is_hidden: bool, secret: bytes) -> list[dict]:
        d = Draw(secret, name)
        made = module_cases(name, check.cls, [hidden_size(d, i) for i in range(n_hidden)] if is_hidden else sizes,
                            **(cases or {}))
        return adjust(made) if adjust else made

    target = (cases or {}).get("label") or check.cls.__name__
    return component(name, title, target, notebook, visible, hidden, make_cases, check, **options)


def calls_case(case_id: str, label: str, calls: list[dict], describe: str = "", **data) -> dict:
    """A case of kind ``"calls"``: the runner calls the student's ``label`` with each call's arguments (the call
    format: ``gptedu.grading.runner``'s ``_run_calls``). ``data``: the rest of the case (``construct``, a model's
    ``init`` and ``params``, and what ``compare`` needs)."""
    return {"id": case_id, "kind": "calls", "label": label, "calls": calls,
            "describe": describe or f"{label} on {len(calls)} inputs", **data}


# ============================================================================================== comparing
def python_result(outputs: dict, name: str):
    """A call's result as the student's code returned it: a dict (its keys and values as ``repr`` strings), a list
    of ints (from a list or a tensor of ints), ``[]``, a string, or ``None`` when nothing came back as such."""
    if name + ".keys" in outputs and name + ".values" in outputs:
        return dict(zip(outputs[name + ".keys"], outputs[name + ".values"], strict=False))
    value = outputs.get(name)
    if isinstance(value, torch.Tensor):
        return [int(v) for v in value.flatten().tolist()]
    if value is None and isinstance(outputs.get(name + ".len"), torch.Tensor) and int(outputs[name + ".len"]) == 0:
        return []
    return value


STATUS_CHECKS = {  # status -> (check, cause)
    "not_attempted": ("not attempted", ""),
    "error": ("your code raised an error", ""),
    "load_error": ("parameter names and shapes match the exercise",
                   "use exactly the attribute names and layer sizes given in the exercise."),
    "forbidden": ("no shortcuts (write it yourself)", "this exercise is about writing the computation yourself."),
}


def status_failures(case: dict, outputs: dict) -> list[Failure]:
    """The failure for a run that did not finish (not attempted, an error, wrong parameter names, a shortcut).

    ``case["error_causes"]`` (optional) maps a status, or a phrase of the error message, to a more precise cause."""
    status = outputs.get("_status", "error")
    if status == "ok":
        return []
    message = outputs.get("_message", "")
    check, cause = STATUS_CHECKS.get(status, (status, ""))
    if status == "error":
        cause = outputs.get("_cause") or "read the error above: it names the line of your code that failed."
    for key, text in case.get("error_causes", {}).items():
        if key == status or key in message:
            cause = text
    return [Failure(check, case["describe"], message, cause, status=status)]


def match_variant(found, variants: list[tuple[str, torch.Tensor]], atol: float) -> str:
    """The explanation of the first typical mistake whose output equals ``found``, else ``""``."""
    for explanation, value in variants:
        if isinstance(found, torch.Tensor) and value is not None and found.shape == value.shape and torch.allclose(
                found.double(), value.double(), atol=max(atol, 1e-5), rtol=1e-4):
            return explanation
    return ""


Variants = Callable[[nn.Module, torch.Tensor, str], list[tuple[str, torch.Tensor]]]


@dataclass(frozen=True)
class ModuleCheck:
    """The comparison of an ``nn.Module`` exercise, a component's ``compare``: every method on every input equals the
    reference with the same weights (``atol + rtol * |expected|``); outputs at positions <= t ignore positions after
    t (cases with ``x_changed``); ``extra(case, outputs, ref)`` checks more; in training mode (cases with
    ``train_seeds``), dropout acts where the exercise puts it.

    ``variants(ref, x, method)`` lists ``(cause, output)`` of typical mistakes: the cause of the first one equal to
    the student's output is shown, else ``cause``. ``dropout_elsewhere(ref, x)`` lists ``(cause, thunk)`` of dropout
    applied in other places."""

    cls: Callable
    atol: float
    rtol: float
    cause: str
    variants: Variants
    extra: Callable[[dict, dict, nn.Module], list[Failure]] | None = None
    dropout_elsewhere: Callable | None = None

    def __call__(self, case: dict, outputs: dict) -> list[Failure]:
        ref = build_reference(self.cls, case["init"], case.get("params"))
        failures = []
        for input_name, x in case["inputs"].items():
            for method in case["methods"]:
                key = f"{method}:{input_name}"
                with torch.no_grad():
                    expected = (ref if method == "forward" else getattr(ref, method))(x.clone())
                    failure = tensor_failure(f"`{method}` matches the reference (same weights)", case["describe"],
                                             f"{method}({input_name})", expected, outputs.get(key), self.atol,
                                             self.rtol, self.cause)
                    if failure is not None:
                        failure.cause = match_variant(outputs.get(key), self.variants(ref, x.clone(), method),
                                                      self.atol) or self.cause
                        failures.append(failure)
        failures += self._causality(case, outputs)
        if self.extra is not None:
            failures += self.extra(case, outputs, ref)
        return failures or self._train_mode(case, outputs, ref)

    @staticmethod
    def _causality(case: dict, outputs: dict) -> list[Failure]:
        a, b, t = outputs.get("forward:x"), outputs.get("forward:x_changed"), case["causal_t"]
        if a is None or b is None or a.shape != b.shape or a.dim() < 2:
            return []
        fail = tensor_failure("causality: positions <= t ignore every position after t", case["describe"],
                              f"forward(x)[:, :{t + 1}] vs forward(x with positions > {t} changed)",
                              a[:, : t + 1].double(), b[:, : t + 1], 1e-5, 0.0,
                              "positions after t receive attention: is the causal mask applied, and before the "
                              "softmax?")
        if fail is None:
            return []
        fail.message = "changing positions after t changed the output at positions <= t. " + fail.message
        return [fail]

    def _train_mode(self, case: dict, outputs: dict, ref: nn.Module) -> list[Failure]:
        """The same seed gives the same output, equal to the reference's in training mode under that seed."""
        runs = [outputs.get(f"train:{i}") for i in range(2)]
        if "train_seeds" not in case or not all(isinstance(r, torch.Tensor) for r in runs):
            return []
        x, seed, desc = case["inputs"]["x"], case["train_seeds"][0], case["describe"] + ", training mode"
        if runs[0].shape != runs[1].shape or not torch.allclose(runs[0], runs[1], rtol=0, atol=0, equal_nan=True):
            return [Failure("training mode: the same seed gives the same output", desc,
                            "two training-mode runs under torch.manual_seed with the same seed differ.",
                            "draw the dropout masks from torch's global generator (nn.Dropout does).")]
        with torch.random.fork_rng(), torch.no_grad():
            torch.manual_seed(seed)
            expected = ref.train()(x.clone())
        fail = tensor_failure("training mode: dropout where the exercise puts it", desc, "forward(x) in train mode",
                              expected, runs[0], 1e-5, 1e-4,
                              "apply self.dropout exactly where the exercise says, once, and nowhere else.")
        if fail is None:
            return []
        for cause, fn in (self.dropout_elsewhere(ref, x) if self.dropout_elsewhere else []):
            with torch.random.fork_rng(), torch.no_grad():
                torch.manual_seed(seed)
                value = fn()
            if value.shape == runs[0].shape and torch.allclose(value, runs[0], atol=1e-5, equal_nan=True):
                fail.cause = cause
                break
        return [fail]


# ============================================================================================== sampling statistics
FALSE_FAILURE_RATE = 1e-6


def frequency_bounds(probs: torch.Tensor, n: int, alpha: float = FALSE_FAILURE_RATE) -> torch.Tensor:
    """Per-category bounds t_i such that P(any |count_i / n - p_i| > t_i) <= alpha for n independent draws.

    Bernstein's inequality for each binomial count, P(|p̂ - p| >= t) <= 2 exp(-n t² / (2 p (1 - p) + 2 t / 3)),
    with a union bound over the K categories: each uses alpha / K. Solving n t² = c (2 v + 2 t / 3) for t with
    c = ln(2 K / alpha) and v = p (1 - p) gives the bound below.
    """
    p = probs.double()
    c = math.log(2 * p.numel() / alpha)
    v = p * (1 - p)
    return ((2 * c / 3) + torch.sqrt(torch.tensor(4 * c * c / 9) + 8 * n * c * v)) / (2 * n)


def frequency_failure(check: str, describe: str, ids: torch.Tensor, probs: torch.Tensor, cause: str,
                      tensor: str = "") -> Failure | None:
    """A failure when the frequencies of ``ids`` (n draws) are implausible under ``probs`` (false-failure rate
    :data:`FALSE_FAILURE_RATE` for correct independent samples); ``None`` when they are plausible."""
    n, k = ids.numel(), probs.numel()
    counts = torch.bincount(ids.long().flatten().clamp(0, k - 1), minlength=k).double()
    freq = counts / n
    excess = (freq - probs.double()).abs() - frequency_bounds(probs, n)
    if float(excess.max()) <= 0:
        return None
    worst = int(torch.argmax(excess))
    return Failure(check, describe,
                   f"over {n} draws, token {worst} came {int(counts[worst])} times ({float(freq[worst]):.3f}); its "
                   f"probability is {float(probs[worst]):.3f} (a correct sampler misses by this much less than once "
                   f"in a million runs).", cause, tensor)


def sampling_failure(check: str, describe: str, ids: torch.Tensor, logits: torch.Tensor, temperature: float,
                     cause: str, tensor: str = "") -> Failure | None:
    """:func:`frequency_failure` of ``ids`` (n draws) against ``softmax(logits / temperature)`` (``logits``:
    ``(vocab,)``), with the cause named when every draw is the same token (an argmax) or the draws follow
    temperature 1 (the temperature is not applied)."""
    logits = logits.double()
    fail = frequency_failure(check, describe, ids, torch.softmax(logits / temperature, -1), cause, tensor)
    if fail is None:
        return None
    if bool((ids == ids.flatten()[0]).all()):
        fail.cause = "every row picked the same token: sample with torch.multinomial(probs, 1) instead of taking " \
                     "the argmax."
    elif temperature != 1.0 and frequency_failure("", "", ids, torch.softmax(logits, -1), "") is None:
        fail.cause = ("the temperature is not applied, the samples follow temperature 1: divide the logits by it "
                      "BEFORE the softmax (dividing the probabilities after it changes nothing once they are "
                      "renormalised).")
    return fail
