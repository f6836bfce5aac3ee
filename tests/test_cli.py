"""The command line: help, one-line errors with exit status 2, and train -> generate -> resume end to end."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gptedu.cli import MODEL_OPTIONS, TRAIN_OPTIONS, build_parser, main

TINY_ARGS = ["--preset", "tiny", "--threads", "1", "--no-progress", "--eval-interval", "10", "--seed", "1"]


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "gptedu", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny model trained for 20 steps by the real command line; returns (run dir, completed process)."""
    out = tmp_path_factory.mktemp("run")
    proc = run_cli("train", "--out", str(out), "--steps", "20", *TINY_ARGS)
    return out, proc


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


def test_help_explains_every_option_with_its_default():
    parser = build_parser()
    subparsers = parser._subparsers._group_actions[0].choices  # the train / generate parsers
    train_help = subparsers["train"].format_help()
    for flag, *_ in MODEL_OPTIONS + TRAIN_OPTIONS:
        assert flag in train_help
    for action in subparsers["train"]._actions + subparsers["generate"]._actions:
        if action.option_strings and action.dest not in ("help", "resume", "greedy", "checkpoint", "prompt"):
            assert "default" in (action.help or ""), action.option_strings
    assert "--top-p" in subparsers["generate"].format_help()
    from gptedu.trainer import presets

    model_default, train_default = presets()["default"]
    assert f"embedding width (must be divisible by --num-heads) (default: {model_default.d_model})" in " ".join(
        train_help.split()
    )
    assert f"(default: {train_default.max_steps})" in train_help


def test_train_then_generate_end_to_end(trained_run):
    out, proc = trained_run
    assert proc.returncode == 0, proc.stderr
    assert (out / "ckpt.pt").is_file()
    assert "Trained 20 steps" in proc.stdout and "--- sample" in proc.stdout
    assert proc.stdout.rstrip().splitlines()[-1] != ""

    args = ["generate", "--checkpoint", str(out / "ckpt.pt"), "--prompt", "ROMEO:", "--max-new-tokens", "30"]
    greedy = run_cli(*args, "--greedy", "--num-samples", "2")
    assert greedy.returncode == 0, greedy.stderr
    first, second = greedy.stdout.split("--- sample 2 ---\n")
    first = first.removeprefix("--- sample 1 ---\n")
    assert first == second  # greedy decoding is deterministic
    assert first.startswith("ROMEO:") and len(first.rstrip("\n")) == len("ROMEO:") + 30


def test_generate_sampling_options_are_reproducible(trained_run, capsys):
    out, _ = trained_run
    args = ["generate", "--checkpoint", str(out / "ckpt.pt"), "--prompt", "ROMEO:", "--max-new-tokens", "40"]
    args += ["--seed", "7", "--num-samples", "3", "--top-k", "5", "--top-p", "0.9", "--temperature", "0.8"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out == first and first.count("--- sample") == 3
    samples = [chunk.split("\n", 1)[1] for chunk in first.split("--- sample ")[1:]]
    assert len(set(samples)) > 1  # three draws, not one repeated


def test_kv_cache_and_full_recompute_write_the_same_text(trained_run, capsys):
    out, _ = trained_run
    args = ["generate", "--checkpoint", str(out / "ckpt.pt"), "--prompt", "ROMEO:", "--max-new-tokens", "20"]
    args += ["--seed", "3", "--top-k", "10"]
    assert main(args) == 0
    cached = capsys.readouterr().out
    assert main([*args, "--no-kv-cache"]) == 0
    assert capsys.readouterr().out == cached


def test_resume_continues_from_the_saved_step(trained_run):
    out, proc = trained_run
    assert proc.returncode == 0, proc.stderr
    resumed = run_cli("train", "--out", str(out), "--resume", "--steps", "25", "--no-progress", "--sample-tokens", "0")
    assert resumed.returncode == 0, resumed.stderr
    assert "from step 20" in resumed.stdout and "Trained 5 steps" in resumed.stdout


def test_resume_refuses_to_change_the_model(trained_run, capsys):
    out, _ = trained_run
    assert main(["train", "--out", str(out), "--resume", "--d-model", "64"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--d-model" in err[0] and "--resume" in err[0]


def test_missing_checkpoint_is_a_one_line_error(tmp_path):
    proc = run_cli("generate", "--checkpoint", str(tmp_path / "nope.pt"), "--prompt", "ROMEO:")
    assert_one_line_error(proc, "No checkpoint at", "nope.pt")


def test_empty_prompt_is_a_one_line_error(trained_run):
    out, _ = trained_run
    proc = run_cli("generate", "--checkpoint", str(out / "ckpt.pt"), "--prompt", "")
    assert_one_line_error(proc, "prompt is empty")


def test_out_of_vocabulary_prompt_names_the_characters(trained_run):
    out, _ = trained_run
    proc = run_cli("generate", "--checkpoint", str(out / "ckpt.pt"), "--prompt", "ROMEO: ~é~")
    line = assert_one_line_error(proc, "outside this model's vocabulary", "'~'", "'é'")
    assert "'R'" not in line


def test_corrupt_checkpoint_and_bad_options_in_process(tmp_path, capsys):
    (tmp_path / "bad.pt").write_text("not a checkpoint")
    assert main(["generate", "--checkpoint", str(tmp_path / "bad.pt"), "--prompt", "A"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a PyTorch checkpoint" in err[0]
    assert main(["train", "--out", str(tmp_path), "--resume"]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path), "--lr", "-1"]) == 2
    assert "lr must be > 0" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path), "--preset", "tiny", "--data", str(tmp_path / "none.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "none.txt" in err[0] and "does not exist" in err[0]


def test_ctrl_c_saves_a_checkpoint_to_resume_from(tmp_path, capsys, monkeypatch):
    from gptedu.checkpoint import load_checkpoint
    from gptedu.trainer import Trainer

    real_step = Trainer.train_step

    def step_then_interrupt(self):
        if self.step == 3:
            raise KeyboardInterrupt
        return real_step(self)

    monkeypatch.setattr(Trainer, "train_step", step_then_interrupt)
    args = ["train", "--out", str(tmp_path), "--preset", "tiny", "--eval-interval", "0", "--eval-batches", "1"]
    assert main([*args, "--no-progress", "--threads", "1"]) == 130
    assert "Interrupted at step 3" in capsys.readouterr().err
    assert load_checkpoint(tmp_path / "ckpt.pt")["step"] == 3


def test_a_fresh_run_keeps_the_previous_checkpoint(tmp_path, capsys):
    from gptedu.checkpoint import load_checkpoint

    args = ["train", "--out", str(tmp_path), "--preset", "tiny", "--eval-interval", "0", "--eval-batches", "1"]
    args += ["--no-progress", "--sample-tokens", "0", "--threads", "1"]
    assert main([*args, "--steps", "2"]) == 0
    assert main([*args, "--steps", "3"]) == 0
    assert "kept it as" in capsys.readouterr().err
    assert load_checkpoint(tmp_path / "ckpt.prev.pt")["step"] == 2
    assert load_checkpoint(tmp_path / "ckpt.pt")["step"] == 3
