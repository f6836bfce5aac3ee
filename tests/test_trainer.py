"""The step-based trainer, its schedule and optimizer, checkpoints, resume, and device/seed helpers."""

from __future__ import annotations

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
from gptedu.trainer import TrainConfig, Trainer, lr_at, make_optimizer, presets

TINY_MODEL = CharGPTConfig(d_model=32, num_heads=2, d_ff=64, context_len=16, num_layers=1)


def tiny_train_config(**overrides) -> TrainConfig:
    values = dict(
        max_steps=12, batch_size=8, lr=1e-2, min_lr=1e-3, warmup_steps=2, eval_interval=4, eval_batches=2,
        max_time=None, seed=0, device="cpu", progress=False, log_evals=False,
    )  # fmt: skip
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="module")
def text(corpus_text) -> str:
    return corpus_text[:40_000]


# --- schedule, optimizer ----------------------------------------------------------------------------------------


def test_schedule_warmup_peak_cosine_end():
    cfg = TrainConfig(max_steps=110, warmup_steps=10, lr=1e-3, min_lr=1e-4)
    assert lr_at(0, cfg) == pytest.approx(1e-4)  # lr / warmup on the first update
    assert lr_at(4, cfg) == pytest.approx(5e-4)
    assert lr_at(9, cfg) == pytest.approx(1e-3)  # warmup ends at the peak
    assert lr_at(10, cfg) == pytest.approx(1e-3)  # cosine starts at the peak
    assert lr_at(60, cfg) == pytest.approx((1e-3 + 1e-4) / 2)  # half way through the cosine
    assert lr_at(110, cfg) == pytest.approx(1e-4)
    assert lr_at(500, cfg) == pytest.approx(1e-4)  # and stays at min_lr
    decay = [lr_at(s, cfg) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(decay, decay[1:], strict=False))
    assert lr_at(0, TrainConfig(warmup_steps=0, lr=3e-3)) == pytest.approx(3e-3)
    early_end = TrainConfig(max_steps=1000, lr_decay_steps=100, warmup_steps=0, lr=1.0, min_lr=0.0)
    assert lr_at(50, early_end) == pytest.approx(0.5) and lr_at(100, early_end) == 0.0


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
    a["default"][1].max_steps = -5
    assert b["default"][1].max_steps > 0 and presets()["default"][1].max_steps > 0


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
    config = tiny_train_config(max_steps=50, lr=1e30, min_lr=0.0, warmup_steps=0, eval_interval=1)
    trainer = Trainer(config, TINY_MODEL, text=text)
    trainer.config.out_dir = str(tmp_path)
    with pytest.raises(FloatingPointError, match="learning rate .* too high"):
        trainer.train()
    saved = load_checkpoint(tmp_path / "ckpt.pt")
    assert 1 <= saved["step"] < trainer.step  # the last good state, not the diverged one


def test_schedule_by_time_decays_when_the_clock_is_ahead_of_the_steps():
    cfg = TrainConfig(max_steps=110, warmup_steps=10, lr=1e-3, min_lr=1e-4, max_time=100.0, schedule_by_time=True)
    assert lr_at(5, cfg, time_fraction=0.9) == pytest.approx(6e-4)  # warmup stays step-based
    assert lr_at(20, cfg, time_fraction=0.0) == lr_at(20, TrainConfig(**{**cfg.to_dict(), "schedule_by_time": False}))
    assert lr_at(20, cfg, time_fraction=1.0) == pytest.approx(1e-4)  # out of time: the cosine has ended
    halfway = lr_at(20, cfg, time_fraction=60 / 110)  # the clock says step 60 of 110: half way through the cosine
    assert halfway == pytest.approx((1e-3 + 1e-4) / 2)
    assert lr_at(100, cfg, time_fraction=0.1) == lr_at(100, cfg)  # a fast machine follows the steps
    without_limit = TrainConfig(**{**cfg.to_dict(), "max_time": None})
    assert lr_at(20, without_limit, time_fraction=1.0) == lr_at(20, without_limit)


def test_schedule_by_time_reaches_min_lr_when_time_runs_out(text):
    cfg = tiny_train_config(max_steps=100_000, warmup_steps=0, max_time=1.5, schedule_by_time=True, eval_interval=0)
    trainer = Trainer(cfg, TINY_MODEL, text=text)
    history = trainer.train()
    assert trainer.step < 100_000
    assert history["lr"][0] == pytest.approx(cfg.lr)
    assert history["lr"][-1] < cfg.min_lr + 0.05 * (cfg.lr - cfg.min_lr)
