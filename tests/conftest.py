"""Shared test setup: one torch thread (tests run beside other work on 2 cores), the corpus from ../shared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
_SHARED_CORPUS = REPO.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"

torch.set_num_threads(1)
if not os.environ.get("GPTEDU_DATA") and _SHARED_CORPUS.is_file():
    os.environ["GPTEDU_DATA"] = str(_SHARED_CORPUS)


@pytest.fixture(scope="session")
def corpus_text() -> str:
    """TinyShakespeare, found the way users find it (explicit path, $GPTEDU_DATA, cache, download)."""
    from gptedu.data import load_tinyshakespeare

    return load_tinyshakespeare()
