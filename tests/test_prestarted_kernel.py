"""The kernel started in advance for the next notebook imports torch, and leaves no other trace a notebook can see."""

from __future__ import annotations

import logging
import time

import nbformat
import pytest
from jupyter_core.utils import run_sync
from nbclient import NotebookClient

from gptedu.grading.sandbox_nbgrader import _Prestarted

PROBE = (
    "import sys\n"
    "print('torch' in dir(), 'torch' in sys.modules, 'torch._dynamo' in sys.modules,"
    " 'matplotlib.pyplot' in sys.modules, repr(globals().get('_')))"
)


def _run_probe(km=None) -> tuple[str, int]:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PROBE)])
    NotebookClient(nb, kernel_name="python3", km=km, timeout=120).execute()
    return nb.cells[0].outputs[0]["text"].strip(), nb.cells[0].execution_count


@pytest.mark.parametrize("optim", [False, True], ids=["torch", "torch+dynamo"])
def test_warmed_kernel_has_torch_loaded_but_binds_no_name(optim):
    log = logging.getLogger("test")
    prestarted, key = _Prestarted(), ("python3", "", ())
    code = "__import__('torch'); __import__('matplotlib.pyplot')" + ("; __import__('torch._dynamo')" if optim else "")
    prestarted.start(key, NotebookClient(nbformat.v4.new_notebook(), kernel_name="python3"), log, warm_code=code)
    time.sleep(8)  # in grading, the current notebook runs meanwhile (the warm-up is sent, never waited for)
    km = prestarted.take(key)
    assert km is not None, "the kernel started in advance was not handed over"
    try:
        warmed = _run_probe(km)
    finally:
        run_sync(km.shutdown_kernel)(now=True)
    cold = _run_probe()
    # the user's namespace, the last result and the execution count are those of a fresh kernel; only sys.modules
    # differs (as after the notebook's own "import torch")
    assert cold == ("False False False False ''", 1), cold
    assert warmed == (f"False True {optim} True ''", 1), warmed


def test_the_warm_up_imports_what_the_next_notebook_mentions(tmp_path):
    """torch always; matplotlib.pyplot where the notebook mentions matplotlib; torch._dynamo (which building any
    optimizer loads) only where it mentions an optimizer."""
    with_optim, plots, plain, missing = (tmp_path / f"{n}.ipynb" for n in ("08", "03", "07", "gone"))
    with_optim.write_text('{"source": "import matplotlib.pyplot as plt\nopt = torch.optim.AdamW(model.parameters())"}')
    plots.write_text('{"source": "import matplotlib.pyplot as plt"}')
    plain.write_text('{"source": "model = GPTModel(65, 32)"}')
    assert _Prestarted.warm_code_for(str(with_optim)) == (
        "__import__('torch'); __import__('matplotlib.pyplot'); __import__('torch._dynamo')")
    assert _Prestarted.warm_code_for(str(plots)) == "__import__('torch'); __import__('matplotlib.pyplot')"
    assert _Prestarted.warm_code_for(str(plain)) == _Prestarted.WARM_CODE == "__import__('torch')"
    assert _Prestarted.warm_code_for(str(missing)) == _Prestarted.WARM_CODE
