"""The step-based trainer, its schedule and optimizer, checkpoints, resume, and device/seed helpers."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from gptedu.char.model import CharGPTConfig, GPTModel
from gptedu.checkpoint import (
    CheckpointError,
    CheckpointNotFoundError,
    load_checkpoint,
    load_for_generation,
    save_checkpoint,
)
from gptedu.device import make_generator, pick_device, seed_everything
from gptedu.trainer import TrainConfig, Trainer, make_optimizer, presets

TINY_MODEL = CharGPTConfig(d_model=32, num_heads=2, d_ff=64, context_len=16, num_layers=1)


def tiny_train_config(**overrides) -> TrainConfig:
    values = dict(
        max_steps=12, batch_size=8, lr=1e-2, min_lr=1e-3, warmup_fraction=0.2, eval_interval=4, eval_batches=2,
        max_time=None, seed=0, device="cpu", progress=False, log_evals=False, fused=False, num_threads=1,
    )  # fmt: skip
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="module")
def text(corpus_text) -> str:
    return corpus_text[:40_000]


# --- schedule, optimizer ----------------------------------------------------------------------------------------


def test_schedule_warmup_peak_cosine_end_over_a_step_budget():
    from gptedu.trainer import scheduled_lr, step_lr

    cfg = TrainConfig(max_steps=100, max_time=None, warmup_fraction=0.1, lr=1e-3, min_lr=1e-4)
    assert step_lr(0, 0.0, cfg) == pytest.approx(1e-4)  # lr / (warmup steps) on the first update
    assert step_lr(4, 0.0, cfg) == pytest.approx(5e-4)
    assert step_lr(9, 0.0, cfg) == pytest.approx(1e-3)  # warmup ends at the peak, 10% into the budget
    assert step_lr(54, 0.0, cfg) == pytest.approx((1e-3 + 1e-4) / 2)  # half way through the cosine
    assert step_lr(99, 0.0, cfg) == pytest.approx(1e-4)  # the last update runs at min_lr
    assert step_lr(500, 0.0, cfg) == pytest.approx(1e-4)  # and it stays there
    decay = [step_lr(s, 0.0, cfg) for s in range(9, 100)]
    assert all(a >= b for a, b in zip(decay, decay[1:], strict=False))
    no_warmup = TrainConfig(max_steps=10, warmup_fraction=0.0, lr=3e-3)
    assert step_lr(0, 0.0, no_warmup) == scheduled_lr(0.1, no_warmup) > 2.7e-3  # no warmup: near the peak at once
    with pytest.raises(ValueError, match="needs a budget"):
        TrainConfig(max_steps=None, max_time=None)


def test_schedule_decays_linearly_by_default_and_old_plans_keep_their_cosine():
    from gptedu.trainer import scheduled_lr

    linear = TrainConfig(max_steps=100, max_time=None, warmup_fraction=0.1, lr=1e-3, min_lr=0.0)
    assert linear.decay == "linear" and TrainConfig().decay == "linear"
    assert scheduled_lr(0.1, linear) == pytest.approx(1e-3)
    assert scheduled_lr(0.325, linear) == pytest.approx(0.75e-3)  # a quarter of the decay: a quarter of the drop
    assert scheduled_lr(0.55, linear) == pytest.approx(0.5e-3)
    assert scheduled_lr(1.0, linear) == pytest.approx(0.0)
    cosine = dataclasses.replace(linear, decay="cosine")
    assert scheduled_lr(0.325, cosine) == pytest.approx(0.5e-3 * (1 + math.cos(math.pi / 4)))
    assert scheduled_lr(0.55, cosine) == pytest.approx(0.5e-3)
    # a checkpoint written before ``decay`` existed resumes along the cosine it started on
    saved = {k: v for k, v in linear.to_dict().items() if k != "decay"}
    assert TrainConfig.from_dict(saved).decay == "cosine"
    assert TrainConfig.from_dict(linear.to_dict()).decay == "linear"
    with pytest.raises(ValueError, match="decay must be one of linear, cosine"):
        TrainConfig(decay="step")


def test_schedule_follows_whichever_budget_ends_the_run():
    from gptedu.trainer import plan_progress, step_lr

    cfg = TrainConfig(max_steps=3000, max_time=300.0, warmup_fraction=0.05, lr=1e-3, min_lr=1e-4)
    # a slow machine: 100 steps in 300 s. The clock ends the run, and warmup and decay follow the clock.
    assert plan_progress(100, 300.0, cfg) == 1.0 and plan_progress(50, 150.0, cfg) == 0.5
    assert step_lr(5, 7.5, cfg) == pytest.approx(0.5e-3)  # half way through the warmup after 7.5 of 300 s
    assert step_lr(5, 15.0, cfg) == pytest.approx(1e-3)  # peak at 5% of the time, whatever the step count
    assert step_lr(50, 157.5, cfg) == pytest.approx((1e-3 + 1e-4) / 2)
    assert step_lr(99, 300.0, cfg) == pytest.approx(1e-4)
    # a fast machine: 3000 steps in 100 s. The step count ends it, and the schedule follows the steps.
    assert step_lr(149, 5.0, cfg) == pytest.approx(1e-3)
    assert step_lr(1574, 50.0, cfg) == pytest.approx((1e-3 + 1e-4) / 2)
    assert plan_progress(3000, 100.0, cfg) == 1.0


def test_weight_decay_only_on_matrices():
    model = GPTModel.from_config(TINY_MODEL)
    opt = make_optimizer(model, TrainConfig(weight_decay=0.1))
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    ids = {id(p) for p in decay["params"]}
    assert id(model.fc_out.weight) in ids and id(model.embedding.weight) in ids
    assert id(model.fc_out.bias) not in ids and id(model.decoder.norm.weight) not in ids
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_config_rejects_nonsense():
    with pytest.raises(ValueError, match="min_lr"):
        TrainConfig(lr=1e-3, min_lr=1e-2)
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)


def test_presets_are_fresh_copies():
    a, b = presets(), presets()
    a["default"][1].max_time = -5
    assert b["default"][1].max_time > 0 and presets()["default"][1].max_time > 0


def test_one_default_recipe():
    import gptedu.configs as configs
    import gptedu.trainer as trainer_module

    assert presets()["default"][1] == TrainConfig() == configs.DEFAULT_TRAIN  # TrainConfig's defaults are the preset
    assert not [name for name in vars(trainer_module) if "PRESET" in name.upper() and name != "presets"]


# --- training ----------------------------------------------------------------------------------------------------


def test_a_few_dozen_steps_lower_the_loss(text):
    trainer = Trainer(tiny_train_config(max_steps=40, eval_interval=20), TINY_MODEL, text=text)
    history = trainer.train()
    assert trainer.step == 40 and history["eval_step"] == [0, 20, 40]
    assert history["val_loss"][0] == pytest.approx(math.log(trainer.tokenizer.vocab_size), abs=0.3)
    assert history["val_loss"][-1] < history["val_loss"][0] - 0.6
    assert sum(history["loss"][-5:]) / 5 < sum(history["loss"][:5]) / 5 - 0.6
    assert len(history["loss"]) == len(history["lr"]) == 40 and history["step"] == list(range(1, 41))


def test_loss_estimates_are_deterministic(text):
    trainer = Trainer(tiny_train_config(), TINY_MODEL, text=text)
    assert trainer.estimate_loss() == trainer.estimate_loss()


def test_any_module_returning_logits_can_be_trained(text):
    class Bigram(nn.Module):
        def __init__(self, vocab: int):
            super().__init__()
            self.table = nn.Embedding(vocab, vocab)

        def forward(self, x):
            return self.table(x)  # (batch, seq, vocab)

    probe = Trainer(tiny_train_config(max_steps=0), TINY_MODEL, text=text)
    trainer = Trainer(
        tiny_train_config(max_steps=30, lr=0.1), TINY_MODEL, text=text, model=Bigram(probe.tokenizer.vocab_size)
    )
    history = trainer.train()
    assert history["val_loss"][-1] < history["val_loss"][0] - 0.3


def test_max_time_stops_early_and_records_where(text, tmp_path):
    trainer = Trainer(tiny_train_config(max_steps=1000, max_time=1e-6, out_dir=str(tmp_path)), TINY_MODEL, text=text)
    history = trainer.train()
    assert trainer.step == 1 and history["eval_step"] == [0, 1]
    assert load_checkpoint(tmp_path / "ckpt.pt")["step"] == 1


def test_text_outside_the_vocabulary_is_reported(text):
    from gptedu.data import CharTokenizer

    with pytest.raises(ValueError, match="does not fit the tokenizer"):
        Trainer(tiny_train_config(), TINY_MODEL, text=text + "§", tokenizer=CharTokenizer.from_text(text))


# --- checkpoints -------------------------------------------------------------------------------------------------


def test_checkpoint_round_trip_reproduces_logits_exactly(text, tmp_path):
    trainer = Trainer(tiny_train_config(max_steps=8, out_dir=str(tmp_path)), TINY_MODEL, text=text)
    trainer.train()
    model, tokenizer = load_for_generation(tmp_path / "ckpt.pt")
    assert tokenizer.chars == trainer.tokenizer.chars
    assert not model.training
    x = torch.tensor([tokenizer.encode("ROMEO: what is")])
    trainer.model.eval()
    assert torch.equal(model(x), trainer.model(x))
    state = load_checkpoint(tmp_path / "ckpt.pt")
    assert state["step"] == 8 and state["model_config"]["vocab_size"] == tokenizer.vocab_size
    assert state["train_config"]["max_steps"] == 8 and state["history"]["eval_step"] == [0, 4, 8]
    assert set(state) >= {"optimizer_state", "rng", "tokenizer_chars", "model_state"}


def test_resume_continues_exactly_like_an_uninterrupted_run(text, tmp_path):
    whole = Trainer(tiny_train_config(), TINY_MODEL, text=text)
    whole.train()

    first = Trainer(tiny_train_config(out_dir=str(tmp_path)), TINY_MODEL, text=text)
    first.train(until_step=6)
    assert first.step == 6
    resumed = Trainer.from_checkpoint(tmp_path / "ckpt.pt", text=text)
    assert resumed.step == 6
    resumed.train()

    assert resumed.history["loss"] == whole.history["loss"]  # bit-for-bit, every step
    assert resumed.history["val_loss"] == whole.history["val_loss"]
    for (name, a), b in zip(resumed.model.state_dict().items(), whole.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_resume_can_extend_the_plan(text, tmp_path):
    Trainer(tiny_train_config(max_steps=4, out_dir=str(tmp_path)), TINY_MODEL, text=text).train()
    resumed = Trainer.from_checkpoint(tmp_path / "ckpt.pt", text=text, max_steps=6)
    resumed.train()
    assert resumed.step == 6 and load_checkpoint(tmp_path / "ckpt.pt")["step"] == 6


def test_failed_save_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    save_checkpoint({"model_state": {}, "model_config": {}, "tokenizer_chars": ["a"], "step": 1}, path)

    def crash_mid_write(obj, fh, *args, **kwargs):
        fh.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", crash_mid_write)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint({"model_state": {}, "model_config": {}, "tokenizer_chars": ["a"], "step": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temporary file left behind


def test_missing_corrupt_and_foreign_checkpoints_raise_clear_errors(text, tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="No checkpoint at"):
        load_checkpoint(tmp_path / "nope.pt")
    Trainer(tiny_train_config(max_steps=1, out_dir=str(tmp_path)), TINY_MODEL, text=text).train()
    good = (tmp_path / "ckpt.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(tmp_path / "truncated.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a gptedu checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_incompatible_checkpoint_names_the_mismatch(text, tmp_path):
    Trainer(tiny_train_config(max_steps=1, out_dir=str(tmp_path)), TINY_MODEL, text=text).train()
    other = CharGPTConfig(d_model=48, num_heads=2, d_ff=64, context_len=16, num_layers=1)
    with pytest.raises(CheckpointError, match=r"do not fit this model.*shape mismatch"):
        load_for_generation(tmp_path / "ckpt.pt", model_factory=lambda cfg: GPTModel.from_config(other))


# --- device and seeds --------------------------------------------------------------------------------------------


def test_pick_device(monkeypatch):
    assert pick_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device(None) == torch.device("cpu") == pick_device("auto")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        pick_device("cuda")
    with pytest.raises(ValueError, match="MPS is not available"):
        pick_device("mps")
    with pytest.raises(ValueError, match="Unknown device"):
        pick_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device(None) == torch.device("cuda")  # cuda wins over everything when present


def test_seeds_make_runs_repeatable():
    seed_everything(3)
    a = torch.rand(4)
    seed_everything(3)
    assert torch.equal(a, torch.rand(4))
    assert torch.equal(torch.rand(3, generator=make_generator(5)), torch.rand(3, generator=make_generator(5)))


def test_fused_model_trains_like_the_teaching_model_and_shares_checkpoints(text, tmp_path):
    plain = Trainer(tiny_train_config(max_steps=6), TINY_MODEL, text=text)
    fused = Trainer(tiny_train_config(max_steps=6, fused=True, out_dir=str(tmp_path)), TINY_MODEL, text=text)
    assert type(fused.model.decoder.layers[0].attn).__name__ == "FusedMultiHeadAttention"
    plain.train()
    fused.train()
    assert fused.history["loss"] == pytest.approx(plain.history["loss"], abs=1e-4)  # same maths, other kernels
    teaching, tokenizer = load_for_generation(tmp_path / "ckpt.pt", model_factory=GPTModel.from_config)
    x = torch.tensor([tokenizer.encode("ROMEO: what is")])
    fused.model.eval()
    torch.testing.assert_close(teaching(x), fused.model(x), atol=1e-5, rtol=1e-5)


def test_a_diverging_run_stops_with_advice_and_keeps_its_checkpoint(text, tmp_path):
    config = tiny_train_config(max_steps=50, lr=1e30, min_lr=0.0, warmup_fraction=0.0, eval_interval=1)
    trainer = Trainer(config, TINY_MODEL, text=text)
    trainer.config.out_dir = str(tmp_path)
    with pytest.raises(FloatingPointError, match="learning rate .* too high"):
        trainer.train()
    saved = load_checkpoint(tmp_path / "ckpt.pt")
    assert 1 <= saved["step"] < trainer.step  # the last good state, not the diverged one


# --- the budget: schedule, resume, progress bar, summary, threads (a fake clock: 1 s per step) ------------------------


class FakeClock:
    """Stands in for the trainer module's ``time``: ``perf_counter`` only moves when a training step runs."""

    def __init__(self) -> None:
        self.now = 1000.0

    def perf_counter(self) -> float:
        return self.now


@pytest.fixture
def slow_machine(monkeypatch):
    """Every training step takes 1 s of (fake) time: a machine far too slow for the default plan's step count."""
    import gptedu.trainer as trainer_module

    clock = FakeClock()
    monkeypatch.setattr(trainer_module, "time", clock)
    step = trainer_module.Trainer.train_step

    def slow_step(self):
        clock.now += 1.0
        return step(self)

    monkeypatch.setattr(trainer_module.Trainer, "train_step", slow_step)
    return clock


def default_plan(**changes) -> TrainConfig:
    """The default preset's plan (its warmup and its step cap, whatever they are), on the tiny model's budget."""
    base = dict(batch_size=4, eval_interval=0, eval_batches=1, device="cpu", progress=False, log_evals=False)
    return dataclasses.replace(presets()["default"][1], **{**base, "fused": False, "num_threads": 1, **changes})


def test_a_run_stopped_by_the_clock_warms_up_and_decays_over_its_time(text, slow_machine):
    cfg = default_plan(max_time=100.0)  # 100 steps fit: far fewer than any step count the preset plans
    trainer = Trainer(cfg, TINY_MODEL, text=text)
    lrs = trainer.train()["lr"]
    assert trainer.step == 100
    peak = lrs.index(max(lrs))
    assert max(lrs) == pytest.approx(cfg.lr, rel=0.02)  # the warmup completes...
    assert peak <= 10, f"the rate peaked at step {peak} of 100: the warmup is counted in steps, not in the budget"
    assert lrs[-1] <= cfg.min_lr + 0.02 * (cfg.lr - cfg.min_lr)  # ...and the cosine reaches min_lr at the end
    assert lrs[55] == pytest.approx((cfg.lr + cfg.min_lr) / 2, rel=0.1)  # half way through time: half way down


def test_a_run_stopped_by_its_steps_follows_the_steps(text, slow_machine):
    cfg = default_plan(max_time=1e6, max_steps=40)
    trainer = Trainer(cfg, TINY_MODEL, text=text)
    lrs = trainer.train()["lr"]
    assert trainer.step == 40
    assert lrs[1] == pytest.approx(cfg.lr * 2 / (40 * cfg.warmup_fraction))
    assert lrs[-1] == pytest.approx(cfg.min_lr)


def test_resume_continues_a_time_budget_where_it_stopped(text, tmp_path, slow_machine):
    whole = Trainer(default_plan(max_time=60.0), TINY_MODEL, text=text)
    whole.train()
    first = Trainer(default_plan(max_time=60.0, out_dir=str(tmp_path)), TINY_MODEL, text=text)
    first.train(until_step=25)  # interrupted (Ctrl-C, a closed laptop) after 25 of its 60 seconds
    resumed = Trainer.from_checkpoint(tmp_path / "ckpt.pt", text=text)
    resumed.train()
    assert resumed.step == 60, "max_time is the plan's budget, resumed runs included"
    assert resumed.history["lr"] == pytest.approx(whole.history["lr"], rel=1e-6)  # the same schedule, no restart
    assert "Cut short at 4" in first.summary() and "--resume" in first.summary()
    assert "The plan is complete" in resumed.summary()


def test_resume_with_a_larger_budget_goes_on_from_the_current_rate(text, tmp_path):
    Trainer(tiny_train_config(out_dir=str(tmp_path)), TINY_MODEL, text=text).train(until_step=8)
    before = load_checkpoint(tmp_path / "ckpt.pt")["history"]["lr"]
    resumed = Trainer.from_checkpoint(tmp_path / "ckpt.pt", text=text, max_steps=24)  # --resume --steps 24
    after = resumed.train()["lr"][8:]
    assert resumed.step == 24
    from gptedu.trainer import step_lr

    assert after[0] == pytest.approx(step_lr(8, 0.0, tiny_train_config()))  # the rate the old plan had next
    assert after[0] <= before[-1]  # no jump back up towards the peak
    assert all(a >= b for a, b in zip(after, after[1:], strict=False)) and after[-1] == pytest.approx(1e-3)
    again = Trainer.from_checkpoint(tmp_path / "ckpt.pt", text=text)  # the extended plan is saved with the run
    assert again.train()["lr"] == resumed.history["lr"] and again.last_run["steps"] == 0
    assert "Nothing left to train" in again.summary()


def test_progress_bar_counts_down_the_budget_that_ends_the_run(text, slow_machine, capsys):
    trainer = Trainer(default_plan(max_time=100.0, max_steps=3000, progress=True), TINY_MODEL, text=text)
    trainer.train()
    bar = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert "100%" in bar and "step 100 | 1:40 of 1:40 | 0:00 left" in bar, bar  # the clock's budget...
    assert "/3000" not in bar and "of 3,000" not in bar, bar  # ...not the step count it never reached


def test_progress_text_gives_a_true_eta():
    from gptedu.trainer import progress_text

    both = TrainConfig(max_time=285.0, max_steps=3000)
    # a slow machine (0.2 s per step): the clock ends the run, whatever the step count would say (2,388 x 0.2 s)
    assert progress_text(612, 103.0, both, 0.2) == "step 612 | 1:43 of 4:45 | 3:02 left"
    # a fast machine (0.05 s per step): the steps end it first
    assert progress_text(2000, 100.0, both, 0.05) == "step 2,000 of 3,000 | 0:50 left"
    assert progress_text(612, 43.0, TrainConfig(max_time=None, max_steps=3000), 0.07) == "step 612 of 3,000 | 2:47 left"


def test_summary_says_how_far_the_run_got_and_what_to_do(text, slow_machine):
    trainer = Trainer(default_plan(max_time=50.0), TINY_MODEL, text=text)
    trainer.train()
    summary = trainer.summary()
    assert summary.startswith("Trained 50 steps") and "50 s budget ended it" in summary
    assert "Undertrained" in summary and "--max-time" in summary, summary
    stepped = Trainer(tiny_train_config(), TINY_MODEL, text=text)
    stepped.train()
    assert "12-step budget ended it" in stepped.summary() and "--steps" in stepped.summary()


def test_threads_follow_the_idle_cpus(monkeypatch, text):
    import gptedu.device as device

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(device, "usable_cpus", lambda: 2)
    monkeypatch.setattr(device, "idle_cpus", lambda window=0.2: 0.4)  # another program busy on both cores
    assert device.pick_threads("train") == 1
    monkeypatch.setattr(device, "idle_cpus", lambda window=0.2: 1.9)  # a quiet machine
    assert device.pick_threads("train") == 2
    assert device.pick_threads("generate") == 1  # one sequence: threads only wait for each other
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert device.pick_threads("train") == 3 == device.pick_threads("generate")  # torchrun sets it per process
    monkeypatch.delenv("OMP_NUM_THREADS")
    try:
        Trainer(tiny_train_config(num_threads=None), TINY_MODEL, text=text)
        assert torch.get_num_threads() == 2  # the trainer asks pick_threads when num_threads is None
    finally:
        torch.set_num_threads(1)


def test_threads_already_right_leave_pytorchs_setup_alone(monkeypatch, text):
    """torch.set_num_threads also turns MKL's dynamic threading off: a quiet machine keeps what import torch set up."""
    from gptedu.device import use_threads

    calls: list[int] = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (calls.append(n), real(n)))
    real(1)
    use_threads(1)
    Trainer(tiny_train_config(num_threads=1), TINY_MODEL, text=text)
    assert calls == [], "set_num_threads was called with the count PyTorch already had"
    try:
        use_threads(2)
        assert calls == [2] and torch.get_num_threads() == 2  # a different count is set
    finally:
        real(1)
    with pytest.raises(ValueError, match=">= 1"):
        use_threads(0)


def test_a_time_budget_that_buys_few_steps_trains_smaller_batches(text, slow_machine, monkeypatch):
    from gptedu.trainer import fitted_batch_size

    forward = Trainer.forward_pass

    def slow_forward(self, generator):  # 0.5 s per forward pass: a training step takes ~1.5 s
        slow_machine.now += 0.5
        return forward(self, generator)

    monkeypatch.setattr(Trainer, "forward_pass", slow_forward)

    cfg = TrainConfig(batch_size=32, target_steps=1000, min_batch_size=8)
    assert fitted_batch_size(cfg, 2000) == 32 == fitted_batch_size(cfg, 1000)
    assert fitted_batch_size(cfg, 500) == 16 and fitted_batch_size(cfg, 300) == 8 == fitted_batch_size(cfg, 20)
    assert fitted_batch_size(dataclasses.replace(cfg, target_steps=None), 20) == 32
    default = presets()["default"][1]  # one thread on 2 quiet cores buys ~1,080 steps of 32 in 285 s, two ~2,000
    assert fitted_batch_size(default, 1080) == 16 and fitted_batch_size(default, 2000) == 32
    slow = Trainer(default_plan(max_time=100.0, batch_size=32, target_steps=400), TINY_MODEL, text=text)
    slow.train()  # the timed forward passes say the budget buys ~65 steps of 32, a sixth of the target
    assert slow.config.batch_size == 8 and slow.history["step"][0] == 1
    assert slow.state_dict()["train_config"]["batch_size"] == 8  # a resume goes on with the batch it chose
    assert "batches of 8 windows, not 32" in slow.summary()
    fast = Trainer(default_plan(max_time=100.0, batch_size=32, target_steps=50), TINY_MODEL, text=text)
    fast.train()
    assert fast.config.batch_size == 32
    stepped_plan = default_plan(max_time=100.0, max_steps=50, batch_size=32, target_steps=400)
    stepped = Trainer(stepped_plan, TINY_MODEL, text=text)
    stepped.train()  # the step budget ends this plan first: its batches are the user's
    assert stepped.config.batch_size == 32 and stepped.step == 50


def test_smaller_model_halves_width_and_layers():
    from gptedu.configs import DEFAULT_MODEL, smaller_model

    half = smaller_model(DEFAULT_MODEL)
    assert (half.num_layers, half.d_model, half.d_ff, half.num_heads) == (2, 64, 128, 4)
    assert (half.context_len, half.vocab_size) == (DEFAULT_MODEL.context_len, DEFAULT_MODEL.vocab_size)
    assert smaller_model(CharGPTConfig(d_model=96, num_heads=5, d_ff=96, num_layers=3)).num_heads == 4  # 48 % 4
    assert smaller_model(CharGPTConfig(d_model=32, num_heads=2, d_ff=64, num_layers=1)) is None  # 16: too narrow


def test_a_budget_too_short_for_the_model_trains_a_smaller_one(text, slow_machine, monkeypatch, tmp_path):
    forward = Trainer.forward_pass

    def slow_forward(self, generator):  # 0.5 s per forward pass of the 2 x 64 model, 1/8 of that for a smaller one
        slow_machine.now += 0.5 if self.model_config.d_model == 64 else 0.5 / 8
        return forward(self, generator)

    monkeypatch.setattr(Trainer, "forward_pass", slow_forward)
    wide = CharGPTConfig(d_model=64, num_heads=2, d_ff=128, context_len=16, num_layers=2)
    plan = default_plan(max_time=100.0, out_dir=str(tmp_path), log_evals=True)
    trainer = Trainer(plan, wide, text=text)
    trainer.train()  # ~65 steps x 4 windows x 16 = 4k tokens for 0.07M parameters: far below 2 per parameter
    small = trainer.model_config
    assert (small.d_model, small.num_layers, small.d_ff) == (32, 1, 64)
    assert sum(p.numel() for p in trainer.model.parameters()) < 20_000
    assert trainer.history["eval_step"][0] == 0 and len(trainer.history["eval_step"]) == 2  # step 0: the small one
    assert load_checkpoint(tmp_path / "ckpt.pt")["model_config"]["d_model"] == 32  # generate and resume get it
    summary = trainer.summary()
    assert "smaller model (1 layer x 32 wide" in summary and "instead of the 2 x 64 one" in summary, summary
    assert "min_tokens_per_param" in summary and "--max-time" in summary
    kept = Trainer(default_plan(max_time=100.0, min_tokens_per_param=None), wide, text=text)
    kept.train()  # None: the model given, whatever the budget
    assert kept.model_config.d_model == 64 and "smaller model" not in kept.summary()
    stepped = Trainer(default_plan(max_time=100.0, max_steps=10), wide, text=text)
    stepped.train()  # the step budget ends this plan first: its model is the user's
    assert stepped.model_config.d_model == 64
    own = Trainer(default_plan(max_time=100.0), model=GPTModel.from_config(dataclasses.replace(wide, vocab_size=65)),
                  text=text)  # fmt: skip
    own.train()  # a model built by the caller is never replaced
    assert own.model_config.d_model == 64


def test_model_options_on_the_command_line_keep_the_shape():
    from gptedu.cli import _configs_from_args, build_parser

    _, plan = _configs_from_args(build_parser().parse_args(["train"]))
    assert plan.min_tokens_per_param == presets()["default"][1].min_tokens_per_param is not None
    _, plan = _configs_from_args(build_parser().parse_args(["train", "--num-layers", "6"]))
    assert plan.min_tokens_per_param is None


# --- checkpoints are never lost (issue 14, finding 2) ----------------------------------------------------------------


def test_two_runs_saving_to_one_path_keep_both_and_a_resume_keeps_its_own(text, tmp_path):
    from gptedu.checkpoint import history_paths, previous_path

    ckpt = tmp_path / "ckpt.pt"
    first = Trainer(tiny_train_config(max_steps=4, out_dir=str(tmp_path)), TINY_MODEL, text=text)
    first.train()  # saves at step 4
    second = Trainer(tiny_train_config(max_steps=8, out_dir=str(tmp_path)), TINY_MODEL, text=text)
    assert second.run_id != first.run_id
    second.train()  # saves at steps 4 and 8: the first run's file is kept aside, never overwritten
    assert [p.name for p in history_paths(ckpt)] == ["ckpt.1.pt"]
    assert load_checkpoint(tmp_path / "ckpt.1.pt")["run_id"] == first.run_id
    assert load_checkpoint(ckpt)["step"] == 8 and load_checkpoint(previous_path(ckpt))["step"] == 4
    resumed = Trainer.from_checkpoint(ckpt, text=text, max_steps=12)
    assert resumed.run_id == second.run_id  # the same run goes on: its files rotate, no new history
    resumed.train()
    assert [p.name for p in history_paths(ckpt)] == ["ckpt.1.pt"]
    assert load_checkpoint(ckpt)["step"] == 12 and load_checkpoint(previous_path(ckpt))["step"] == 8


def test_a_damaged_checkpoint_is_refused_with_the_file_to_restore(text, tmp_path):
    import zipfile

    from gptedu.checkpoint import CheckpointDamagedError

    trainer = Trainer(tiny_train_config(max_steps=8, out_dir=str(tmp_path)), TINY_MODEL, text=text)
    trainer.train()  # ckpt.pt (step 8) and ckpt.prev.pt (step 4)
    ckpt = tmp_path / "ckpt.pt"
    with zipfile.ZipFile(ckpt) as archive:
        entry = max(archive.infolist(), key=lambda i: i.file_size)
    data = bytearray(ckpt.read_bytes())
    start = entry.header_offset + 30 + len(entry.filename.encode()) + len(entry.extra) + entry.file_size // 2
    data[start : start + 16] = bytes(16)  # zeros over part of a tensor: a valid zip, a silently different model
    ckpt.write_bytes(bytes(data))
    for load in (load_checkpoint, load_for_generation, lambda p: Trainer.from_checkpoint(p, text=text)):
        with pytest.raises(CheckpointDamagedError, match=r"checkpoint damaged: .* restore .*ckpt\.prev\.pt"):
            load(ckpt)
    assert load_checkpoint(tmp_path / "ckpt.prev.pt")["step"] == 4  # the file to restore is sound
