"""Data-parallel training under torchrun: 2 CPU processes (gloo) stay in sync, draw different data, learn."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gptedu.checkpoint import load_checkpoint

WORKER = Path(__file__).with_name("ddp_worker.py")


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory, corpus_text):
    out = tmp_path_factory.mktemp("ddp")
    corpus = out / "corpus.txt"
    corpus.write_text(corpus_text[:40_000], encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER)]
    proc = subprocess.run([*cmd, str(out), str(corpus)], capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]
    return out, ranks


@pytest.mark.slow
def test_two_ranks_end_with_identical_parameters(ddp_run):
    _, (r0, r1) = ddp_run
    assert (r0["rank"], r1["rank"], r0["world_size"]) == (0, 1, 2)
    assert r0["params"].keys() == r1["params"].keys()
    for name in r0["params"]:
        assert torch.equal(r0["params"][name], r1["params"][name]), name


@pytest.mark.slow
def test_ranks_draw_different_batches(ddp_run):
    _, (r0, r1) = ddp_run
    assert r0["batches"].shape == r1["batches"].shape == (20, 8, 16)
    different_steps = sum(not torch.equal(a, b) for a, b in zip(r0["batches"], r1["batches"], strict=True))
    assert different_steps == 20
    assert r0["local_losses"] != r1["local_losses"]


@pytest.mark.slow
def test_logged_loss_is_the_mean_over_ranks_and_falls(ddp_run):
    _, (r0, r1) = ddp_run
    for key in ("step", "loss", "lr", "eval_step", "train_loss", "val_loss"):  # not "elapsed": clocks differ
        assert r0["history"][key] == r1["history"][key], key  # every rank logs the same averaged numbers
    mean = [(a + b) / 2 for a, b in zip(r0["local_losses"], r1["local_losses"], strict=True)]
    assert r0["history"]["loss"] == pytest.approx(mean, rel=1e-6)
    val = r0["history"]["val_loss"]
    assert r0["history"]["eval_step"] == [0, 10, 20]
    assert val[-1] < val[0] - 0.5


@pytest.mark.slow
def test_checkpoint_written_once_with_the_shared_weights(ddp_run):
    out, (r0, _) = ddp_run
    assert sorted(p.name for p in out.iterdir()) == ["ckpt.prev.pt", "ckpt.pt", "corpus.txt", "rank0.pt", "rank1.pt"]
    state = load_checkpoint(out / "ckpt.pt")
    assert state["step"] == 20 and load_checkpoint(out / "ckpt.prev.pt")["step"] == 10  # the run's previous save
    assert len(state["rng"]["batch_generators"]) == 2  # each rank's batch stream, for an exact resume
    for name, value in r0["params"].items():
        assert torch.equal(state["model_state"][name], value), name
