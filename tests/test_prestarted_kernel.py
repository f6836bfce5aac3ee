"""The kernel started in advance for the next notebook imports torch, and leaves no other trace a notebook can see."""

from __future__ import annotations

import logging
import time

import nbformat
from jupyter_core.utils import run_sync
from nbclient import NotebookClient

from gptedu.grading.sandbox_nbgrader import _Prestarted

PROBE = "import sys\nprint('torch' in dir(), 'torch' in sys.modules, repr(globals().get('_')))"


def _run_probe(km=None) -> tuple[str, int]:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PROBE)])
    NotebookClient(nb, kernel_name="python3", km=km, timeout=120).execute()
    return nb.cells[0].outputs[0]["text"].strip(), nb.cells[0].execution_count


def test_warmed_kernel_has_torch_loaded_but_binds_no_name():
    log = logging.getLogger("test")
    prestarted, key = _Prestarted(), ("python3", "", ())
    prestarted.start(key, NotebookClient(nbformat.v4.new_notebook(), kernel_name="python3"), log)
    time.sleep(8)  # in grading, the current notebook runs meanwhile (the warm-up is sent, never waited for)
    km = prestarted.take(key, log)
    assert km is not None, "the kernel started in advance was not handed over"
    try:
        warmed = _run_probe(km)
    finally:
        run_sync(km.shutdown_kernel)(now=True)
    cold = _run_probe()
    # the user's namespace, the last result and the execution count are those of a fresh kernel; only sys.modules
    # differs (as after the notebook's own "import torch")
    assert cold == ("False False ''", 1), cold
    assert warmed == ("False True ''", 1), warmed
