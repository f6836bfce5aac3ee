"""Student-like copies of the reference, for testing the checks themselves.

The checks reject code that calls into ``gptedu`` (a student must not wrap the reference), so a test that wants a
*correct* submission cannot just pass ``gptedu.char.Head``. :func:`reference_namespace` executes the reference's
source files in a fresh namespace (as a notebook would), optionally with text replacements that turn the reference
into a realistic wrong implementation::

    ns = reference_namespace()                                   # correct copies: full points
    bad = reference_namespace({"/ math.sqrt(k.size(-1))": ""})   # attention without the 1/sqrt(d_k) scaling
    grade_component("head", bad["Head"]).points == 0
"""

from __future__ import annotations

import inspect
import re
import sys
import types

import gptedu.configs
import gptedu.data
import gptedu.sampling
from gptedu.char import attention, decoder, feedforward, loop, model, positional
from gptedu.grading.components import part1

# Dependency order: a module's source may use the names defined by the ones before it.
REFERENCE_MODULES = (gptedu.configs, gptedu.sampling, gptedu.data, positional, attention, feedforward, decoder, model,
                     loop)
_IMPORT_FROM_GPTEDU = re.compile(r"^from gptedu[\w.]* import \(?[\w, \n]*?\)?$|^from gptedu[\w.]* import .*$",
                                 re.MULTILINE)
_counter = 0


def reference_namespace(replace: dict[str, str] | None = None) -> dict:
    """A namespace holding copies of every part-1 reference class/function, defined outside ``gptedu``.

    ``replace`` maps exact source snippets to replacements; every snippet must occur in some module (a typo in a
    mistake must not silently give the correct code).
    """
    replace = dict(replace or {})
    unused = set(replace)
    global _counter  # a fresh module name per namespace
    _counter += 1
    mod = types.ModuleType(f"__student__{_counter}")
    sys.modules[mod.__name__] = mod  # dataclasses look their module up there
    namespace = mod.__dict__
    for module in REFERENCE_MODULES:
        source = _IMPORT_FROM_GPTEDU.sub("", inspect.getsource(module))
        for old, new in replace.items():
            if old in source:
                source = source.replace(old, new)
                unused.discard(old)
        exec(compile(source, f"<__student__:{module.__name__}>", "exec"), namespace)  # noqa: S102 - for tests
    if unused:
        raise ValueError(f"replacement snippet(s) not found in the reference source: {sorted(unused)}")
    filter_logits = namespace["filter_logits"]
    namespace["top_k_filter"] = lambda logits, k: filter_logits(logits, top_k=k)
    return namespace


# The student-facing name of each part-1 component, in the namespace returned above.
TARGETS = {c.name: c.target for c in part1.COMPONENTS.values()}
