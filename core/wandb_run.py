"""The live run of `core.wandb`: `Run` (logging steps, files, artifacts, ending) and the sweep trial.

    run = wandb.init(...)                      # core.wandb makes Run objects; scripts do not
    run.log({"loss": 0.3}); run.summary["best"] = 0.9; run.save("*.txt"); run.finish()

    with sweep_trial(SweepTrial(sweep_id, values)):   # what a sweep agent does around the user's function
        my_train()                                    # init() inside joins the sweep; log() may raise RunPruned

The current sweep trial is kept here (`current_sweep_trial()` reads it at call time). A `Run` knows
nothing of `core.wandb`'s current run: `core.wandb.init()` passes `on_end` (called once when the run
ends, so `core.wandb` can forget it) and `heartbeat_s` (the seconds between heartbeats, asked before
each one).
"""

from __future__ import annotations

import glob
import os
import threading
import warnings
from typing import Callable
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from core.paths import safe_relative
from core.status import RunStatus
from core.wandb_artifacts import Artifact, _artifact_from_path, _check_aliases, parse_artifact_ref
from core.wandb_media import Row, epoch_of, sort_values
from core.wandb_values import Config, Error, MetricSummaries, Summary, refuse_attribute, to_scalar

SAVE_POLICIES = ("live", "now", "end")


@dataclass(frozen=True)
class SweepTrial:
    """What a sweep agent sets around its call of the user's function (see `sweep_trial`)."""

    sweep_id: str
    values: dict                                   # sampled parameters: they win over the script's config
    run_id: str | None = None                      # the id the agent chose for the trial's run, if any
    project: str | None = None
    run_ids: list = field(default_factory=list)    # ids of the runs init() made during the trial
    metric: str | None = None                      # the sweep metric, checked for early termination
    early_stop: Callable[[], str | None] | None = None   # the controller's verdict after a logged value


class RunPruned(Exception):
    """Raised from `log()` when a sweep's early termination stops this run; the agent catches it."""


_sweep: SweepTrial | None = None


@contextmanager
def sweep_trial(trial: SweepTrial):
    """Runs started inside belong to `trial.sweep_id` and see `trial.values` in their config."""
    global _sweep
    previous, _sweep = _sweep, trial
    try:
        yield trial
    finally:
        _sweep = previous


def current_sweep_trial() -> SweepTrial | None:
    """The trial set by the innermost `sweep_trial`, or None outside one."""
    return _sweep


def _reason(exc: BaseException) -> str:
    return (f"{type(exc).__name__}: {exc}".splitlines() or [type(exc).__name__])[0]


# -- the run -------------------------------------------------------------------------------------

class Run:
    """A live run: log to it, read and change its config and summary, finish it (or use `with`)."""

    def __init__(self, store, record, step: int = 0, locked=(), *, on_end: Callable[[Run], None],
                 heartbeat_s: Callable[[], float], resumed: bool = False, allow_val_change: bool = False):
        self._store = store                        # None when disabled
        self.id: str = record.run_id
        self._name, self.project, self.group = record.name, record.project, record.group
        self._tags, self._notes = tuple(record.tags), record.notes
        self.sweep_id = record.sweep_id
        self.job_type: str | None = None
        self.resumed = resumed                     # True when init() continued a stored run
        write_config = None if store is None else (lambda values: store.change_config(self.id, values, step=self.step))
        write_summary = None if store is None else (lambda values: store.update_summary(self.id, values))
        self.config = Config(record.config, write_config, locked, allow_val_change)
        self.summary = Summary(record.summary, write_summary)
        self._metrics = MetricSummaries(self._logged_values)
        self.step = step
        self._pending = Row()
        self._saved: dict[str, tuple[Path, str]] = {}      # label -> (source, policy)
        self._ended = False
        self._on_end = on_end                      # core.wandb forgets the run (no longer current)
        self._beat = _start_heartbeat(store, self.id, heartbeat_s) if store is not None else None
        self._scratch = None
        self.disabled = store is None

    @property
    def dir(self) -> str:
        """A folder for files: what is left in it is stored with the run when it finishes."""
        if self._store is None:
            import tempfile
            if self._scratch is None:
                self._scratch = tempfile.TemporaryDirectory(prefix="lab-disabled-run-")
            return self._scratch.name
        folder = self._store.run_folder(self.id) / "files"
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder)

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._set_label("name", str(value))

    @property
    def tags(self) -> tuple[str, ...]:
        return self._tags

    @tags.setter
    def tags(self, value) -> None:
        self._set_label("tags", _check_tags(value))

    @property
    def notes(self) -> str:
        return self._notes

    @notes.setter
    def notes(self, value: str) -> None:
        self._set_label("notes", str(value or ""))

    def _set_label(self, label: str, value) -> None:
        if self._store is not None:
            self._store.update_run(self.id, **{label: value})
        setattr(self, f"_{label}", value)

    def __getattr__(self, name: str):
        refuse_attribute(self, name)

    # -- logging --------------------------------------------------------------------------------

    def log(self, data: Mapping, step: int | None = None, commit: bool | None = None, sync=None) -> None:
        """Log values at the current step (see the module docstring for W&B's step rules)."""
        if self._store is None:
            return
        self._check_open("log")
        if step is not None:
            step = _check_step(step)
            if step < self.step:
                warnings.warn(f"log(step={step}) is ignored: the run is at step {self.step} and steps only grow "
                              "(as in W&B); leave step out to log at the current step", stacklevel=2)
                return
        row = sort_values(data)                    # before any change, so a bad value leaves nothing behind
        if step is not None and step > self.step:
            self._write_pending()
            self.step = step
        self._pending.merge(row)
        if commit if commit is not None else step is None:
            self._write_pending()
            self.step += 1

    def _write_pending(self) -> None:
        row, self._pending = self._pending, Row()
        if not row:
            return
        store, epoch = self._store, epoch_of(row.numbers)
        if row.numbers:                       # rows and their summary values in one transaction
            summary = self._metrics.summary_of(row.numbers)
            store.log_metrics(self.id, row.numbers, step=self.step, epoch=epoch, summary=summary)
            self.summary._store_values(summary, written=True)
            self._check_early_stop(row.numbers)
        for key, images in row.images.items():
            for image in images:
                store.log_image(self.id, key, image.png, step=self.step, caption=image.caption or "",
                                size=(image.width, image.height))
        for key, table in row.tables.items():
            store.log_table(self.id, key, table.columns, table.stored_rows(store.put_blob), step=self.step)
        if row.texts:
            store.log_event(self.id, "text", row.texts, step=self.step, epoch=epoch)
        self.summary._store_values(row.texts)

    def define_metric(self, name: str, step_metric=None, step_sync=None, hidden=None, summary=None, goal=None,
                      overwrite=None) -> None:
        """Keep `summary` aggregates ("min", "max", "mean", "best" with `goal`, "last", "none"; several as
        "min,max") of the metric `name` in the run's summary instead of its last value, as W&B does:
        define_metric("val_acc", summary="max") gives summary["val_acc"] == {"max": 0.93}. `step_metric`,
        `step_sync` and `hidden` concern W&B's charts and are accepted without effect."""
        self._metrics.define(name, summary, goal, overwrite)

    def _logged_values(self, key: str) -> list:
        """What the store holds for `key` (a resumed run's earlier values), NaN rows left out."""
        if self._store is None:
            return []
        return [r["value"] for r in self._store.metric_rows(self.id, [key]) if r["value"] is not None]

    def watch(self, *args, **kwargs) -> None:
        return None

    def unwatch(self, *args, **kwargs) -> None:
        return None

    # -- files and artifacts --------------------------------------------------------------------------

    def save(self, glob_str=None, base_path=None, policy: str = "live") -> list[str]:
        """Store the files matching `glob_str` as run files labelled by their path relative to
        `base_path` (default: the working folder; for an absolute pattern, its folder). "live" and
        "now" store them now ("live" again at finish if they changed), "end" at finish."""
        if self._store is None:
            return []
        self._check_open("save")
        if policy not in SAVE_POLICIES:
            raise ValueError(f"unknown save policy {policy!r}; choose one of: {', '.join(SAVE_POLICIES)}")
        if glob_str is None:
            raise ValueError("save() needs a file path or glob pattern")
        pattern = os.fspath(glob_str)
        if base_path is None:
            base_path = os.path.dirname(pattern) if os.path.isabs(pattern) else "."
        matches = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
        if not matches:
            warnings.warn(f"save({pattern!r}) matched no files", stacklevel=2)
        labels = []
        for path in matches:
            label = safe_relative(Path(os.path.relpath(os.path.abspath(path), os.path.abspath(base_path))).as_posix())
            if policy != "end":
                self._store.save_run_file(self.id, label, Path(path))
            self._saved[label] = (Path(path).resolve(), policy)
            labels.append(label)
        return labels

    def _save_at_end(self) -> None:
        from core.tracker.files import sha256_file

        stored = {f["path"]: f["sha256"] for f in self._store.run_files(self.id)}
        wanted = {label: source for label, (source, policy) in self._saved.items() if policy != "now"}
        folder = self._store.run_folder(self.id) / "files"
        if folder.is_dir():
            wanted.update({p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()})
        for label, source in wanted.items():
            if source.is_file() and stored.get(label) != sha256_file(source):
                self._store.save_run_file(self.id, label, source)

    def log_artifact(self, artifact_or_path, name: str | None = None, type: str | None = None, aliases=None,
                     tags=None) -> Artifact:
        """Store a new version of the artifact (or reuse the latest when the files are the same)."""
        artifact = artifact_or_path if isinstance(artifact_or_path, Artifact) else \
            _artifact_from_path(artifact_or_path, name, type)
        if self._store is None:
            return artifact
        self._check_open("log_artifact")
        if artifact.version is not None:
            raise ValueError(f"artifact {artifact.name} is already stored; make a new Artifact for a new version")
        aliases, files = _check_aliases(aliases), artifact.entries()
        self._check_type(artifact)
        record = self._store.log_artifact(artifact.name, artifact.type, files, run_id=self.id, aliases=aliases,
                                          description=artifact.description, metadata=artifact.metadata)
        return artifact.bind(record, self._store, self._download_folder(record))

    def use_artifact(self, artifact_or_name, type: str | None = None, aliases=None, use_as=None):
        """Record that this run uses a stored artifact version; returns it (call `.download()`)."""
        if self._store is None:
            return _Inert()
        self._check_open("use_artifact")
        if isinstance(artifact_or_name, Artifact):
            if artifact_or_name.version is None:
                raise ValueError(f"artifact {artifact_or_name.name!r} is not stored yet; log it first")
            name, alias = artifact_or_name.name.split(":")[0], artifact_or_name.version
        else:
            name, alias = parse_artifact_ref(artifact_or_name)
        try:
            found = self._store.get_artifact(name, alias)
        except LookupError:
            raise Error(f"no artifact {name}:{alias} in the store ({self._store.url}); log it first, or check "
                        "the name and alias") from None
        if type is not None and found.type != type:
            raise ValueError(f"artifact {found.label} has type {found.type!r}, not {type!r}")
        record = self._store.use_artifact(name, f"v{found.version}", self.id)
        return Artifact.from_record(record, self._store, self._download_folder(record))

    def _check_type(self, artifact: Artifact) -> None:
        try:
            latest = self._store.get_artifact(artifact.name, "latest")
        except LookupError:
            return
        if latest.type != artifact.type:
            raise ValueError(f"artifact {artifact.name!r} has type {latest.type!r}; a new version cannot be "
                             f"{artifact.type!r}")

    def _download_folder(self, record) -> Path:
        return self._store.run_folder(self.id) / "artifacts" / f"{record.name}-v{record.version}"

    # -- ending ---------------------------------------------------------------------------------

    def _check_early_stop(self, numbers: dict) -> None:
        """Under a sweep agent: ask the controller after each logged value of the sweep metric."""
        trial = _sweep
        if trial is None or trial.early_stop is None or trial.metric not in numbers or self.sweep_id is None:
            return
        reason = trial.early_stop()
        if reason:
            self._store.log_event(self.id, "pruned", {"reason": reason}, step=self.step)
            self._end(RunStatus.PRUNED, reason)
            raise RunPruned(reason)

    def finish(self, exit_code: int | None = None, quiet=None) -> None:
        """End the run: finished, or failed for a non-zero exit code. A second call does nothing."""
        if exit_code is not None and (isinstance(exit_code, bool) or not isinstance(exit_code, int)):
            raise TypeError(f"finish(exit_code={exit_code!r}): the exit code must be a whole number (0: success)")
        if exit_code:
            self._end(RunStatus.FAILED, f"exit code {exit_code}", exit_code)
        else:
            self._end(RunStatus.FINISHED, "finished by the script", exit_code)

    def _end(self, status: RunStatus, reason: str, exit_code: int | None = None) -> None:
        """Write what is pending, then an "end" event and the final status (once)."""
        if self._ended:
            return
        self._ended = True
        try:
            if self._store is not None:
                self._write_pending()
                self._save_at_end()
        except Exception as exc:
            status, reason = RunStatus.FAILED, f"could not store the run's last values: {_reason(exc)}"
            raise
        finally:
            if self._beat is not None:
                self._beat.set()
            self._on_end(self)
            if self._store is not None:
                ended = {"status": status.value, "reason": reason}
                if exit_code is not None:
                    ended["exit_code"] = exit_code
                self._store.log_event(self.id, "end", ended, step=self.step)
                self._store.finish_run(self.id, status, reason)

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or (isinstance(exc, SystemExit) and not exc.code):
            self.finish()
        elif isinstance(exc, KeyboardInterrupt):
            self._end(RunStatus.STOPPED, "interrupted")
        else:
            self._end(RunStatus.FAILED, _reason(exc))
        return False

    def _check_open(self, what: str) -> None:
        if self._ended:
            raise Error(f"run {self.id} has finished; call wandb.init() to start a new run before {what}()")

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, name={self._name!r}, project={self.project!r})"


class _Inert:
    """What a disabled run hands out: accepts any attribute or call and does nothing."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self

    def __call__(self, *args, **kwargs):
        return self


def _check_step(step) -> int:
    value = to_scalar(step)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"log(step=...) needs a whole number >= 0; got {step!r}")
    return value


def _check_tags(tags) -> tuple[str, ...]:
    tags = (tags,) if isinstance(tags, str) else tuple(tags or ())
    if any(not isinstance(t, str) or not t for t in tags):
        raise TypeError(f"tags must be non-empty strings; got {list(tags)}")
    return tags


def _start_heartbeat(store, run_id: str, heartbeat_s: Callable[[], float]) -> threading.Event:
    """Refresh the run's heartbeat every `heartbeat_s()` seconds until the event is set, so a long silent
    epoch is not taken for a crash."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(heartbeat_s()):
            try:
                store.log_metrics(run_id, {})
            except Exception as exc:                # the script's own writes report store trouble
                warnings.warn(f"run {run_id}: heartbeat stopped: {_reason(exc)}")
                return

    threading.Thread(target=beat, name=f"heartbeat-{run_id}", daemon=True).start()
    return stop
