"""Run one grading case on a student's object: ``run_case(student_obj, case) -> dict[str, Tensor | str | list]``.

Imports only torch and the standard library: the sandbox runs a copy of this file where ``gptedu`` is absent. A case
is plain data built by ``gptedu.grading.components``; the outputs hold tensors under names chosen by its ``kind``,
``"_status"`` (``ok``, ``not_attempted``, ``error``, ``load_error``, ``forbidden``), ``"_message"`` for the student
and ``"_forbidden"`` (the shortcuts seen). Every run is seeded from the case.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import io
import sys
import traceback
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

# PyTorch entry points that compute attention for you; exercises that ask for attention by hand must not call them.
FORBIDDEN_TORCH_FUNCTIONS = (
    "scaled_dot_product_attention",
    "multi_head_attention_forward",
    "_native_multi_head_attention",
    "_transformer_encoder_layer_fwd",
    "flex_attention",
)
FORBIDDEN_MODULES = (
    nn.MultiheadAttention,
    nn.Transformer,
    nn.TransformerEncoder,
    nn.TransformerDecoder,
    nn.TransformerEncoderLayer,
    nn.TransformerDecoderLayer,
)
# the same called as ``torch.ops.aten.<op>`` (which bypasses __torch_function__): seen by the profile hook
FORBIDDEN_ATEN_OPS = ("scaled_dot_product", "multi_head_attention", "transformer_encoder_layer", "flex_attention")
_OP_CALLS = {torch._ops.OpOverload.__call__.__code__, torch._ops.OpOverloadPacket.__call__.__code__}
REFERENCE_PACKAGE = "gptedu"
REFERENCE_COPY = "reference_copy"  # the verification's copy of the prerequisites (``gptedu.grading.verify``)
_THIS_MODULE = __name__


def _is_reference(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in (REFERENCE_PACKAGE, REFERENCE_COPY))


def _is_grader(module: str) -> bool:
    """The grading package's own helpers; its components (which hold reference functions) are reference code."""
    return module.startswith(REFERENCE_PACKAGE + ".grading") and not module.startswith(
        REFERENCE_PACKAGE + ".grading.components")


class StudentCodeError(Exception):
    """Raised inside the runner when the student's code fails; carries the run status and a message."""

    def __init__(self, status: str, message: str, cause: str = ""):
        super().__init__(message)
        self.status = status
        self.message = message
        self.cause = cause


# --------------------------------------------------------------------------------------------- shortcut detection
class ShortcutGuard(TorchFunctionMode):
    """Notices shortcuts while the student's code runs: PyTorch's own attention (with ``forbid_torch_attention``)
    and the reference package (its copy in the sandbox, and the components' code) other than the ``allowed``
    qualified-name prefixes (the case's prerequisites and what they run)."""

    def __init__(self, forbid_torch_attention: bool, allowed: list[str] | tuple[str, ...] = ()):
        super().__init__()
        self.forbid_torch_attention = forbid_torch_attention
        self.allowed = tuple(allowed)
        self.seen: list[str] = []
        self._forbidden_functions = FORBIDDEN_TORCH_FUNCTIONS if forbid_torch_attention else ()
        self._old_profile = None

    def _note(self, label: str) -> None:
        if label not in self.seen:
            self.seen.append(label)

    def _profile(self, frame, event, arg):
        if event == "call":
            if frame.f_code in _OP_CALLS and self._forbidden_functions:
                op = str(frame.f_locals.get("self", ""))
                if any(name in op for name in FORBIDDEN_ATEN_OPS):
                    self._note(op)
            module = frame.f_globals.get("__name__", "") or ""
            if _is_reference(module) and module != _THIS_MODULE:
                qualname = getattr(frame.f_code, "co_qualname", frame.f_code.co_name)
                if not qualname.startswith(self.allowed) and not _is_grader(module):
                    self._note(f"{module}.{qualname}")
        if self._old_profile is not None:
            self._old_profile(frame, event, arg)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in self._forbidden_functions:
            self._note(func.__name__)
        return func(*args, **(kwargs or {}))

    def __enter__(self) -> ShortcutGuard:
        self._old_profile = sys.getprofile()
        sys.setprofile(self._profile)
        return super().__enter__()

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        sys.setprofile(self._old_profile)

    def check_module_tree(self, module: nn.Module) -> None:
        """Flag PyTorch's ready-made attention/transformer modules and reference classes inside ``module``."""
        for name, sub in module.named_modules():
            where = name or type(module).__name__
            if self.forbid_torch_attention and isinstance(sub, FORBIDDEN_MODULES):
                self._note(f"{type(sub).__module__}.{type(sub).__name__} (at {where})")
            for cls in type(sub).__mro__:
                mod = getattr(cls, "__module__", "") or ""
                if _is_reference(mod) and not (cls.__name__ + ".").startswith(self.allowed):
                    self._note(f"{mod}.{cls.__name__} (at {where})")


# ---------------------------------------------------------------------------------------------------- utilities
def _is_library(filename: str) -> bool:
    name = filename.replace("\\", "/")
    return ("site-packages" in name or "/torch/" in name or f"/{REFERENCE_PACKAGE}/" in name
            or f"/{REFERENCE_COPY}/" in name or name.startswith("<frozen")
            or name.endswith(("runner.py", "verify_runner.py")))


def _describe_call(what: str, exc: BaseException) -> tuple[str, str]:
    """``(message, cause)``: what raised, the exception and the student's last line in the traceback; the cause
    points at that line, or at the library call made from it."""
    frames = traceback.extract_tb(exc.__traceback__)
    student = [f for f in frames if not _is_library(f.filename)]
    if not student:
        return f"{what} raised {type(exc).__name__}: {exc}", ""
    last = student[-1]
    if frames[-1].filename.endswith("runner.py") and frames[-1].name == "forward":  # the grader's test model
        return (f"{what} raised {type(exc).__name__}: {exc} (in {last.name}, line {last.lineno})",
                "the grader's model refused the input your code gave it: its message above says what to change.")
    code = f": `{last.line.strip()}`" if last.line else ""
    message = f"{what} raised {type(exc).__name__}: {exc} (in {last.name}, line {last.lineno}{code})"
    if frames and frames[-1] is last:
        return message, "read the error above: it names the line of your code that failed."
    return message, (f"the error arose inside a library function that your {last.name} (line {last.lineno}) calls: "
                     "check the shapes and types of the arguments you pass on that line.")


def _call(what: str, fn: Callable, *args, **kwargs) -> Any:
    """Call student code, turning ``NotImplementedError`` into "not attempted" and other errors into a message."""
    try:
        result = fn(*args, **kwargs)
    except NotImplementedError as exc:
        raise StudentCodeError("not_attempted", f"{what} raises NotImplementedError: not attempted yet.") from exc
    except StudentCodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of student code becomes a message, never a crash
        raise StudentCodeError("error", *_describe_call(what, exc)) from exc
    return result


def _require_tensor(what: str, value: Any) -> torch.Tensor:
    if value is None:
        raise StudentCodeError("not_attempted", f"{what} returned None: not attempted yet (is a `return` missing?).")
    if not isinstance(value, torch.Tensor):
        raise StudentCodeError("error", f"{what} returned a {type(value).__name__}, expected a torch.Tensor.")
    return value.detach().clone()


def kwargs_text(kwargs: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in kwargs.items())


def _shared_submodule(module: nn.Module) -> str:
    """A sentence when one submodule with weights is registered under several names (``[layer] * n``), else ``""``."""
    names_of: dict[int, list[str]] = {}
    for name, sub in module.named_modules(remove_duplicate=False):
        if name and any(True for _ in sub.parameters()):  # sharing a parameterless GELU is harmless
            names_of.setdefault(id(sub), []).append(name)
    for names in names_of.values():
        if len(names) > 1:
            more = f" (and {len(names) - 2} more)" if len(names) > 2 else ""
            return (f"`{names[0]}` and `{names[1]}`{more} are the same module object, so they share one set of "
                    "weights. `[Module(...)] * n` (or appending one instance n times) repeats a single module: "
                    "create a new one for each position, e.g. nn.ModuleList([Head(...) for _ in range(n)]).")
    return ""


def build_module(cls: Callable, init: dict, params: dict[str, torch.Tensor] | None, label: str,
                 guard: ShortcutGuard | None = None) -> nn.Module:
    """Construct ``cls(**init)`` and load ``params`` (name -> tensor): the parameter names and shapes must be the
    reference's exactly. Buffers are not loaded (the student's code recomputes them; the outputs check them)."""
    what = f"{label}({kwargs_text(init)})"
    module = _call(what, cls, **init)
    if module is None:
        raise StudentCodeError("not_attempted", f"{what} returned None.")
    if not isinstance(module, nn.Module):
        raise StudentCodeError("error", f"{what} is a {type(module).__name__}, expected a torch.nn.Module subclass.")
    if guard is not None:  # report a forbidden module before any parameter-name mismatch it causes
        guard.check_module_tree(module)
    if params is None:
        return module
    shared = _shared_submodule(module)
    if shared:
        raise StudentCodeError("load_error", f"{what}: {shared}")
    found = dict(module.named_parameters())
    expected_names, found_names = set(params), set(found)
    if expected_names != found_names:
        parts = [f"{kind} parameters {names[:6]}{' ...' if len(names) > 6 else ''}" for kind, names in (
            ("missing", sorted(expected_names - found_names)), ("unexpected", sorted(found_names - expected_names)))
            if names]
        raise StudentCodeError(
            "load_error",
            f"{what}: the parameter names differ from the exercise's ({'; '.join(parts)}). The checks load known "
            "weights by name, so use exactly the attribute names the exercise gives (and bias=False where it says so).")
    for name, tensor in params.items():
        if tuple(found[name].shape) != tuple(tensor.shape):
            raise StudentCodeError(
                "load_error",
                f"{what}: parameter `{name}` has shape {tuple(found[name].shape)}, expected {tuple(tensor.shape)}. "
                "Check the in/out sizes of that layer (nn.Linear(in_features, out_features) stores weight as "
                "(out_features, in_features)).")
    with torch.no_grad():
        for name, tensor in params.items():
            found[name].copy_(tensor)
    return module


# ------------------------------------------------------------------------------------------------- the case kinds
def _run_module(obj: Callable, case: dict, guard: ShortcutGuard) -> dict:
    """Forward (and optional extra methods) of an ``nn.Module`` on each named input."""
    label = case.get("label", getattr(obj, "__name__", "module"))
    module = build_module(obj, case["init"], case.get("params"), label, guard)
    module.eval()
    out: dict[str, Any] = {}
    if case.get("report_buffers"):
        params, buffers = dict(module.named_parameters()), dict(module.named_buffers())
        for name in case["report_buffers"]:
            for kind, found in (("param", params), ("buffer", buffers)):
                if name in found:
                    out[f"{kind}:{name}"] = found[name].detach().clone()
        out["_num_params"] = torch.tensor(sum(p.numel() for p in params.values()))
    for input_name, x in case["inputs"].items():
        for method in case.get("methods", ["forward"]):
            fn = module if method == "forward" else getattr(module, method, None)
            what = f"{label}.{method}(x of shape {tuple(x.shape)})"
            if fn is None:
                raise StudentCodeError("error", f"{label} has no method `{method}`, which the exercise asks for.")
            torch.manual_seed(case.get("seed", 0))
            with torch.no_grad():
                result = _call(what, fn, x.clone())
            out[f"{method}:{input_name}"] = _require_tensor(what, result)
    if case.get("train_seeds"):  # training mode: where dropout acts (same seed, same masks as the reference)
        module.train()
        x = case["inputs"]["x"]
        for i, seed in enumerate(case["train_seeds"]):
            torch.manual_seed(seed)
            with torch.no_grad():
                out[f"train:{i}"] = _require_tensor(f"{label}(x) in training mode", _call(label, module, x.clone()))
    return out


def _run_generate(obj: Callable, case: dict, guard: ShortcutGuard) -> dict:
    """``generate`` on several prompts under fixed seeds (greedy-like, cropped context, sampling statistics)."""
    label = case.get("label", "GPTModel")
    model = build_module(obj, case["init"], case.get("params"), label, guard)
    if not hasattr(model, "generate"):
        raise StudentCodeError("error", f"{label} has no `generate` method.")
    calls = _use_stand_in_forward(model)
    out: dict[str, Any] = {}
    for run in case["runs"]:
        calls.clear()
        model.train()  # the exercise's generate switches to eval mode itself
        kwargs = {"max_new_tokens": run["max_new_tokens"], "temperature": run["temperature"]}
        what = f"{label}.generate(start_tokens of shape {tuple(run['prompt'].shape)}, {kwargs_text(kwargs)})"
        torch.manual_seed(run["seed"])
        result = _call(what, model.generate, run["prompt"].clone(), **kwargs)
        out[f"tokens:{run['name']}"] = _require_tensor(what, result)
        out[f"forward_calls:{run['name']}"] = torch.tensor(calls, dtype=torch.long).reshape(-1, 3)
    return out


def _use_stand_in_forward(model: nn.Module) -> list[tuple[int, int, int]]:
    """Give the model a correct ``forward`` from its own parts (a ``forward`` mistake costs only its own points);
    returns the call log ``(sequence length, autograd on, training mode)``. Models without those parts keep theirs."""
    calls: list[tuple[int, int, int]] = []
    parts = ("embedding", "pos_encoding", "decoder", "fc_out")
    if not all(isinstance(getattr(model, name, None), nn.Module) for name in parts):
        return calls

    def forward(x: torch.Tensor) -> torch.Tensor:  # (batch, seq) -> (batch, seq, vocab)
        calls.append((int(x.size(1)), int(torch.is_grad_enabled()), int(model.training)))
        return model.fc_out(model.decoder(model.pos_encoding(model.embedding(x))))

    model.forward = forward  # an instance attribute: nn.Module.__call__ and self.forward both find it first
    return calls


def _reference(path: str) -> Any:
    """The reference object at ``path`` (``"gptedu.gpt2.layers.LayerNorm"``); in the sandbox, where this file runs
    as a copy and ``gptedu`` is absent, the same object from the verification's pruned copy of the reference."""
    module, _, name = path.rpartition(".")
    if not _THIS_MODULE.startswith(REFERENCE_PACKAGE + "."):
        module = REFERENCE_COPY + module[len(REFERENCE_PACKAGE):]
    return getattr(importlib.import_module(module), name)


@contextlib.contextmanager
def _prerequisites_bound(obj: Any, prerequisites: dict[str, str]):
    """While a case runs, the global names of the student's code (``obj``'s module scope) that name an earlier
    exercise (``case["prerequisites"]``: name -> reference path) are the reference's correct versions, so a mistake
    in an earlier exercise costs points in that exercise only."""
    scope: dict = {}
    for value in [obj, *(vars(obj).values() if isinstance(obj, type) else ())]:
        value = getattr(value, "__func__", getattr(value, "fget", value))
        if hasattr(value, "__globals__"):
            scope = value.__globals__
            break
    saved = {name: scope[name] for name in prerequisites if name in scope}
    scope.update({name: _reference(path) for name, path in prerequisites.items()})
    try:
        yield
    finally:
        for name in prerequisites:
            scope.pop(name, None)
        scope.update(saved)


def _run_calls(obj: Callable, case: dict, guard: ShortcutGuard) -> dict:
    """Call a function, or build ``obj(*construct)`` and call its ``method``s, once per ``case["calls"]`` item
    (``name``; optional ``args``, ``kwargs``, ``seed``, ``describe``, ``method``, ``generator_seed``, ``expect_error``,
    ``soft``). ``"<model>"`` arguments get a fresh ``TinyCausalLM`` with ``case["params"]``. Outputs:
    ``result:<name>`` (see :func:`_store`), ``requires_grad:``/``calls:<name>`` with a model, ``error:<name>`` for a
    ``soft`` call's error, ``raised:<name>`` for an ``expect_error`` call."""
    label = case.get("label", getattr(obj, "__name__", "function"))
    target: Any = obj
    out: dict[str, Any] = {}
    if "construct" in case:
        args = case["construct"]
        target = _call(f"{label}(...)", target, *args.get("args", []), **args.get("kwargs", {}))
        if target is None:
            raise StudentCodeError("not_attempted", f"{label}(...) returned None.")
        for attr in case.get("attributes", []):
            if not hasattr(target, attr):
                raise StudentCodeError("error", f"{label} has no attribute `{attr}`, which the exercise asks for.")
            _store(f"attr:{attr}", _call(f"{label}.{attr}", getattr, target, attr), out, f"{label}.{attr}")
    for call in case["calls"]:
        model = TinyCausalLM.with_params(case["init"], case["params"]).eval() if "params" in case else None
        fn = target if call.get("method") is None else getattr(target, call["method"], None)
        what = f"{label}{'.' + call['method'] if call.get('method') else ''}({call.get('describe', '...')})"
        if fn is None:
            raise StudentCodeError("error", f"{label} has no method `{call['method']}`, which the exercise asks for.")
        args = [_fill(a, model) for a in call.get("args", [])]
        kwargs = {k: _fill(v, model) for k, v in call.get("kwargs", {}).items()}
        if "generator_seed" in call:
            kwargs["generator"] = torch.Generator().manual_seed(call["generator_seed"])
        torch.manual_seed(call.get("seed", 0))
        if call.get("expect_error"):
            try:
                fn(*args, **kwargs)
            except NotImplementedError as exc:
                raise StudentCodeError("not_attempted", f"{what} raises NotImplementedError: not attempted.") from exc
            except Exception as exc:  # noqa: BLE001 - the error itself is the output here
                out[f"raised:{call['name']}"] = f"{type(exc).__name__}: {exc}"
            else:
                out[f"raised:{call['name']}"] = ""
            continue
        try:
            with contextlib.redirect_stdout(io.StringIO()) if model is not None else contextlib.nullcontext():
                result = _call(what, fn, *args, **kwargs)
        except StudentCodeError as exc:
            if not call.get("soft"):
                raise
            out[f"error:{call['name']}"] = exc.message
            continue
        _store(f"result:{call['name']}", result, out, what)
        if model is not None:
            if isinstance(result, torch.Tensor):
                out[f"requires_grad:{call['name']}"] = torch.tensor(result.requires_grad)
            out[f"calls:{call['name']}"] = torch.tensor(model.calls, dtype=torch.long).reshape(-1, 4)
    return out


def _fill(value: Any, model: nn.Module | None) -> Any:
    """A call's argument: the model for ``"<model>"``, else a copy (the student's code cannot alter the case)."""
    return model if isinstance(value, str) and value == "<model>" else copy.deepcopy(value)


def _store(name: str, value: Any, out: dict, what: str = "") -> None:
    """Store a student's result as tensors/strings (tuples and lists of tensors are split into ``name.i``)."""
    if value is None:
        raise StudentCodeError("not_attempted", f"{what or name} returned None: not attempted yet.")
    if isinstance(value, torch.Tensor):
        out[name] = value.detach().clone()
    elif isinstance(value, str):
        out[name] = value
    elif isinstance(value, bool | int | float):
        out[name] = torch.tensor(value)
    elif isinstance(value, dict):
        keys = sorted(value, key=repr)
        out[name + ".keys"] = [repr(k) for k in keys]
        out[name + ".values"] = [repr(value[k]) for k in keys]
    elif isinstance(value, tuple | list):
        if value and all(isinstance(v, str) for v in value):
            out[name] = [str(v) for v in value]
        elif value and all(isinstance(v, int | float | bool) for v in value):
            out[name] = torch.tensor(list(value))
            out[name + ".pytype"] = type(value).__name__  # it was a Python list/tuple (e.g. a dataset item)
        else:
            out[name + ".len"] = torch.tensor(len(value))
            for i, v in enumerate(value):
                _store(f"{name}.{i}", v, out, what)
    else:
        out[name] = f"<{type(value).__name__}>"


def _run_loop(obj: Callable, case: dict, guard: ShortcutGuard) -> dict:
    """Run a student's ``train``/``evaluate`` on ``TinyCausalLM`` with known weights and a fixed list of batches."""
    model = TinyCausalLM.with_params(case["init"], case["params"])
    batches = [(src.clone(), tgt.clone()) for src, tgt in case["batches"]]
    criterion = nn.CrossEntropyLoss()
    label = case.get("label", getattr(obj, "__name__", "loop"))
    torch.manual_seed(case.get("seed", 0))
    if case["mode"] == "train":
        optimizer = torch.optim.SGD(model.parameters(), lr=case["lr"], momentum=0.9)
        model.eval()  # the student's train() must switch it back to training mode
        result = _call(f"{label}(model, dataloader, criterion, optimizer, 'cpu')", obj, model, batches, criterion,
                       optimizer, "cpu")
    else:
        model.train()  # the student's evaluate() must switch to eval mode
        result = _call(f"{label}(model, dataloader, criterion, 'cpu')", obj, model, batches, criterion, "cpu")
    out: dict[str, Any] = {}
    if result is None:
        raise StudentCodeError("not_attempted", f"{label}(...) returned None: not attempted yet (return the loss).")
    if isinstance(result, torch.Tensor):
        out["loss_tensor"] = torch.tensor(result.requires_grad)  # the exercise asks for a float (loss.item())
        if result.numel() != 1:
            raise StudentCodeError("error", f"{label} returned a tensor of shape {tuple(result.shape)}, expected a "
                                            "single number (the mean loss).")
        result = result.detach().item()
    if not isinstance(result, int | float):
        raise StudentCodeError("error", f"{label} returned a {type(result).__name__}, expected a float (mean loss).")
    out["loss"] = torch.tensor(float(result), dtype=torch.float64)
    for name, p in model.named_parameters():
        out[f"param:{name}"] = p.detach().clone()
        out[f"hasgrad:{name}"] = torch.tensor(p.grad is not None and bool(p.grad.abs().sum() > 0))
    out["calls_training"] = torch.tensor([c[0] for c in model.calls], dtype=torch.bool)
    out["calls_grad"] = torch.tensor([c[1] for c in model.calls], dtype=torch.bool)
    return out


# ------------------------------------------------------------------- part 2: loss/generation functions, KV caches
class TinyCausalLM(nn.Module):
    """A small causal LM for checking loss, training-loop and generation functions: ``(batch, seq)`` ids ->
    ``(batch, seq, vocab)`` logits, each depending on every earlier token (so a wrong crop changes them).

    With ``kv_cache`` (``gptedu.gpt2.KVCache``'s interface) ``idx`` holds only the new tokens; more than
    ``context_len`` positions raise ``ValueError``. ``self.calls``: ``(training, grad on, new tokens, start)``.
    """

    def __init__(self, vocab_size: int = 11, d_model: int = 8, context_len: int = 8):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.pos_emb = nn.Embedding(context_len, d_model)
        self.fc_out = nn.Linear(d_model, vocab_size)
        self.context_len = context_len
        self.cfg = {"context_len": context_len, "vocab_size": vocab_size}
        self.calls: list[tuple[int, int, int, int]] = []

    @classmethod
    def with_params(cls, init: dict, params: dict[str, torch.Tensor]) -> TinyCausalLM:
        model = cls(**init)
        model.load_state_dict(params)
        return model

    def forward(self, idx: torch.Tensor, kv_cache: Any = None) -> torch.Tensor:
        if not isinstance(idx, torch.Tensor) or idx.dim() != 2:
            raise ValueError(f"the model expects token ids of shape (batch, seq), got "
                             f"{tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__}.")
        start = 0 if kv_cache is None else int(kv_cache.length)
        seq = idx.size(1)
        self.calls.append((int(self.training), int(torch.is_grad_enabled()), seq, start))
        if start + seq > self.context_len:
            raise ValueError(f"the model got {start + seq} positions but its context_len is {self.context_len}: "
                             "crop the context: feed at most the last context_size tokens (idx[:, -context_size:]).")
        h = torch.tanh(self.embedding(idx) + self.pos_emb(torch.arange(start, start + seq, device=idx.device)))
        if kv_cache is not None:
            h, _ = kv_cache.layers(1)[0].append(h.unsqueeze(1), h.unsqueeze(1))
            h = h.squeeze(1)
        counts = torch.arange(1, start + seq + 1, device=idx.device, dtype=h.dtype).view(1, -1, 1)
        return self.fc_out(h[:, start:] + (h.cumsum(1) / counts)[:, start:])  # this position + running mean


KINDS: dict[str, Callable[[Callable, dict, ShortcutGuard], dict]] = {
    "module": _run_module,
    "generate": _run_generate,
    "calls": _run_calls,
    "loop": _run_loop,
}


def run_case(student_obj: Any, case: dict) -> dict:
    """Run one case on the student's class or function (see the module docstring); never raises for the
    student's code."""
    guard = ShortcutGuard(bool(case.get("forbid_torch_attention")), case.get("allowed_reference", ()))
    status, message = "ok", ""
    outputs: dict[str, Any] = {}
    if student_obj is None:
        status, message = "not_attempted", "nothing was defined."
    else:
        previous_threads = torch.get_num_threads()
        try:
            # the reference's versions are looked up (imported, in the sandbox) before the guard watches
            with _prerequisites_bound(student_obj, case.get("prerequisites", {})), guard:
                outputs = KINDS[case["kind"]](student_obj, dict(case), guard)
        except StudentCodeError as exc:
            status, message = exc.status, exc.message
            if exc.cause:
                outputs["_cause"] = exc.cause
        except Exception as exc:  # noqa: BLE001 - e.g. the student's object is not callable
            status = "error"
            message, cause = _describe_call(case.get("label", "your code"), exc)
            outputs["_cause"] = cause
        finally:
            torch.set_num_threads(previous_threads)
    if guard.seen:
        status = "forbidden"
        message = (f"this exercise asks you to write it yourself, but your code uses {', '.join(guard.seen[:4])}. "
                   "Replace that call with your own implementation (the reference package and PyTorch's built-in "
                   "attention are not allowed here).")
    return {**outputs, "_status": status, "_message": message, "_forbidden": list(guard.seen)}


__all__ = ["KINDS", "ShortcutGuard", "StudentCodeError", "TinyCausalLM", "build_module", "run_case"]
