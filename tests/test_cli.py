"""The command line: help, one-line errors with exit status 2, and train -> generate -> resume end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
    steps = train_default.max_steps
    assert f"(default: {'none' if steps is None else steps})" in train_help


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
    err = capsys.readouterr().err
    assert "--lr" in err and "got -1" in err and "lr must" not in err
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
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and "interrupted at step 3; saved" in err[0] and "--resume" in err[0]
    assert load_checkpoint(tmp_path / "ckpt.pt")["step"] == 3


def test_fresh_runs_into_one_out_keep_every_earlier_model(tmp_path, capsys):
    """Finding 2: a second fresh run overwrote the single ckpt.prev.pt, so two re-runs lost the original model."""
    from gptedu.checkpoint import load_checkpoint

    args = ["train", "--out", str(tmp_path), "--preset", "tiny", "--eval-batches", "1"]
    args += ["--no-progress", "--sample-tokens", "0", "--threads", "1"]
    for steps, every in (("2", "0"), ("3", "0"), ("4", "1")):  # the last saves at every step
        assert main([*args, "--steps", steps, "--eval-interval", every]) == 0
    assert "kept it as" in capsys.readouterr().err
    runs = {name: load_checkpoint(tmp_path / name) for name in ("ckpt.1.pt", "ckpt.2.pt", "ckpt.pt", "ckpt.prev.pt")}
    assert [runs[n]["step"] for n in ("ckpt.1.pt", "ckpt.2.pt", "ckpt.pt", "ckpt.prev.pt")] == [2, 3, 4, 3]
    assert len({runs[n]["run_id"] for n in ("ckpt.1.pt", "ckpt.2.pt", "ckpt.pt")}) == 3  # three different runs
    assert runs["ckpt.prev.pt"]["run_id"] == runs["ckpt.pt"]["run_id"]  # the last run's own previous save
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == sorted(runs)


# --- findings 2 and 3 of issue 14: checkpoints never lost, input checked before PyTorch loads -----------------------

FAST = ["--preset", "tiny", "--eval-interval", "0", "--eval-batches", "1", "--no-progress", "--threads", "1"]


def _tensor_region(path):
    """(offset, size) of the bytes of the largest tensor stored in a torch.save archive."""
    import struct
    import zipfile

    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        header = fh.read(30)
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_len + extra_len, info.file_size


@pytest.mark.parametrize("damage", ["random", "zeros"])
def test_a_checkpoint_damaged_in_place_is_refused_naming_what_to_restore(trained_run, tmp_path, damage):
    """Finding 2: a valid zip with damaged bytes loaded (random: a traceback; zeros: silently different text)."""
    import shutil

    out, proc = trained_run
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "run"
    shutil.copytree(out, run, ignore=shutil.ignore_patterns(".*"))
    ckpt = run / "ckpt.pt"
    offset, size = _tensor_region(ckpt)
    data = bytearray(ckpt.read_bytes())
    data[offset + size // 4 : offset + size // 4 + 64] = os.urandom(64) if damage == "random" else bytes(64)
    ckpt.write_bytes(bytes(data))
    gen = run_cli("generate", "--checkpoint", str(ckpt), "--prompt", "ROMEO:", "--max-new-tokens", "5")
    assert_one_line_error(gen, "checkpoint damaged", str(ckpt), "ckpt.prev.pt")
    resume = run_cli("train", "--out", str(run), "--resume", "--steps", "25", "--no-progress")
    assert_one_line_error(resume, "checkpoint damaged", "ckpt.prev.pt")
    assert ckpt.read_bytes() == bytes(data)  # left as it was, for the user to inspect


def test_a_start_that_fails_touches_nothing(trained_run, tmp_path):
    """Finding 2: a fresh start with a typo in --data had already moved ckpt.pt aside."""
    import shutil

    out, _ = trained_run
    run = tmp_path / "run"
    shutil.copytree(out, run, ignore=shutil.ignore_patterns(".*"))
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    proc = run_cli("train", "--out", str(run), "--data", str(tmp_path / "typo.txt"), *FAST)
    assert_one_line_error(proc, "typo.txt", "does not exist")
    assert {p.name: p.read_bytes() for p in run.iterdir() if not p.name.startswith(".")} == before
    fresh = tmp_path / "new"
    proc = run_cli("train", "--out", str(fresh), "--data", str(tmp_path / "typo.txt"), *FAST)
    assert proc.returncode == 2 and not fresh.exists()  # not even an empty directory


def test_a_second_training_into_the_same_out_fails_at_once_naming_the_first(tmp_path):
    """Finding 2: two trainings into one --out both reported success and the first one's model was gone."""
    import signal
    import time

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    # Ctrl-C as in a terminal: a child inherits an ignored SIGINT (as a shell's background job does, and as this
    # process may after an earlier test), and Python then keeps ignoring it
    first = subprocess.Popen(
        [sys.executable, "-m", "gptedu", "train", "--out", str(tmp_path), *FAST, "--steps", "0", "--max-time", "120"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        assert first.stdout.readline().startswith("Model:")  # it is training (and holds the lock)
        started = time.monotonic()
        second = run_cli("train", "--out", str(tmp_path), *FAST, "--steps", "5")
        line = assert_one_line_error(second, "another training is writing into", str(tmp_path))
        assert f"pid {first.pid}" in line and "--out" in line
        assert time.monotonic() - started < 60  # at once, not after its own training
        assert first.poll() is None  # the first goes on
        first.send_signal(signal.SIGINT)  # Ctrl-C: one line, and a checkpoint to resume from
        out, err = first.communicate(timeout=180)  # a step and a save; generous for a loaded machine
        assert first.returncode == 130 and "Traceback" not in err, (first.returncode, out[-2000:], err[-2000:])
        assert err.strip().splitlines()[-1].startswith("gptedu train: interrupted at step")
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    from gptedu.checkpoint import load_checkpoint

    assert load_checkpoint(tmp_path / "ckpt.pt")["step"] > 0
    assert run_cli("train", "--out", str(tmp_path), *FAST, "--steps", "2", "--sample-tokens", "0").returncode == 0


CHECK_WITHOUT_TORCH = r"""
import contextlib, io, json, sys
from gptedu.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    results.append([code, err.getvalue()])
print(json.dumps({"torch": "torch" in sys.modules, "results": results}))
"""


def check_without_torch(*argvs: list[str]) -> list[tuple[int, str]]:
    """Run ``main(argv)`` for each argv in one fresh interpreter; assert PyTorch was never imported."""
    import json

    proc = subprocess.run([sys.executable, "-c", CHECK_WITHOUT_TORCH, json.dumps(list(argvs))],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["torch"] is False, "the mistakes must be found before PyTorch loads"
    return [tuple(r) for r in report["results"]]


INTERNAL_NAMES = ("max_steps", "max_time", "num_heads", "d_model", "context_len", "num_threads", "min_lr", "top_k")

BAD_OPTIONS = [
    (["train", "--num-heads", "0"], "--num-heads"),
    (["train", "--threads", "-1"], "--threads"),
    (["train", "--context-len", "0"], "--context-len"),
    (["train", "--d-model", "130"], "--d-model"),
    (["train", "--d-model", "64", "--num-heads", "5"], "--num-heads"),
    (["train", "--num-layers", "0"], "--num-layers"),
    (["train", "--batch-size", "0"], "--batch-size"),
    (["train", "--lr", "0"], "--lr"),
    (["train", "--lr", "nan"], "--lr"),
    (["train", "--min-lr", "1"], "--min-lr"),
    (["train", "--warmup", "1.5"], "--warmup"),
    (["train", "--decay", "step"], "--decay"),
    (["train", "--beta2", "1"], "--beta2"),
    (["train", "--max-time", "-5"], "--max-time"),
    (["train", "--steps", "-1"], "--steps"),
    (["train", "--steps", "0", "--max-time", "0"], "--max-time"),
    (["train", "--eval-batches", "0"], "--eval-batches"),
    (["train", "--train-fraction", "1"], "--train-fraction"),
    (["train", "--device", "gpu"], "--device"),
    (["train", "--sample-tokens", "-1"], "--sample-tokens"),
    (["train", "--steps", "ten"], "--steps"),
    (["generate", "--temperature", "-1"], "--temperature"),
    (["generate", "--top-k", "0"], "--top-k"),
    (["generate", "--top-p", "1.5"], "--top-p"),
    (["generate", "--max-new-tokens", "-1"], "--max-new-tokens"),
    (["generate", "--num-samples", "0"], "--num-samples"),
    (["generate", "--threads", "0"], "--threads"),
    (["generate", "--prompt", ""], "prompt is empty"),
]


def test_every_bad_option_is_one_line_naming_the_flag_before_torch_loads(tmp_path):
    """Finding 3: --num-heads 0 (ZeroDivisionError), --threads -1 (RuntimeError), --context-len 0 (blamed on the
    learning rate), messages naming internal fields, and every check only after PyTorch had loaded."""
    argvs = []
    for argv, _ in BAD_OPTIONS:
        if argv[0] == "train":
            argvs.append([*argv, "--out", str(tmp_path / "run")])
        else:
            argvs.append(["generate", "--checkpoint", str(tmp_path / "none.pt"), "--prompt", "A", *argv[1:]])
    for (argv, flag), (code, err) in zip(BAD_OPTIONS, check_without_torch(*argvs), strict=True):
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, (argv, err)
        assert flag in lines[0], (argv, lines[0])
        assert "Traceback" not in err and not any(name in lines[0] for name in INTERNAL_NAMES), (argv, lines[0])
    assert not (tmp_path / "run").exists()


def test_every_option_has_a_check():
    from gptedu.cli import CHECKS

    missing = [flag for flag, *_ in MODEL_OPTIONS + TRAIN_OPTIONS if flag not in CHECKS]
    assert missing == [], f"options parsed without a range check: {missing}"


def test_out_and_data_mistakes_are_found_before_torch_loads(tmp_path):
    """Finding 2: --out naming a file trained for five minutes, then died at the first save. Finding 3: a binary
    --data gave "'utf-8' codec can't decode byte" naming no file; a file of NUL bytes trained silently at loss 0."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a directory")
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"First Citizen:\n" + bytes([0x80, 0xFF, 0x00]) * 50)
    zeros = tmp_path / "zeros.txt"
    zeros.write_bytes(bytes(5000))
    single = tmp_path / "aaaa.txt"
    single.write_text("a" * 5000)
    short = tmp_path / "short.txt"
    short.write_text("To be, or not to be: that is the question.")
    out = ["--out", str(tmp_path / "run")]
    results = check_without_torch(
        ["train", "--out", str(a_file)],
        ["train", "--out", str(a_file / "sub")],
        ["train", *out, "--data", str(binary)],
        ["train", *out, "--data", str(zeros)],
        ["train", *out, "--data", str(single)],
        ["train", *out, "--data", str(short)],
        ["train", *out, "--data", str(tmp_path / "typo.txt")],
    )
    expected = [
        ("--out", str(a_file), "not a directory"),
        ("--out", "not a directory"),
        ("--data", str(binary), "not UTF-8", "offset 15"),
        ("--data", str(zeros), "NUL"),
        ("--data", str(single), "single distinct character"),
        ("--context-len", "short.txt"),
        ("typo.txt", "does not exist"),
    ]
    for (code, err), needles in zip(results, expected, strict=True):
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, err
        for needle in needles:
            assert needle in lines[0], (needle, lines[0])
    assert not (tmp_path / "run").exists()


def test_an_unwritable_out_is_refused_before_training(tmp_path):
    if os.geteuid() == 0:  # root writes anywhere a mode allows nothing: use a read-only filesystem instead
        target = "/sys/gptedu-test-out"
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        target = str(locked / "run")
    proc = run_cli("train", "--out", target, *FAST, "--steps", "2")
    assert_one_line_error(proc, "--out", target)
    assert "Model:" not in proc.stdout  # refused before building anything


CTRL_C_AT_IMPORT = r"""
import builtins, sys
real_import = builtins.__import__
def interrupting_import(name, *args, **kwargs):
    if name == "torch" or name.startswith("torch."):
        raise KeyboardInterrupt  # what Ctrl-C during the (seconds-long) torch import does
    return real_import(name, *args, **kwargs)
builtins.__import__ = interrupting_import
from gptedu.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("command", ["train", "generate"])
def test_ctrl_c_during_the_torch_import_is_one_line(trained_run, tmp_path, command):
    """Finding 3: Ctrl-C during the torch import printed a 30-line traceback."""
    out, _ = trained_run
    if command == "train":
        args = ["train", "--out", str(tmp_path / "run"), *FAST, "--steps", "2"]
    else:
        args = ["generate", "--checkpoint", str(out / "ckpt.pt"), "--prompt", "ROMEO:"]
    proc = subprocess.run([sys.executable, "-c", CTRL_C_AT_IMPORT, *args], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 130, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "interrupted" in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "run").exists()


CTRL_C_WHILE_SAVING = r"""
import io, os, signal, sys
import torch
from gptedu.cli import main
from gptedu.trainer import Trainer
real_save, real_step = torch.save, Trainer.train_step
def step(self):
    if self.step == 3:
        raise KeyboardInterrupt  # the first Ctrl-C, during training
    return real_step(self)
def save(obj, f, *args, **kwargs):
    buffer = io.BytesIO()
    real_save(obj, buffer, *args, **kwargs)
    data = buffer.getvalue()
    f.write(data[: len(data) // 2])
    os.kill(os.getpid(), signal.SIGINT)  # the second Ctrl-C, in the middle of writing the checkpoint
    f.write(data[len(data) // 2 :])
Trainer.train_step, torch.save = step, save
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_while_saving_never_leaves_a_half_written_checkpoint(tmp_path):
    from gptedu.checkpoint import load_checkpoint

    args = ["train", "--out", str(tmp_path), *FAST, "--steps", "50"]
    proc = subprocess.run([sys.executable, "-c", CTRL_C_WHILE_SAVING, *args], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 130, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "interrupted again while saving" in lines[0] and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".gptedu")) == ["ckpt.pt"]
    assert load_checkpoint(tmp_path / "ckpt.pt")["step"] == 3  # complete, and verified by its checksums


DEMO_ONLY = r"""
import sys
from gptedu.cli import main
out = sys.argv[1]
assert main(["train", "--out", out, "--preset", "tiny", "--steps", "3", "--eval-interval", "0", "--eval-batches", "1",
             "--no-progress", "--threads", "1", "--sample-tokens", "20"]) == 0
assert main(["generate", "--checkpoint", out + "/ckpt.pt", "--prompt", "A", "--max-new-tokens", "5"]) == 0
course = {"matplotlib", "nbgrader", "jupyter_core", "jupyterlab", "notebook", "IPython", "ipykernel", "nbformat",
          "nbclient", "safetensors", "tiktoken", "regex", "transformers", "hypothesis", "pytest", "jupytext"}
print(sorted(course & {name.split(".")[0] for name in sys.modules}))
"""


def test_the_demo_needs_only_the_demo_requirements(tmp_path):
    """Finding 4: `make demo` installed the whole course stack (1.6 GB) to train a model. It installs
    requirements-demo.txt (= pyproject's dependencies); training and generating must import nothing else."""
    import re

    import tomllib

    root = Path(__file__).resolve().parents[1]
    pins = [line.split("#")[0].strip() for line in (root / "requirements-demo.txt").read_text().splitlines()]
    demo = {re.split(r"[<>=!~ \[]", pin)[0].lower() for pin in pins if pin}
    deps = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    assert demo == {re.split(r"[<>=!~ \[]", dep)[0].lower() for dep in deps} == {"torch", "numpy", "tqdm"}
    makefile = (root / "Makefile").read_text()
    assert re.search(r"^demo: \$\(DEMO_STAMP\)$", makefile, re.MULTILINE)
    assert "requirements.txt" not in makefile.split("$(DEMO_STAMP):")[1].split("\n\n")[0]
    proc = subprocess.run([sys.executable, "-c", DEMO_ONLY, str(tmp_path / "run")], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]", "the demo imported part of the course stack"


def test_library_errors_reach_the_user_in_flags_not_field_names(trained_run, capsys):
    """Finding 3: errors named internal fields (max_steps, max_time) instead of flags."""
    out, _ = trained_run
    assert main(["train", "--out", str(out), "--resume", "--min-lr", "0.5", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--min-lr" in err[0] and "--lr" in err[0], err
    assert not any(name in err[0] for name in INTERNAL_NAMES), err[0]


def test_resume_trains_on_the_runs_own_text(tmp_path, capsys):
    corpus = tmp_path / "mine.txt"
    corpus.write_text("to be or not to be, that is the question\n" * 300)
    out = ["--out", str(tmp_path / "run"), "--no-progress", "--sample-tokens", "0", "--threads", "1"]
    assert main(["train", *out, "--data", str(corpus), *FAST, "--steps", "3"]) == 0
    assert main(["train", *out, "--resume", "--steps", "5"]) == 0, capsys.readouterr().err
    from gptedu.checkpoint import load_checkpoint

    state = load_checkpoint(tmp_path / "run" / "ckpt.pt")
    assert state["step"] == 5 and state["train_config"]["data_path"] == str(corpus)
