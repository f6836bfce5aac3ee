"""A step-based trainer for the character GPT: AdamW, warmup + decay schedule, clipping, evals, checkpoints.

One *step* is one batch and one optimizer update. Batches are random windows of one token tensor
(``gptedu.data.get_batch``), drawn from the first 90% of the text; the last 10% is the validation split.

    from gptedu.trainer import Trainer, TrainConfig
    from gptedu import CharGPTConfig
    trainer = Trainer(TrainConfig(max_steps=500, out_dir="runs/demo"), CharGPTConfig(num_heads=4))
    history = trainer.train()          # 500 steps or 285 s, whichever first; writes runs/demo/ckpt.pt at each eval
    print(trainer.sample("ROMEO:", 200))

    trainer = Trainer.from_checkpoint("runs/demo/ckpt.pt", max_steps=1000)   # resume; a larger budget decays on
    model, tokenizer = load_for_generation("runs/demo/ckpt.pt")              # just generate

Presets: ``presets()`` returns named ``(CharGPTConfig, TrainConfig)`` pairs (``"default"``, ``"tiny"``, ...); the
table and both dataclasses live in ``gptedu.configs`` and are re-exported here. Under ``torchrun`` the same code
trains data-parallel (see ``gptedu.distributed``).
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from gptedu.char.model import GPTModel
from gptedu.checkpoint import (
    CHECKPOINT_NAME,
    CheckpointError,
    build_model,
    load_checkpoint,
    load_for_generation,
    load_model_state,
    model_config_from,
    new_run_id,
    save_checkpoint,
)
from gptedu.configs import CharGPTConfig, TrainConfig, default_configs, presets, smaller_model
from gptedu.data import CharTokenizer, get_batch, load_tinyshakespeare, split_contiguous
from gptedu.device import pick_device, pick_threads, seed_everything, use_threads
from gptedu.distributed import DistInfo, all_reduce_sum, barrier, gather_objects, init_distributed

__all__ = [
    "TrainConfig",
    "Trainer",
    "build_model",
    "default_configs",
    "generate_ids",
    "load_for_generation",
    "make_optimizer",
    "plan_progress",
    "presets",
    "scheduled_lr",
    "step_lr",
]

_EVAL_SEED_OFFSET = 1_000_003  # eval batches come from their own fixed stream, the same at every eval
_RANK_SEED_STRIDE = 7_919  # each rank's batch stream is seeded differently


# --- model, optimizer, schedule ------------------------------------------------------------------------------------


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on the matrices (embeddings, linear weights) and none on biases and LayerNorms.

    Decay pulls weights towards zero; for a bias or a LayerNorm gain that only fights the job they do.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    try:  # one fused kernel for the whole update: ~3x faster than the default on a CPU, same maths
        return torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2), fused=True)
    except (RuntimeError, TypeError):  # a device (or an older PyTorch) without the fused kernel
        return torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2))


def plan_progress(step: int, elapsed: float, config: TrainConfig) -> float:
    """How far a run is through its budget: the larger of ``step / max_steps`` and ``elapsed / max_time``.

    Whichever budget runs out first ends the run, so the schedule follows that one: a slow machine that the clock
    stops warms up and decays over its seconds, a fast one over its steps, and every budget from one minute to an
    hour gets a whole schedule. ``elapsed`` is seconds of training (evaluations included) summed over resumed
    runs. 1.0 or more: the plan is complete.
    """
    fractions = [0.0]
    if config.max_steps is not None:
        fractions.append(step / config.max_steps if config.max_steps else 1.0)
    if config.max_time is not None:
        fractions.append(elapsed / config.max_time)
    return max(fractions)


def scheduled_lr(progress: float, config: TrainConfig) -> float:
    """The learning rate at ``progress`` (0 to 1, see ``plan_progress``) through the plan.

    A linear warmup from 0 to ``lr`` over the first ``warmup_fraction``, then a decay from ``lr`` down to
    ``min_lr`` at 1.0, where it stays: a straight line (``decay="linear"``) or half a cosine (``"cosine"``). A plan
    whose budget was enlarged on resume (``extended_at = (p0, lr0)``) goes on from ``lr0`` at ``p0`` and decays
    along the same shape to ``min_lr`` at the new end instead.
    """
    progress = min(max(progress, 0.0), 1.0)
    top, start = config.lr, config.warmup_fraction
    if config.extended_at is not None and progress >= config.extended_at[0]:
        start, top = config.extended_at
    elif progress < config.warmup_fraction:
        return config.lr * progress / config.warmup_fraction
    if start >= 1.0:
        return config.min_lr
    t = (progress - start) / (1.0 - start)
    left = 1.0 - t if config.decay == "linear" else 0.5 * (1.0 + math.cos(math.pi * t))  # 1 -> 0 over the decay
    return config.min_lr + left * (top - config.min_lr)


def step_lr(step: int, elapsed: float, config: TrainConfig) -> float:
    """The rate for update number ``step`` (0-based) taken after ``elapsed`` seconds: the schedule at the progress
    the plan will have reached by the end of that update's step count, so the first update of a step budget warms
    up from ``lr / (warmup_fraction * max_steps)`` and the last one runs at ``min_lr``."""
    return scheduled_lr(plan_progress(step + 1, elapsed, config), config)


def fitted_batch_size(config: TrainConfig, projected_steps: float) -> int:
    """The batch for a time budget that buys ``projected_steps`` updates at ``config.batch_size``.

    Early in training the loss falls per *update* more than per token (a batch far above what the noise of the
    gradient needs, cf. McCandlish et al., "An Empirical Model of Large-Batch Training", 2018), so a budget that
    buys few steps does better with smaller batches and more of them: below ``target_steps`` the batch shrinks in
    proportion, to a power of two, never under ``min_batch_size``.
    """
    if config.target_steps is None or projected_steps >= config.target_steps:
        return config.batch_size
    wanted = config.batch_size * projected_steps / config.target_steps
    size = 2 ** math.floor(math.log2(max(wanted, 1.0)))
    return max(min(config.min_batch_size, config.batch_size), min(config.batch_size, size))


def time_left(step: int, elapsed: float, config: TrainConfig, seconds_per_step: float | None) -> tuple[float, str]:
    """``(seconds, budget)``: the time until the plan ends and which budget ends it (``"time"`` or ``"steps"``).

    ``seconds_per_step`` is this run's average so far (evaluations included); None before the first step.
    """
    options = []
    if config.max_time is not None:
        options.append((max(0.0, config.max_time - elapsed), "time"))
    if config.max_steps is not None:
        steps_left = max(0, config.max_steps - step)
        options.append((steps_left * seconds_per_step if seconds_per_step else math.inf, "steps"))
    return min(options)


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}"


def budget_text(config: TrainConfig) -> str:
    """The plan's budget in words: ``"285 s"``, ``"3,000 steps"`` or ``"3,000 steps or 285 s"``."""
    parts = []
    if config.max_steps is not None:
        parts.append(f"{config.max_steps:,} steps")
    if config.max_time is not None:
        parts.append(f"{config.max_time:g} s")
    return " or ".join(parts)


def progress_text(step: int, elapsed: float, config: TrainConfig, seconds_per_step: float | None) -> str:
    """The progress bar's line: the step, the budget that will end the run, and a true ETA.

    ``"step 612 | 1:43 of 4:45 | 3:02 left"`` when the clock ends the run, ``"step 612 of 3,000 | 2:02 left"``
    when the step count does.
    """
    left, budget = time_left(step, elapsed, config, seconds_per_step)
    if budget == "time":
        return f"step {step:,} | {_clock(elapsed)} of {_clock(config.max_time)} | {_clock(left)} left"
    return f"step {step:,} of {config.max_steps:,} | {_clock(left)} left"


@torch.no_grad()
def generate_ids(
    model: nn.Module,
    ids: torch.Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    kv_cache: bool = True,
) -> torch.Tensor:
    """Continue the token ids ``(batch, seq)``; returns ``(batch, seq + max_new_tokens)``.

    With ``kv_cache`` a ``GPTModel`` samples through ``gptedu.char.kvcache.generate_cached`` (the same tokens,
    each position computed once); any other model uses its own ``generate``.
    """
    kwargs = dict(temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
    if kv_cache and isinstance(model, GPTModel):
        try:
            from gptedu.char.kvcache import generate_cached
        except ImportError:
            pass
        else:
            return generate_cached(model, ids, max_new_tokens, **kwargs)
    if not hasattr(model, "generate"):
        raise TypeError(f"{type(model).__name__} has no generate() method, so it cannot be sampled here.")
    return model.generate(ids, max_new_tokens, **kwargs)


def new_history() -> dict[str, list]:
    """Empty loss history. Per step: ``step``, ``loss``, ``lr``. Per estimate: ``eval_step``, ``train_loss``,
    ``val_loss`` and ``elapsed`` (seconds of training so far, summed over resumed runs)."""
    return {"step": [], "loss": [], "lr": [], "eval_step": [], "train_loss": [], "val_loss": [], "elapsed": []}


def extend_plan(old: TrainConfig, new: TrainConfig, step: int, elapsed: float) -> TrainConfig:
    """The plan ``new`` for a run resumed at ``step`` after ``elapsed`` seconds that was following ``old``.

    The same budget: ``new`` unchanged (the schedule goes on exactly). A different budget past the warmup:
    ``new.extended_at = (progress in the new plan, the rate the old plan was at)``, so the rate goes on from where
    it was and decays to ``min_lr`` at the new end. Still in the warmup: the new plan's own warmup takes over.
    """
    if (old.max_steps, old.max_time) == (new.max_steps, new.max_time):
        return new
    if plan_progress(step + 1, elapsed, old) < old.warmup_fraction and old.extended_at is None:
        return dataclasses.replace(new, extended_at=None)
    progress = plan_progress(step + 1, elapsed, new)
    if progress >= 1.0:
        return new  # nothing left to train (train() says so)
    return dataclasses.replace(new, extended_at=(progress, step_lr(step, elapsed, old)))


# --- the trainer ---------------------------------------------------------------------------------------------------


class Trainer:
    """Trains a model on a character corpus, step by step.

    ``model_config`` sets the sizes (``vocab_size`` is taken from the tokenizer). ``text`` is the corpus (default:
    TinyShakespeare from ``config.data_path``). ``model`` may be any ``nn.Module`` mapping token ids
    ``(batch, seq)`` to logits ``(batch, seq, vocab)``; otherwise ``model_factory(model_config)`` builds one
    (default ``build_model`` with ``config.fused``).
    """

    def __init__(
        self,
        config: TrainConfig | None = None,
        model_config: CharGPTConfig | None = None,
        *,
        text: str | None = None,
        tokenizer: CharTokenizer | None = None,
        model: nn.Module | None = None,
        model_factory: Callable[[CharGPTConfig], nn.Module] | None = None,
    ):
        default_model, default_train = default_configs()
        self.config = config = config if config is not None else default_train
        device = pick_device(config.device)
        self.dist: DistInfo = init_distributed(device.type)
        if device.type == "cuda" and self.dist.enabled:
            device = torch.device("cuda", self.dist.local_rank)
        self.device = device
        if device.type == "cpu":  # PyTorch's default (a thread per core) stalls on a busy machine: see pick_threads
            use_threads(config.num_threads or pick_threads("train"))
        seed_everything(config.seed)  # the same on every rank, so every rank builds the same initial model

        if text is None:
            text = load_tinyshakespeare(config.data_path)
        self.tokenizer = tokenizer if tokenizer is not None else CharTokenizer.from_text(text)
        try:
            data = torch.tensor(self.tokenizer.encode(text), dtype=torch.long)
        except ValueError as exc:
            raise ValueError(f"The training text does not fit the tokenizer: {exc}") from None
        if device.type == "cuda":  # a few MB: keep the corpus on the GPU so batches need no host-to-device copy
            data = data.to(device)
        self.train_data, self.val_data = split_contiguous(data, config.train_fraction)

        if model is not None and model_config is None and isinstance(getattr(model, "config", None), CharGPTConfig):
            model_config = model.config
        base = model_config if model_config is not None else default_model
        self.model_config = dataclasses.replace(base, vocab_size=self.tokenizer.vocab_size)
        self.seq_len = self.model_config.context_len
        for name, split in (("training", self.train_data), ("validation", self.val_data)):
            if len(split) <= self.seq_len:
                raise ValueError(
                    f"The {name} split has {len(split)} tokens, too few for windows of context_len={self.seq_len}; "
                    "use more text or a smaller context_len."
                )

        # how to build a model of another shape (``_fit_to_budget``); None: the caller's own model, kept as it is
        self._factory = None
        if model is None:
            self._factory = model_factory or (lambda cfg: build_model(cfg, fused=config.fused))
            model = self._factory(self.model_config)
        self.model = model.to(device)
        self.optimizer = make_optimizer(self.model, config)
        self._train_model = self._wrap_for_training(self.model)

        self.step = 0
        self.elapsed = 0.0
        self.run_id = new_run_id()  # stored in every checkpoint; a resumed run takes over the saved one
        self.lr = 0.0  # the rate of the last update
        self.history = new_history()
        self.last_run: dict[str, float] = {}
        rank_seed = config.seed + _RANK_SEED_STRIDE * (self.dist.rank + 1)
        self.batch_generator = torch.Generator().manual_seed(rank_seed)

    def _wrap_for_training(self, model: nn.Module) -> nn.Module:
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [self.device.index] if self.device.type == "cuda" else None
            model = DistributedDataParallel(model, device_ids=device_ids)  # broadcasts rank 0's weights
        if self.config.compile:
            model = torch.compile(model)
        return model

    # -- data and one step --

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's next training batch ``(x, y)``, each ``(batch_size, context_len)``, on the device."""
        x, y = get_batch(self.train_data, self.config.batch_size, self.seq_len, self.batch_generator)
        return x.to(self.device), y.to(self.device)

    def _loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = model(x)  # (batch, seq, vocab)
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))

    def train_step(self) -> torch.Tensor:
        """One update at the scheduled learning rate (``step_lr``); returns this rank's loss (a detached scalar)."""
        self.lr = lr = step_lr(self.step, self.elapsed, self.config)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x, y = self.next_batch()
        self._train_model.train()
        loss = self._loss(self._train_model, x, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # under DDP this also averages the gradients over the ranks
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.step += 1
        return loss.detach()

    @torch.no_grad()
    def estimate_loss(self) -> dict[str, float]:
        """Mean loss over ``eval_batches`` fixed batches of each split: ``{"train": ..., "val": ...}``.

        The batches come from a freshly seeded generator, so every estimate sees the same windows. Under torchrun
        the ranks share the work (rank r takes batches r, r + world_size, ...) and sum their results.
        """
        was_training = self.model.training
        self.model.eval()
        out = {}
        for split, data in (("train", self.train_data), ("val", self.val_data)):
            gen = torch.Generator().manual_seed(self.config.seed + _EVAL_SEED_OFFSET)
            dtype = torch.float32 if self.device.type == "mps" else torch.float64  # MPS has no float64
            totals = torch.zeros(2, dtype=dtype, device=self.device)  # (sum of losses, number of batches)
            for i in range(self.config.eval_batches):
                x, y = get_batch(data, self.config.batch_size, self.seq_len, gen)
                if i % self.dist.world_size != self.dist.rank:
                    continue
                totals[0] += self._loss(self.model, x.to(self.device), y.to(self.device)).to(dtype)
                totals[1] += 1
            all_reduce_sum(totals, self.dist)
            out[split] = (totals[0] / totals[1]).item()
        self.model.train(was_training)
        return out

    # -- the loop --

    def progress(self) -> float:
        """How far through its plan this run is (``plan_progress``): 1.0 or more means complete."""
        return plan_progress(self.step, self.elapsed, self.config)

    def train(self, until_step: int | None = None) -> dict[str, list]:
        """Train until the plan's budget is spent (``max_time`` or ``max_steps``, whichever first) or until
        ``until_step``; returns the history.

        A fresh run with a time budget first fits the model and the batch to it (``_fit_to_budget``). Estimates the
        losses every ``eval_interval`` steps and at the end, writing a checkpoint each time when
        ``out_dir`` is set (and once more at the end if the last step was not an estimate). With ``log_evals`` it
        ends by printing ``summary()``.
        """
        cfg = self.config
        main = self.dist.is_main
        run_start = time.perf_counter()
        start_step, start_elapsed = self.step, self.elapsed
        self.last_run = {"steps": 0, "seconds": 0.0, "tokens": 0, "tokens_per_s": 0.0, "ended_by": "complete"}
        if self.progress() >= 1.0:
            if main and cfg.log_evals:
                tqdm.write(self.summary())
            return self.history

        def clock() -> float:
            return start_elapsed + time.perf_counter() - run_start

        if self.step == 0 and not self.history["eval_step"]:
            if cfg.max_time is not None:
                self._fit_to_budget(clock)
            self._record_estimate()  # step 0, with the model and the batch that will train
        bar = tqdm(
            total=1000,  # thousandths of the plan: whichever budget ends the run fills the bar
            desc=f"train ({budget_text(cfg)})",
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix[0]}",
            postfix=[progress_text(self.step, self.elapsed, cfg, None)],  # a list: tqdm prints it as it is
            dynamic_ncols=True,
            disable=not (cfg.progress and main),
        )
        saved_at, ended_by = None, "complete"
        self.elapsed = clock()
        try:
            while True:
                if until_step is not None and self.step >= until_step:
                    ended_by = "until_step"
                    break
                loss = self.train_step()
                # one collective per step: the mean loss for the log and the mean clock (every rank must use the
                # same learning rate and stop at the same step)
                stats = all_reduce_sum(torch.tensor([loss.item(), clock()], device=loss.device), self.dist)
                loss_value = stats[0].item() / self.dist.world_size
                self.elapsed = stats[1].item() / self.dist.world_size
                if not math.isfinite(loss_value):
                    kept = f"the last checkpoint (step {saved_at}) is untouched" if saved_at else "nothing was saved"
                    raise FloatingPointError(
                        f"The training loss became {loss_value} at step {self.step}; {kept}. The learning rate "
                        f"({self.lr:.2e}) is most likely too high for this model: lower lr or lengthen the warmup "
                        "(warmup_fraction)."
                    )
                self.history["step"].append(self.step)
                self.history["loss"].append(loss_value)
                self.history["lr"].append(self.lr)
                done = self.progress() >= 1.0
                at_interval = cfg.eval_interval > 0 and self.step % cfg.eval_interval == 0
                if at_interval or done:
                    self._record_estimate()
                    if cfg.out_dir:
                        self.save_checkpoint()
                        saved_at = self.step
                if self.step % 10 == 0 or done or self.step - start_step <= 2:
                    seconds_per_step = (clock() - start_elapsed) / (self.step - start_step)
                    text = progress_text(self.step, self.elapsed, cfg, seconds_per_step)
                    bar.postfix = [f"{text} | loss {loss_value:.3f} | lr {self.lr:.2e}"]
                    bar.update(min(1000, int(self.progress() * 1000)) - bar.n)
                if done:
                    break
        finally:
            bar.close()
        self.elapsed = clock()
        if cfg.out_dir and saved_at != self.step:
            self.save_checkpoint()
        steps = self.step - start_step
        seconds = time.perf_counter() - run_start
        tokens = steps * cfg.batch_size * self.seq_len * self.dist.world_size
        self.last_run = {
            **self.last_run,
            "steps": steps,
            "seconds": seconds,
            "tokens": tokens,
            "tokens_per_s": tokens / seconds if seconds else 0.0,
            "ended_by": ended_by,
        }
        if main and cfg.log_evals:
            tqdm.write(self.summary())
        return self.history

    @torch.no_grad()
    def forward_pass(self, generator: torch.Generator) -> None:
        """One forward pass of a training batch ``(batch_size, context_len)`` drawn from ``generator``, nothing
        learned: what ``_fit_to_budget`` times (a training step costs about three: forward, backward, update)."""
        x, y = get_batch(self.train_data, self.config.batch_size, self.seq_len, generator)
        self._loss(self.model, x.to(self.device), y.to(self.device))

    def _projected_steps(self, clock: Callable[[], float]) -> float:
        """Steps at ``batch_size`` that the rest of the time budget buys here: 3x the median of 4 timed forward
        passes (after one untimed: the first pays for allocations), averaged over the ranks."""
        gen = torch.Generator().manual_seed(self.config.seed + _EVAL_SEED_OFFSET)
        self.forward_pass(gen)
        seconds = []
        for _ in range(4):
            start = clock()
            self.forward_pass(gen)
            seconds.append(clock() - start)
        median = torch.tensor(sorted(seconds)[1:3], device=self.device).mean()  # the median of the 4
        seconds_per_step = 3 * all_reduce_sum(median, self.dist).item() / self.dist.world_size
        return (self.config.max_time - clock()) / max(seconds_per_step, 1e-9)

    def _fit_to_budget(self, clock: Callable[[], float]) -> None:
        """Before the first step of a time budget, fit the model and the batch to the steps it buys on this machine.

        The model: while the budget buys fewer than ``min_tokens_per_param`` training tokens per parameter, train
        ``smaller_model`` instead (a model the trainer built itself; timed again each time). The batch: below
        ``target_steps`` steps, smaller batches (``fitted_batch_size``). A plan that its step budget ends first
        keeps both.
        """
        cfg = self.config
        fit_model = cfg.min_tokens_per_param is not None and self._factory is not None
        if not fit_model and cfg.target_steps is None:
            return
        projected = self._projected_steps(clock)
        if cfg.max_steps is not None and projected >= cfg.max_steps:
            return  # the step budget ends this plan first: its model and batches are the user's
        while fit_model:
            n_params = sum(p.numel() for p in self.model.parameters())
            tokens = projected * cfg.batch_size * self.seq_len * self.dist.world_size
            smaller = smaller_model(self.model_config)
            if tokens >= cfg.min_tokens_per_param * n_params or smaller is None:
                break
            self.last_run.setdefault("fitted_model_from", (self.model_config, n_params, tokens / n_params))
            self._use_model(smaller)
            projected = self._projected_steps(clock)
        if "fitted_model_from" in self.last_run and self.dist.is_main and cfg.log_evals:
            tqdm.write(self._model_fit_text("Training"))
        batch = fitted_batch_size(cfg, projected)
        if batch == cfg.batch_size:
            return
        if self.dist.is_main and cfg.log_evals:
            tqdm.write(
                f"This budget buys ~{projected:,.0f} steps of {cfg.batch_size} windows; training batches of {batch} "
                f"instead, for about {cfg.batch_size // batch}x the updates (TrainConfig.target_steps)."
            )
        self.last_run["fitted_from"] = cfg.batch_size
        cfg.batch_size = batch

    def _use_model(self, model_config: CharGPTConfig) -> None:
        """Train a fresh model of the shape ``model_config`` (same vocabulary and window) from now on."""
        seed_everything(self.config.seed)  # the same initial model on every rank
        self.model_config = dataclasses.replace(model_config, vocab_size=self.tokenizer.vocab_size)
        self.model = self._factory(self.model_config).to(self.device)
        self.optimizer = make_optimizer(self.model, self.config)
        self._train_model = self._wrap_for_training(self.model)

    def _model_fit_text(self, verb: str) -> str:
        """Which model ``_fit_to_budget`` chose instead of the one asked for, and why, in one sentence."""
        old, old_params, per_param = self.last_run["fitted_model_from"]
        new, n_params = self.model_config, sum(p.numel() for p in self.model.parameters())
        return (
            f"{verb} a smaller model ({new.num_layers} layer{'s' * (new.num_layers > 1)} x {new.d_model} wide, "
            f"{n_params / 1e6:.2f}M "
            f"parameters) instead of the {old.num_layers} x {old.d_model} one asked for ({old_params / 1e6:.2f}M): "
            f"at the speed measured before the first step this budget buys ~{per_param:.1f} training tokens per "
            f"parameter of that one, fewer than {self.config.min_tokens_per_param:g} "
            "(TrainConfig.min_tokens_per_param). A larger --max-time or a faster machine trains the full model."
        )

    def summary(self) -> str:
        """What the last ``train()`` did, in words: how far it got, whether the schedule completed, what to do next.

        ``"Trained 2,101 steps in 285.3 s (8.61M tokens, 30,150 tokens/s): the plan is complete (its 285 s budget
        ended it; ...)"``; a run cut short or too short to learn much says so and how to go on.
        """
        cfg, run = self.config, self.last_run
        if not run:
            return "Not trained yet."
        progress = self.progress()
        n_threads = torch.get_num_threads()
        threads = f", {n_threads} thread{'s' if n_threads > 1 else ''}" if self.device.type == "cpu" else ""
        text = (
            f"Trained {run['steps']:,} steps in {run['seconds']:.1f} s ({run['tokens'] / 1e6:.2f}M tokens, "
            f"{run['tokens_per_s']:,.0f} tokens/s{threads}); now at step {self.step:,}, {self.elapsed:.0f} s of "
            "training."
        )
        if self.history["val_loss"]:
            text += f" Val loss {self.history['val_loss'][-1]:.4f} (estimate)."
        if progress < 1.0:
            return text + (
                f" Cut short at {progress:.0%} of the plan ({budget_text(cfg)}): the learning rate "
                f"({self.lr:.2e}) has not decayed to {cfg.min_lr:.0e} yet, so this is not the plan's model. Continue "
                "the same plan with --resume (Trainer.from_checkpoint(path).train())."
            )
        ended = "time" if cfg.max_time is not None and self.elapsed >= cfg.max_time else "steps"
        what = f"{cfg.max_time:g} s budget" if ended == "time" else f"{cfg.max_steps:,}-step budget"
        text += f" The plan is complete: its {what} ended it, the learning rate warmed up and decayed over it."
        if "fitted_model_from" in run:
            text += " " + self._model_fit_text("It trained")
        if "fitted_from" in run:
            text += f" It trained batches of {cfg.batch_size} windows, not {run['fitted_from']}, to buy more updates."
        if run["steps"] == 0:
            text += " Nothing left to train: give a larger budget to go on (--max-time / --steps, totals)."
        passes = self.step * cfg.batch_size * self.seq_len * self.dist.world_size / max(1, len(self.train_data))
        if passes < 4 and run["tokens_per_s"] > 0:
            tokens_per_step = cfg.batch_size * self.seq_len * self.dist.world_size
            if ended == "time":
                needed = math.ceil(4 * len(self.train_data) / run["tokens_per_s"] / 60) * 60
                advice = f"about {needed:,} s at this speed: train again with --max-time {needed}"
            else:
                steps = math.ceil(4 * len(self.train_data) / tokens_per_step)
                advice = f"{steps:,} steps: train again with --steps {steps}"
            text += (
                f" Undertrained: {passes:.1f} passes over the training text (the default preset makes ~8 in its 5 "
                f"minutes on 2 quiet cores). ~4 passes need {advice} (a new run lays its whole schedule over the "
                "larger budget)" + (", and --threads 1 if the machine is busy." if n_threads > 1 else ".")
            )
        return text

    def _record_estimate(self) -> None:
        losses = self.estimate_loss()
        h = self.history
        h["eval_step"].append(self.step)
        h["train_loss"].append(losses["train"])
        h["val_loss"].append(losses["val"])
        h["elapsed"].append(self.elapsed)
        if self.dist.is_main and self.config.log_evals:
            tqdm.write(
                f"step {self.step:>6}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f} "
                f"({self.elapsed:.1f}s)"
            )

    # -- checkpoints --

    def state_dict(self) -> dict[str, Any]:
        """Everything a checkpoint holds (see ``gptedu.checkpoint``). Under torchrun every rank must call it."""
        generator_states = gather_objects(self.batch_generator.get_state(), self.dist)
        return {
            "run_id": self.run_id,
            "model_state": self.model.state_dict(),
            "model_config": self.model_config.to_dict(),
            "train_config": self.config.to_dict(),
            "tokenizer_chars": list(self.tokenizer.chars),
            "optimizer_state": self.optimizer.state_dict(),
            "step": self.step,
            "elapsed": self.elapsed,
            "history": self.history,
            "rng": {
                "torch": torch.get_rng_state(),
                "python": random.getstate(),
                "batch_generators": generator_states,
            },
            "torch_version": str(torch.__version__),
        }

    def save_checkpoint(self, path: str | Path | None = None) -> Path | None:
        """Write a checkpoint (rank 0 only; the other ranks wait for it). Default path: ``out_dir/ckpt.pt``."""
        if path is None:
            if not self.config.out_dir:
                raise ValueError("save_checkpoint() needs a path, or set TrainConfig.out_dir.")
            path = Path(self.config.out_dir) / CHECKPOINT_NAME
        state = self.state_dict()
        written = save_checkpoint(state, path) if self.dist.is_main else None
        barrier(self.dist)
        return written

    def load_state_dict(self, state: dict[str, Any], path: str | Path = "checkpoint") -> None:
        """Restore model, optimizer, step, history and random states from a loaded checkpoint."""
        load_model_state(self.model, state["model_state"], path)
        if "optimizer_state" not in state:
            raise CheckpointError(f"{path} has no optimizer state, so training cannot resume from it exactly.")
        self.optimizer.load_state_dict(state["optimizer_state"])
        self.step = int(state.get("step", 0))
        self.run_id = state.get("run_id") or self.run_id
        self.elapsed = float(state.get("elapsed", 0.0))
        self.history = {**new_history(), **state.get("history", {})}
        rng = state.get("rng", {})
        if "torch" in rng:
            torch.set_rng_state(rng["torch"].cpu())
        if "python" in rng:
            version, internal, gauss = rng["python"]
            random.setstate((version, tuple(internal), gauss))
        states = rng.get("batch_generators", [])
        if len(states) == self.dist.world_size:
            self.batch_generator.set_state(states[self.dist.rank].cpu())
        else:
            warnings.warn(
                f"{path} was written by {len(states)} process(es), this run has {self.dist.world_size}: the batch "
                "streams restart from fresh seeds, so this resume will not match an uninterrupted run exactly.",
                stacklevel=2,
            )
            self.batch_generator.manual_seed(self.config.seed + _RANK_SEED_STRIDE * (self.dist.rank + 1) + self.step)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        *,
        text: str | None = None,
        model_factory: Callable[[CharGPTConfig], nn.Module] | None = None,
        **overrides: Any,
    ) -> Trainer:
        """Resume a run: the checkpoint's configs; ``overrides`` replace train settings.

        Without a new budget it continues the same plan (the same schedule, to the same end). A larger budget
        (``max_time=600`` after a 285 s plan; both are totals, resumed runs included) extends it: the rate goes on
        from where it was and decays to ``min_lr`` at the new end (``extend_plan``), never back up to its peak.
        """
        state = load_checkpoint(path)
        model_config = model_config_from(state, path)
        saved = state.get("train_config", {})
        config = TrainConfig.from_dict({**saved, **overrides})
        config = extend_plan(
            TrainConfig.from_dict(saved), config, int(state.get("step", 0)), float(state.get("elapsed", 0.0))
        )
        tokenizer = CharTokenizer(state["tokenizer_chars"])
        trainer = cls(config, model_config, text=text, tokenizer=tokenizer, model_factory=model_factory)
        trainer.load_state_dict(state, path)
        return trainer

    # -- sampling --

    @torch.no_grad()
    def sample(
        self,
        prompt: str,
        max_new_tokens: int = 300,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
    ) -> str:
        """Continue ``prompt`` with the current model and return prompt + continuation as text."""
        ids = torch.tensor([self.tokenizer.encode(prompt)], dtype=torch.long, device=self.device)
        gen = None if seed is None else torch.Generator(device=self.device).manual_seed(seed)
        sampling = dict(temperature=temperature, top_k=top_k, top_p=top_p, generator=gen)
        out = generate_ids(self.model, ids, max_new_tokens, **sampling)
        return self.tokenizer.decode(out[0])
