"""Training through the store: every epoch's metrics, live changes and the outcome are recorded.

    store = Store()
    run_id = store.create_run(config.to_dict(), name="baseline", source="cli")
    for m in train_tracked(config, store, run_id):
        ...                                   # the epoch's record is on its way to the store
    store.get_run(run_id).status              # finished / stopped / diverged / failed

The CLI, the dashboard's worker and scripts all use this, so a run shows up the same everywhere.

Each epoch's record (metrics, step losses, live changes, summary: one transaction) is committed by
the run's writer (`core.writer`: a process forked from the training process), before that epoch's
checkpoints, while the next epoch trains. The training thread only hands it over, and never waits
for the GIL while the writer works (see `core.writer` for why). So the store always holds every
epoch the `last` checkpoint holds, which is what a resumed run continues from: a run killed before
the record is committed has no checkpoint of that epoch either, and trains it again. A consumer
that reads the store back after each epoch (hyperband, in a sweep) passes `wait_for_record=True`:
the record is then committed before the epoch is yielded. When the generator ends, for whatever
reason, every record handed over is committed, or its error raised, before the run's outcome is.
"""

from __future__ import annotations

import os
from functools import partial
from typing import Generator

import torch

from core.config import ConfigError, TrainConfig
from core.control import TrainControl
from core.datasets import TensorData, load_dataset
from core.models import build_model
from core.status import RunStatus
from core.tracker import Store
from core.training import EpochMetrics, Outcome, check_batch_size, train
from core.writer import Writer

EPOCH_KEYS = ("train_loss", "val_loss", "train_acc", "val_acc", "lr", "momentum", "weight_decay",
              "grad_clip", "seconds", "samples_per_s")


def prepare_data(config: TrainConfig) -> TensorData:
    """Load the dataset and check the config against it; raises a user error before any run exists."""
    data = load_dataset(config)
    check_batch_size(config, data)
    if config.model == "cnn" and data.info.kind != "image":
        build_model(config, data.info)              # raises the model's own one-line error
    return data


def train_tracked(config: TrainConfig, store: Store, run_id: str, *, control: TrainControl | None = None,
                  data: TensorData | None = None, record_steps: bool = True, resume: bool = False,
                  wait_for_record: bool = False) -> Generator[EpochMetrics, None, Outcome]:
    """Train `config` as run `run_id`: log each epoch, events and the outcome; yield the metrics.
    With `resume=True` the run continues from its last completed epoch (see `reopen_for_resume`).
    Each epoch's record is committed by the run's writer (see the module's docstring); with
    `wait_for_record`, before the epoch is yielded."""
    control = control or TrainControl()
    epochs = None
    try:
        data = data if data is not None else prepare_data(config)
        store.log_event(run_id, "resume" if resume else "start",
                        {"dataset": data.info.to_dict(), "num_train": data.num_train,
                         "num_val": int(data.val_y.shape[0]), "torch_threads": torch.get_num_threads(),
                         "pid": os.getpid()})
        writer = Writer(process=True)
        writer.register("record", partial(log_epoch_fields, store, run_id), after_fork=store.after_fork)
        epochs = train(config, data, control=control, checkpoint_dir=store.run_folder(run_id),
                       record_steps=record_steps, resume=resume, writer=writer)
        for metrics in epochs:
            hand_record(writer, metrics, wait_for_record)
            yield metrics
    except BaseException as exc:
        if epochs is not None:
            epochs.close()                   # the records already handed over are committed first
        status = RunStatus.STOPPED if isinstance(exc, (GeneratorExit, KeyboardInterrupt)) else RunStatus.FAILED
        store.finish_run(run_id, status, _reason(exc))
        raise
    outcome = control.outcome
    store.log_event(run_id, "end", outcome.to_dict(), epoch=outcome.epochs_completed)
    summary = outcome_summary(outcome)
    if outcome.checkpoint:
        summary["model_artifact"] = log_model_artifact(store, run_id, outcome).label
    store.finish_run(run_id, outcome.status, outcome.reason, summary=summary)
    return outcome


def log_model_artifact(store: Store, run_id: str, outcome: Outcome):
    """The run's best checkpoint as a versioned `model` artifact named after the run, alias `best`."""
    folder = store.run_folder(run_id)
    files = {"best.safetensors": folder / "best.safetensors", "best.json": folder / "best.json"}
    return store.log_artifact(f"model-{run_id}", "model", files, run_id=run_id, aliases=["best"],
                              metadata={"best_epoch": outcome.best_epoch, "best_val_acc": outcome.best_val_acc})


def environment() -> dict:
    """Versions and host a run was made with."""
    import platform
    from importlib import metadata

    import torch

    versions = {}
    for package in ("torch", "torchvision", "numpy", "scikit-learn", "safetensors", "pydantic", "optuna"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"python": platform.python_version(), "torch": torch.__version__, "host": platform.node(),
            "platform": platform.platform(), "cuda": torch.version.cuda if torch.cuda.is_available() else None,
            "packages": versions}


RESUMABLE = (RunStatus.STOPPED, RunStatus.CRASHED, RunStatus.FAILED)


def reopen_for_resume(store: Store, run_id: str, *, queue: bool = False) -> TrainConfig:
    """Check that a stopped/crashed run can continue, mark it running (or queued for the worker) and
    return its config. A finished run stays finished: its record is final."""
    from core.errors import CheckpointError
    from core.resume import has_last, read_last

    run = store.get_run(run_id)
    if run.status not in RESUMABLE:
        raise ConfigError(f"run {run_id} is {run.status.value}; only stopped, crashed or failed runs can resume")
    if not has_last(store.run_folder(run_id)):
        raise CheckpointError(f"run {run_id} has no completed epoch to resume from; start it again instead")
    config = TrainConfig.from_dict(run.config)
    store.forget_after_epoch(run_id, read_last(store.run_folder(run_id)).epoch)
    store.reopen_run(run_id, RunStatus.QUEUED if queue else RunStatus.RUNNING)
    return config


def queue_resume(store: Store, run_id: str) -> None:
    """Queue a stopped/crashed run for the worker: from its last epoch, or from the start when it
    died before finishing one (its partial records are dropped)."""
    from core.resume import has_last

    if has_last(store.run_folder(run_id)):
        reopen_for_resume(store, run_id, queue=True)
        return
    run = store.get_run(run_id)
    if run.status not in RESUMABLE:
        raise ConfigError(f"run {run_id} is {run.status.value}; only stopped, crashed or failed runs can resume")
    store.forget_after_epoch(run_id, 0)
    store.reopen_run(run_id, RunStatus.QUEUED)


def hand_record(writer: Writer, m: EpochMetrics, wait: bool) -> None:
    """Stage epoch `m`'s record in `writer` (its job "record"), to be committed before the epoch's
    checkpoints; with `wait`, commit it now (the checkpoints then follow in a batch of their own)."""
    writer.hand("record", vars(m))                   # its fields: a dict pickles in half the time
    if wait:
        writer.flush()


def log_epoch_fields(store: Store, run_id: str, fields: dict) -> None:
    log_epoch(store, run_id, EpochMetrics(**fields))


def log_epoch(store: Store, run_id: str, m: EpochMetrics) -> None:
    """One epoch's metrics, step losses, live changes and summary, in one transaction."""
    values = {key: getattr(m, key) for key in EPOCH_KEYS}
    values["epoch"] = m.epoch
    store.record_epoch(run_id, values, step=m.step, epoch=m.epoch, step_losses=m.step_losses,
                       first_step=m.step - len(m.step_losses),
                       epoch_events=[("change", {"field": field, "value": value}, step)
                                     for step, field, value in m.changes],
                       summary={**values, "best_epoch": m.best_epoch})


def outcome_summary(outcome: Outcome) -> dict:
    return {"best_val_acc": outcome.best_val_acc, "best_val_loss": outcome.best_val_loss,
            "best_epoch": outcome.best_epoch, "epochs_completed": outcome.epochs_completed,
            "checkpoint": outcome.checkpoint}


def _reason(exc: BaseException) -> str:
    if isinstance(exc, (GeneratorExit, KeyboardInterrupt)):
        return "interrupted"
    return f"{type(exc).__name__}: {exc}".splitlines()[0]
