"""Run scripts written for Weights & Biases offline against the lab's store, by changing one import.

    import core.wandb as wandb
    run = wandb.init(project="mnist", config={"lr": 1e-3}, save_code=True)
    for epoch in range(1, 4):
        wandb.log({"epoch": epoch, "val_acc": acc})      # metrics at steps 0, 1, 2
    wandb.summary["best_val_acc"] = best                 # explicit summary value
    wandb.finish()                                       # or: with wandb.init(...) as run: ...

Semantics follow W&B's:
- Steps: a counter from 0; `log(d)` writes at the current step and moves on; `commit=False` merges
  into the current step until a commit; `step=N` below the current step is dropped with a warning,
  above it first writes the pending row and jumps (with `step=`, commit defaults to False, as in W&B).
  A resumed run continues after its last logged step.
- Values: numbers (bool, int, float, numpy/torch scalars) become metric rows (an int `epoch` key also
  fills the rows' epoch); strings become one "text" event per step; `Image` (or a list of them) and
  `Table` values go to the store's images and tables; a nested dict is flattened to "a.b" keys.
  Anything else is refused with an error naming the key.
- Summary: the last logged value of each key, unless set explicitly (`run.summary["best"] = x`);
  whichever was written last wins, as in W&B.
- Config: attribute and item access, `update(dict | Namespace | dataclass | pydantic model)`; changing
  a value needs `allow_val_change=True`; every change is written to the store at once.
- `init(resume=...)`: "must" needs the id to exist, "never" refuses an existing id, "allow"/"auto"/True
  resume it if it exists and otherwise create it. An existing id without resume is refused (W&B would
  overwrite that run's data; here finished records are kept). Ids are 1-32 characters of a-z, 0-9.
- `mode="disabled"` (or WANDB_MODE=disabled) gives a run that accepts every call and writes nothing.
- `save()` stores files as run files under their relative path; files written into `run.dir` are
  stored when the run finishes. `define_metric`, `watch`, `login` are accepted and do nothing.

Sweep agents wrap their call of the user's function in `with sweep_trial(SweepTrial(...)):`; init()
then makes a sweep run whose config holds the sampled values, which win over `init(config=...)` and
are locked against later updates (W&B's behaviour).
"""

from __future__ import annotations

import atexit
import glob
import os
import sys
import threading
import warnings
from typing import Callable
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import RunNotFound
from core.paths import safe_relative
from core.status import RunStatus
from core.tracker import check_run_id, new_run_id, shared_store
from core.wandb_media import (Artifact, Config, Error, Image, Row, Summary, Table, check_artifact_name, config_dict,
                              config_key, epoch_of, json_friendly, parse_artifact_ref, sort_values, to_scalar)

__all__ = ["Artifact", "Error", "Image", "Run", "RunPruned", "Table", "agent", "config", "define_metric",
           "finish", "init", "log", "log_artifact", "login", "run", "save", "summary", "sweep", "unwatch",
           "use_artifact", "watch"]

MODES = ("online", "offline", "disabled", "shared")
REINIT_MODES = (None, True, False, "default", "finish_previous", "return_previous", "create_new")
SAVE_POLICIES = ("live", "now", "end")
HEARTBEAT_S = 10.0            # well inside the 30 s after which a silent running run counts as crashed
MAX_CODE_BYTES = 1_000_000
KNOWN_INIT_ARGS = {"entity", "anonymous", "settings", "sync_tensorboard", "monitor_gym", "magic", "force",
                   "tensorboard", "fork_from", "resume_from", "config_exclude_keys", "config_include_keys",
                   "allow_val_change"}


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


def _reason(exc: BaseException) -> str:
    return (f"{type(exc).__name__}: {exc}".splitlines() or [type(exc).__name__])[0]


# -- the run -------------------------------------------------------------------------------------

class Run:
    """A live run: log to it, read and change its config and summary, finish it (or use `with`)."""

    def __init__(self, store, record, step: int = 0, locked=()):
        self._store = store                        # None when disabled
        self.id: str = record.run_id
        self._name, self.project, self.group = record.name, record.project, record.group
        self._tags, self._notes = tuple(record.tags), record.notes
        self.sweep_id = record.sweep_id
        self.job_type: str | None = None
        write_config = None if store is None else (lambda values: store.update_run(self.id, config=values))
        write_summary = None if store is None else (lambda values: store.update_summary(self.id, values))
        self.config = Config(record.config, write_config, locked)
        self.summary = Summary(record.summary, write_summary)
        self.step = step
        self._pending = Row()
        self._saved: dict[str, tuple[Path, str]] = {}      # label -> (source, policy)
        self._ended = False
        self._beat = _start_heartbeat(store, self.id) if store is not None else None
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
            store.log_metrics(self.id, row.numbers, step=self.step, epoch=epoch, summary=row.numbers)
            self.summary._store_values(row.numbers, written=True)
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
                      overwrite=None, **kwargs) -> None:
        """Accepted for W&B scripts; records nothing (the summary keeps the last value)."""
        return None

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
        if exit_code:
            self._end(RunStatus.FAILED, f"exit code {exit_code}")
        else:
            self._end(RunStatus.FINISHED, "finished by the script")

    def _end(self, status: RunStatus, reason: str) -> None:
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
            _forget(self)
            if self._store is not None:
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


def _check_aliases(aliases) -> list[str]:
    aliases = [aliases] if isinstance(aliases, str) else list(aliases or ())
    kept = []
    for alias in aliases:
        if not isinstance(alias, str) or not 1 <= len(alias) <= 128 or "/" in alias or ":" in alias:
            raise ValueError(f"alias {alias!r}: use 1-128 characters without '/' or ':'")
        if alias[0] == "v" and alias[1:].isdigit():
            warnings.warn(f"alias {alias!r} is ignored: version names are given by the store (as in W&B)",
                          stacklevel=3)
            continue
        kept.append(alias)
    return kept


def _artifact_from_path(path, name: str | None, type: str | None) -> Artifact:
    source = Path(path)
    artifact = Artifact(name or check_artifact_name(source.name.replace(" ", "_")), type or "unspecified")
    if source.is_dir():
        artifact.add_dir(source)
    else:
        artifact.add_file(source)
    return artifact


def _start_heartbeat(store, run_id: str) -> threading.Event:
    """Refresh the run's heartbeat every HEARTBEAT_S until the event is set, so a long silent epoch is
    not taken for a crash."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S):
            try:
                store.log_metrics(run_id, {})
            except Exception as exc:                # the script's own writes report store trouble
                warnings.warn(f"run {run_id}: heartbeat stopped: {_reason(exc)}")
                return

    threading.Thread(target=beat, name=f"heartbeat-{run_id}", daemon=True).start()
    return stop


# -- init and the current run -----------------------------------------------------------------------

def resume_decision(resume, run_id: str | None, exists: bool) -> str:
    """"create" or "resume", by W&B's resume modes; Error where W&B refuses."""
    if not (resume is None or isinstance(resume, bool) or resume in ("allow", "must", "never", "auto")):
        raise ValueError(f"unknown resume {resume!r}; choose one of: allow, must, never, auto, True, False, None")
    if resume == "must":
        if run_id is None or not exists:
            raise Error(f"resume='must' needs the id of a stored run; {run_id!r} is not in the store")
        return "resume"
    if resume == "never":
        if exists:
            raise Error(f"resume='never' but run {run_id!r} already exists; pass another id, or leave id out")
        return "create"
    if resume in ("allow", "auto") or resume is True:
        return "resume" if exists else "create"
    if exists:
        raise Error(f"run {run_id!r} already exists; pass resume='allow' or 'must' to continue it, or another id")
    return "create"


def init(project: str | None = None, config=None, name: str | None = None, id: str | None = None, resume=None,
         group: str | None = None, tags=None, notes: str | None = None, save_code: bool = False, dir=None,
         mode: str | None = None, job_type: str | None = None, reinit=None, **unknown) -> Run:
    """Start (or resume) a run in the store and make it the current one (`wandb.run`)."""
    unknown_names = sorted(set(unknown) - KNOWN_INIT_ARGS)
    if unknown_names:
        warnings.warn(f"init() ignores unknown arguments: {', '.join(unknown_names)}", stacklevel=2)
    mode = mode or os.environ.get("WANDB_MODE") or "online"
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of: {', '.join(MODES)}")
    if reinit not in REINIT_MODES:
        raise ValueError(f"unknown reinit {reinit!r}; choose one of: {', '.join(map(str, REINIT_MODES))}")
    values = _filtered(config_dict(config), unknown.get("config_include_keys"), unknown.get("config_exclude_keys"))
    values = {config_key(k): json_friendly(v, f"config {k!r}") for k, v in values.items()}
    options = dict(project=project or os.environ.get("WANDB_PROJECT"), name=name, group=group,
                   tags=_check_tags(tags), notes=notes)
    if run is not None and reinit in (False, "return_previous"):
        return run
    if run is not None and reinit != "create_new":
        run.finish()
    if mode == "disabled":
        new = _disabled_run(values, options)
    else:
        new = _store_run(values, options, id or os.environ.get("WANDB_RUN_ID"),
                         resume if resume is not None else os.environ.get("WANDB_RESUME"), save_code)
    new.job_type = job_type
    _set_current(new)
    return new


def _filtered(values: dict, include, exclude) -> dict:
    if include:
        values = {k: v for k, v in values.items() if k in set(include)}
    return {k: v for k, v in values.items() if k not in set(exclude or ())}


def _disabled_run(values: dict, options: dict) -> Run:
    from core.tracker import RunRecord

    run_id = new_run_id()
    record = RunRecord(run_id, options["name"] or f"run-{run_id}", options["project"] or "default",
                       RunStatus.RUNNING, "", values, {}, "script", 0.0, None, group=options["group"],
                       tags=options["tags"], notes=options["notes"] or "")
    return Run(None, record)


def _store_run(values: dict, options: dict, run_id: str | None, resume, save_code: bool) -> Run:
    trial = _sweep
    if trial is not None:
        values = {**values, **json_friendly(dict(trial.values), "sweep values")}
        options["project"] = trial.project or options["project"]
        run_id = trial.run_id or run_id
    if run_id is not None:
        _check_id(run_id)
    store = shared_store()
    exists = run_id is not None and _exists(store, run_id)
    adopt = trial is not None and trial.run_id is not None and exists      # the agent made the trial's run
    if adopt or resume_decision(resume, run_id, exists) == "resume":
        new = _resume(store, run_id, values, options)
    else:
        from core.runs import environment

        run_id = store.create_run(values, run_id=run_id, source="script" if trial is None else "sweep",
                                  sweep_id=None if trial is None else trial.sweep_id,
                                  environment=environment(), code=_script_source() if save_code else None,
                                  **{k: v for k, v in options.items() if v is not None})
        new = Run(store, store.get_run(run_id), locked=() if trial is None else trial.values)
    if trial is not None:
        trial.run_ids.append(new.id)
    _install_exit_hooks()
    return new


def _check_id(run_id) -> None:
    try:
        check_run_id(run_id)
    except RunNotFound:
        raise ValueError(f"id={run_id!r} cannot be used: run ids here are 1-32 characters of a-z and 0-9 "
                         "(W&B allows more); pass such an id, or leave id out for a new one") from None


def _exists(store, run_id: str) -> bool:
    try:
        store.get_run(run_id)
    except RunNotFound:
        return False
    return True


def _resume(store, run_id: str, values: dict, options: dict) -> Run:
    store.reopen_run(run_id)
    changes = {k: v for k, v in options.items() if k != "project" and v}
    if values:
        changes["config"] = values
    if changes:
        store.update_run(run_id, **changes)
    steps = [r["step"] for r in store.metric_rows(run_id)]
    steps += [r["step"] for r in store.tables(run_id)] + [r["step"] for r in store.images(run_id)]
    steps = [s for s in steps if s is not None]
    trial = _sweep
    return Run(store, store.get_run(run_id), step=max(steps) + 1 if steps else 0,
               locked=() if trial is None else trial.values)


def _script_source() -> str | None:
    """The launching script's text (sys.argv[0], else __main__.__file__), or None with a warning."""
    import __main__

    for candidate in (sys.argv[0] if sys.argv else None, getattr(__main__, "__file__", None)):
        path = Path(candidate) if candidate else None
        if path is not None and path.is_file() and path.stat().st_size <= MAX_CODE_BYTES:
            try:
                return path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
    warnings.warn("save_code=True: the launching script could not be read as text; no code stored", stacklevel=4)
    return None


run: Run | None = None
_active: list[Run] = []
_hooks_installed = False


class _BeforeInit:
    """What `wandb.config` and `wandb.summary` are before init(): any use says to call init() first."""

    def __init__(self, what: str):
        object.__setattr__(self, "_what", what)

    def _refuse(self, *args, **kwargs):
        raise Error(f"You must call wandb.init() before wandb.{self._what}")

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        self._refuse()

    __setattr__ = __getitem__ = __setitem__ = __contains__ = __iter__ = __len__ = _refuse

    def __repr__(self) -> str:
        return f"<wandb.{self._what} before wandb.init()>"


config = _BeforeInit("config")
summary = _BeforeInit("summary")


def _set_current(new: Run | None) -> None:
    global run, config, summary
    run = new
    config = new.config if new is not None else _BeforeInit("config")
    summary = new.summary if new is not None else _BeforeInit("summary")
    if new is not None and new not in _active:
        _active.append(new)


def _forget(ended: Run) -> None:
    if ended in _active:
        _active.remove(ended)
    if run is ended:
        _set_current(None)


def _install_exit_hooks() -> None:
    """Like W&B: an uncaught exception marks open runs failed; a normal exit finishes them."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    previous = sys.excepthook

    def on_uncaught(exc_type, exc, tb) -> None:
        status = RunStatus.STOPPED if issubclass(exc_type, KeyboardInterrupt) else RunStatus.FAILED
        _end_all(status, "interrupted" if status is RunStatus.STOPPED else _reason(exc))
        previous(exc_type, exc, tb)

    sys.excepthook = on_uncaught
    atexit.register(_end_all, RunStatus.FINISHED, "the script ended without calling finish()")


def _end_all(status: RunStatus, reason: str) -> None:
    for open_run in list(_active):
        try:
            open_run._end(status, reason)
        except Exception as exc:
            print(f"core.wandb: could not end run {open_run.id}: {_reason(exc)}", file=sys.stderr)


def _current(what: str) -> Run:
    if run is None:
        raise Error(f"You must call wandb.init() before wandb.{what}()")
    return run


def log(data: Mapping, step: int | None = None, commit: bool | None = None, sync=None) -> None:
    _current("log").log(data, step=step, commit=commit)


def finish(exit_code: int | None = None, quiet=None) -> None:
    """Finish the current run; without one this does nothing (as in W&B, so it is safe to call twice)."""
    if run is not None:
        run.finish(exit_code)


def save(glob_str=None, base_path=None, policy: str = "live") -> list[str]:
    return _current("save").save(glob_str, base_path=base_path, policy=policy)


def log_artifact(artifact_or_path, name: str | None = None, type: str | None = None, aliases=None,
                 tags=None) -> Artifact:
    return _current("log_artifact").log_artifact(artifact_or_path, name=name, type=type, aliases=aliases)


def use_artifact(artifact_or_name, type: str | None = None, aliases=None, use_as=None):
    return _current("use_artifact").use_artifact(artifact_or_name, type=type)


def sweep(sweep, entity=None, project: str | None = None, prior_runs=None) -> str:
    """Create an offline sweep from a W&B sweep config (dict, YAML/JSON text or file); its id."""
    from core.sweeps import create_sweep

    return create_sweep(sweep, project=project)


def agent(sweep_id: str, function=None, entity=None, project=None, count: int | None = None) -> None:
    """Run `function` for trials of the sweep in this process (the built-in trainer without one);
    inside it, `init()` returns the trial's run with the sampled values in its config."""
    from core.sweeps import run_agent

    run_agent(sweep_id, function=function, count=count)


def define_metric(name: str, step_metric=None, step_sync=None, hidden=None, summary=None, goal=None,
                  overwrite=None, **kwargs) -> None:
    """Accepted for W&B scripts; records nothing (the summary keeps each key's last value)."""
    return None


def login(*args, **kwargs) -> bool:
    """Nothing to log in to: the store is local."""
    return True


def watch(*args, **kwargs) -> None:
    """Accepted for W&B scripts; gradients and parameters are not recorded."""
    return None


def unwatch(*args, **kwargs) -> None:
    return None


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(f"core.wandb has no {name!r}; it supports: {', '.join(sorted(__all__))}")
