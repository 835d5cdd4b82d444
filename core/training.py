"""The training loop: a generator that yields one frozen `EpochMetrics` per epoch.

    for m in train(TrainConfig(dataset="digits", epochs=20), checkpoint_dir=Path("run")):
        print(m.epoch, m.val_acc)

What it does, in order: seed Python/NumPy/torch; load the dataset once as tensors on the device;
each epoch shuffle with a seeded generator, slice batches from one tensor (no DataLoader), take
optimizer steps (fused/foreach optimizers, channels-last for the CNN), evaluate in inference mode,
and save the best checkpoint atomically. It never prints, plots or writes SQL.

How a run ends is the generator's return value and `control.outcome` (an `Outcome`): finished
(all epochs, or early stopping with its reason), stopped (control.stop, honoured within one batch),
or diverged (a NaN/Inf loss, with epoch and step in the reason; the best checkpoint is untouched).
"""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Generator

import numpy as np
import torch
from torch import nn

from core.checkpoint import load_into, settle_checkpoints
from core.config import ConfigError, TrainConfig
from core.control import TrainControl
from core.datasets import TensorData, load_dataset
from core.earlystop import EarlyStopping
from core.epochfile import EpochFile
from core.models import build_model
from core.resume import STEM as LAST_STEM
from core.resume import last_tensors, match_parameter_layouts, read_last, set_default_rng_states
from core.savefile import clean_leftovers
from core.schedules import scheduled_lr
from core.status import RunStatus
from core.writer import Writer


@dataclass(frozen=True)
class EpochMetrics:
    """One finished epoch. Python scalars only; accuracies are fractions in 0..1."""

    epoch: int
    num_epochs: int
    step: int                      # optimizer steps taken so far in the run
    train_loss: float
    val_loss: float
    train_acc: float
    val_acc: float
    lr: float                      # lr of the epoch's last step
    momentum: float
    weight_decay: float
    grad_clip: float | None
    seconds: float                 # wall time of the epoch, evaluation included
    samples_per_s: float           # training samples per second of training time
    is_best: bool
    best_epoch: int
    early_stop_counter: int
    step_losses: tuple[float, ...] = ()
    changes: tuple[tuple[int, str, float | None], ...] = ()   # (step, field, new value) applied

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Outcome:
    """How a run ended."""

    status: RunStatus
    reason: str
    epochs_completed: int
    best_epoch: int
    best_val_acc: float | None
    best_val_loss: float | None
    checkpoint: str | None

    def to_dict(self) -> dict:
        return {**asdict(self), "status": self.status.value}


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: 'cuda' is not available on this machine; use auto or cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all CUDA devices included)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def set_determinism(enabled: bool) -> None:
    """Switch deterministic algorithms on or off; only when it changes (the call imports inductor)."""
    if torch.are_deterministic_algorithms_enabled() != enabled:
        torch.use_deterministic_algorithms(enabled)


def build_optimizer(config: TrainConfig, model: nn.Module, device: torch.device) -> torch.optim.Optimizer:
    params, lr, wd = model.parameters(), config.lr, config.weight_decay
    if config.optimizer in ("adam", "adamw"):
        cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
        return cls(params, lr=lr, betas=(config.momentum, 0.999), weight_decay=wd, fused=True)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=config.momentum, weight_decay=wd, foreach=True)
    return torch.optim.RMSprop(params, lr=lr, momentum=config.momentum, weight_decay=wd, foreach=True)


def set_hyperparams(optimizer: torch.optim.Optimizer, lr: float, momentum: float, weight_decay: float) -> None:
    """Write lr, momentum (Adam's beta1) and weight decay into every parameter group."""
    for group in optimizer.param_groups:
        group["lr"], group["weight_decay"] = lr, weight_decay
        if "betas" in group:
            group["betas"] = (momentum, group["betas"][1])
        else:
            group["momentum"] = momentum


def check_batch_size(config: TrainConfig, data: TensorData) -> None:
    if config.batch_size > data.num_train:
        raise ConfigError(f"batch_size: {config.batch_size} is larger than the {data.num_train} training "
                          f"samples of {data.info.name}; use at most {data.num_train}")


@dataclass
class _Live:
    """Hyperparameters that may change mid-run; `lr_pinned` once a person set the lr by hand."""

    momentum: float
    weight_decay: float
    grad_clip: float | None
    lr: float
    lr_pinned: bool = False


@dataclass
class _EpochResult:
    loss: float
    acc: float
    train_seconds: float
    step_losses: tuple[float, ...]
    changes: tuple
    halt: RunStatus | None = None
    reason: str = ""


class _Loop:
    """The state of one run; `train()` drives it epoch by epoch."""

    def __init__(self, config: TrainConfig, data: TensorData, control: TrainControl, record_steps: bool):
        self.config, self.control, self.record_steps = config, control, record_steps
        self.device = resolve_device(config.device)
        self.data = data.to(self.device)
        self.image = self.data.info.kind == "image"
        self.model = build_model(config, data.info).to(self.device)
        if self.image:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = build_optimizer(config, self.model, self.device)
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        self.live = _Live(config.momentum, config.weight_decay, config.grad_clip, config.lr)
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        self.step = 0
        self.steps_per_epoch = -(-data.num_train // config.batch_size)
        self.monitor_history: list[float] = []
        self.check_every = 1 if self.device.type == "cpu" else 32
        self._model_state: dict[str, torch.Tensor] | None = None
        self._epoch_lr: tuple[int, float] = (0, config.lr)         # (epoch, its scheduled lr)

    def model_state(self) -> dict[str, torch.Tensor]:
        """The model's state dict, taken once: the loop updates its tensors in place (optimizer steps,
        `load_state_dict` on resuming) and never replaces one."""
        if self._model_state is None:
            self._model_state = self.model.state_dict()
        return self._model_state

    def apply_changes(self, changes: list) -> None:
        for name, value in self.control.take_changes().items():
            setattr(self.live, name, value)
            self.live.lr_pinned |= name == "lr"
            changes.append((self.step, name, value))

    def current_lr(self, epoch: int) -> float:
        """The lr of this step. Every schedule but onecycle holds for a whole epoch, so it is worked out
        once per epoch: plateau's replays the monitored history, which grows with the run."""
        if self.live.lr_pinned:
            return self.live.lr
        if self.config.schedule == "onecycle":
            return scheduled_lr(self.config, epoch, self.step, self.steps_per_epoch, self.monitor_history)
        if self._epoch_lr[0] != epoch:
            self._epoch_lr = (epoch, scheduled_lr(self.config, epoch, self.step, self.steps_per_epoch,
                                                  self.monitor_history))
        return self._epoch_lr[1]

    def wait_while_paused(self) -> None:
        while self.control.paused and self.control.stop_reason is None:
            time.sleep(0.05)
            self.control.poll()

    def train_epoch(self, epoch: int) -> _EpochResult:
        self.model.train()
        x_all, y_all, n, bs = self.data.train_x, self.data.train_y, self.data.num_train, self.config.batch_size
        order = torch.randperm(n, generator=self.generator, device=self.device)
        x_all, y_all = x_all[order], y_all[order]           # one gather per epoch; batches are views
        losses = torch.empty(self.steps_per_epoch, device=self.device)
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        changes: list = []
        checked = 0                                          # losses[:checked] are known finite
        start = time.perf_counter()
        for i in range(self.steps_per_epoch):
            self.control.at_step(epoch, i, self.steps_per_epoch, self.step)
            self.wait_while_paused()
            if self.control.stop_reason is not None:
                return _EpochResult(0, 0, 0, (), tuple(changes), self.control.stop_status, self.control.stop_reason)
            self.apply_changes(changes)
            self.live.lr = self.current_lr(epoch)
            set_hyperparams(self.optimizer, self.live.lr, self.live.momentum, self.live.weight_decay)
            x, y = x_all[i * bs:(i + 1) * bs], y_all[i * bs:(i + 1) * bs]
            loss, logits = self.optimizer_step(x, y)
            losses[i] = loss
            loss_sum += loss * y.shape[0]
            correct += (logits.argmax(dim=1) == y).sum()
            self.step += 1
            if (i + 1) % self.check_every == 0 or i + 1 == self.steps_per_epoch:
                bad = find_non_finite(losses[checked: i + 1])
                if bad is not None:
                    bad += checked
                    reason = f"loss became {losses[bad].item()} at epoch {epoch}, step {bad + 1} of the epoch"
                    return _EpochResult(0, 0, 0, (), tuple(changes), RunStatus.DIVERGED, reason)
                checked = i + 1
        seconds = time.perf_counter() - start
        steps = tuple(losses.tolist()) if self.record_steps else ()
        return _EpochResult(loss_sum.item() / n, correct.item() / n, seconds, steps, tuple(changes))

    def optimizer_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(x)                               # (batch, num_classes)
        loss = self.loss_fn(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.live.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.live.grad_clip, foreach=True)
        self.optimizer.step()
        return loss.detach(), logits.detach()

    @torch.inference_mode()
    def evaluate(self) -> tuple[float, float]:
        """(mean loss, accuracy) on the validation split; eval mode switches dropout off."""
        self.model.eval()
        x_all, y_all = self.data.val_x, self.data.val_y
        chunk = max(self.config.batch_size, 1024)
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        for start in range(0, y_all.shape[0], chunk):
            logits = self.model(x_all[start:start + chunk])
            y = y_all[start:start + chunk]
            loss_sum += self.loss_fn(logits, y) * y.shape[0]
            correct += (logits.argmax(dim=1) == y).sum()
        n = y_all.shape[0]
        return loss_sum.item() / n, correct.item() / n


def find_non_finite(values: torch.Tensor) -> int | None:
    """Index of the first NaN/Inf in a 1-D tensor, or None."""
    if values.numel() == 1 and values.device.type == "cpu":        # the per-step check: a plain float test
        return None if math.isfinite(values.item()) else 0
    bad = ~torch.isfinite(values)
    return int(bad.nonzero()[0, 0]) if bool(bad.any()) else None


def train(config: TrainConfig, data: TensorData | None = None, *, control: TrainControl | None = None,
          checkpoint_dir: Path | str | None = None, record_steps: bool = False,
          resume: bool = False, writer: Writer | None = None) -> Generator[EpochMetrics, None, Outcome]:
    """Train `config`; yield one EpochMetrics per epoch; return (and set control.outcome) an Outcome.
    With `resume=True`, continue from the `last` checkpoint in `checkpoint_dir` (epochs already
    done are not repeated; model, optimizer, shuffling and early-stopping state are restored).
    `writer` (`core.writer.Writer`: a thread, unless given one that is a process) finishes each
    epoch's checkpoints while the next one trains; jobs the caller hands it while it holds an epoch's
    metrics run before that epoch's files. All of them are done, or their error raised, before the
    generator ends."""
    control = control or TrainControl()
    seed_everything(config.seed)
    data = data if data is not None else load_dataset(config)
    check_batch_size(config, data)
    previous_determinism = torch.are_deterministic_algorithms_enabled()
    if config.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")   # cuBLAS needs it to be deterministic
    set_determinism(config.deterministic)
    tracker = _BestTracker(config, checkpoint_dir, data.info.to_dict(), writer)
    try:
        loop = _Loop(config, data, control, record_steps)
        first_epoch = restore(loop, tracker) + 1 if resume else 1
        control.outcome = yield from _run_epochs(loop, tracker, first_epoch)
        tracker.settle()
        return control.outcome
    except (GeneratorExit, KeyboardInterrupt) as exc:
        reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else "training was closed by its caller"
        control.outcome = tracker.outcome(RunStatus.STOPPED, reason)
        tracker.settle(quietly=True)
        raise
    except Exception as exc:
        control.outcome = tracker.outcome(RunStatus.FAILED, f"{type(exc).__name__}: {exc}")
        tracker.settle(quietly=True)
        raise
    finally:
        set_determinism(previous_determinism)


def _run_epochs(loop: _Loop, tracker: "_BestTracker", first_epoch: int) -> Generator[EpochMetrics, None, Outcome]:
    config = loop.config
    for epoch in range(first_epoch, config.epochs + 1):
        start = time.perf_counter()
        result = loop.train_epoch(epoch)
        if result.halt is not None:
            return tracker.outcome(result.halt, result.reason)
        val_loss, val_acc = loop.evaluate()
        if not np.isfinite(val_loss):
            return tracker.outcome(RunStatus.DIVERGED, f"validation loss became {val_loss} at epoch {epoch}")
        decision = tracker.update(epoch, val_loss, val_acc, loop)
        loop.monitor_history.append(val_loss if config.monitor == "val_loss" else val_acc)
        yield EpochMetrics(
            epoch=epoch, num_epochs=config.epochs, step=loop.step, train_loss=result.loss,
            val_loss=val_loss, train_acc=result.acc, val_acc=val_acc, lr=loop.live.lr,
            momentum=loop.live.momentum, weight_decay=loop.live.weight_decay, grad_clip=loop.live.grad_clip,
            seconds=time.perf_counter() - start,
            samples_per_s=loop.data.num_train / max(result.train_seconds, 1e-9),
            is_best=decision.improved, best_epoch=tracker.best_epoch, early_stop_counter=decision.counter,
            step_losses=result.step_losses, changes=result.changes)
        tracker.save_last(epoch, loop)        # after the consumer has recorded the epoch's metrics
        if decision.stop_reason:
            return tracker.outcome(RunStatus.FINISHED, f"early stopped after epoch {epoch}: {decision.stop_reason}")
    return tracker.outcome(RunStatus.FINISHED, f"completed all {config.epochs} epochs")


def restore(loop: _Loop, tracker: "_BestTracker") -> int:
    """Load the `last` checkpoint into the loop and tracker; returns the last completed epoch."""
    if tracker.folder is None:
        raise ConfigError("resume needs the run's checkpoint folder")
    state = read_last(tracker.folder)
    load_into(loop.model, state.model)
    loop.optimizer.load_state_dict(state.optimizer)
    match_parameter_layouts(loop.optimizer)
    loop.generator.set_state(state.generator)
    set_default_rng_states(state.default_rng, loop.device)
    meta = state.meta
    loop.step, loop.monitor_history = state.step, list(meta["monitor_history"])
    loop.live = _Live(**meta["live"])
    tracker.best_epoch, tracker.best_val_acc, tracker.best_val_loss = meta["best_epoch"], meta["best_val_acc"], \
        meta["best_val_loss"]
    tracker.stopper.best, tracker.stopper.counter = meta["best_value"], meta["counter"]
    tracker.checkpoint, tracker.epochs = meta["checkpoint"], state.epoch
    return state.epoch


class _BestTracker:
    """Early stopping plus the best epoch's metrics and checkpoint."""

    def __init__(self, config: TrainConfig, checkpoint_dir: Path | str | None, dataset: dict,
                 writer: Writer | None = None):
        mode = "min" if config.monitor == "val_loss" else "max"
        self.stopper = EarlyStopping(config.patience, mode, config.min_delta, config.monitor)
        self.folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
        if self.folder is not None:
            clean_leftovers(self.folder)          # half-written files of a killed earlier attempt
        fixed = {"config": config.to_dict(), "dataset": dataset}    # the records' entries common to every epoch
        # The files are finished by the writer while the next epoch trains, `best` before `last` (a `last` on
        # disk means the `best` its record names is there too).
        self.writer = writer if writer is not None or self.folder is None else Writer()
        self.files: dict[str, EpochFile] = {}
        if self.folder is not None:                    # `best` takes the model's bytes from `last`'s buffer
            last = EpochFile(self.folder / f"{LAST_STEM}.safetensors", fixed, self.writer)
            self.files = {"best": EpochFile(self.folder / "best.safetensors", fixed, self.writer, (last, "model.")),
                          LAST_STEM: last}
        self.best_epoch, self.best_val_acc, self.best_val_loss, self.epochs = 0, None, None, 0
        self.checkpoint: str | None = None
        self.best_due: tuple[_Loop, dict] | None = None

    def update(self, epoch: int, val_loss: float, val_acc: float, loop: _Loop):
        self.epochs = epoch
        decision = self.stopper.update(val_loss if loop.config.monitor == "val_loss" else val_acc)
        if decision.improved:
            self.best_epoch, self.best_val_acc, self.best_val_loss = epoch, val_acc, val_loss
            if self.folder is not None:      # written with `last`, once the consumer has recorded the epoch
                self.best_due = loop, {"epoch": epoch, "val_loss": val_loss, "val_acc": val_acc}
                self.checkpoint = str(self.files["best"].path)
        return decision

    def save_best(self, from_last: bool = False) -> None:
        """The best checkpoint `update` found, unless written already (the weights are still that epoch's:
        nothing trains between `update` and `save_last`); `from_last` when the `last` checkpoint of the
        same epoch is staged, whose buffer then gives the model's bytes."""
        if self.best_due is not None:
            loop, meta = self.best_due
            self.best_due = None
            best = self.files["best"]
            (best.write_from_source if from_last else best.write)(loop.model_state(), meta)

    def save_last(self, epoch: int, loop: _Loop) -> None:
        """The resumable state after `epoch` (only when checkpoints are kept), sent to the writer after
        what the consumer handed it for this epoch."""
        if self.folder is None:
            if self.writer is not None:
                self.writer.send()
            return
        meta = {"epoch": epoch, "step": loop.step, "best_epoch": self.best_epoch, "best_val_acc": self.best_val_acc,
                "best_val_loss": self.best_val_loss, "best_value": self.stopper.best,
                "counter": self.stopper.counter, "monitor_history": loop.monitor_history,
                "live": dict(vars(loop.live)), "checkpoint": self.checkpoint}
        tensors, optimizer_meta = last_tensors(loop.model_state(), loop.optimizer, loop.generator)
        meta["optimizer"] = optimizer_meta
        last = self.files[LAST_STEM]
        job = last.stage(tensors, meta)              # copied first, handed after `best`, which reads from it
        self.save_best(from_last=job is not None)
        if job is None:
            last.write(tensors, meta)
        else:
            self.writer.hand(*job)
        self.writer.send()

    def settle(self, *, quietly: bool = False) -> None:
        """When the attempt ends: the writer's last batch finished (and the best checkpoint still due, when
        the consumer stopped at an epoch that improved), best.json written, both checkpoints fsynced. The
        per-epoch writes skip both (they survive a killed process, see `core.checkpoint`). `quietly`
        while another error is on its way out: a failure here must not replace it."""
        if self.writer is None:
            return
        try:
            try:
                self.save_best()
            finally:
                self.writer.close()
            if self.folder is not None:
                settle_checkpoints(self.folder, ["best", LAST_STEM])
        except Exception:
            if not quietly:
                raise

    def outcome(self, status: RunStatus, reason: str) -> Outcome:
        return Outcome(status, reason, self.epochs, self.best_epoch, self.best_val_acc, self.best_val_loss,
                       self.checkpoint)
