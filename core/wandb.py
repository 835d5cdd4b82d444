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
  whichever was written last wins, as in W&B. `define_metric("val_acc", summary="max")` makes the
  key's summary its aggregates instead ({"max": 0.93}; also "min", "mean", "last", "best" with goal=,
  "none"), over every value the run logged for it, resumes included.
- Config: attribute and item access, `update(dict | Namespace | dataclass | pydantic model)`; changing
  a value needs `allow_val_change=True` (or `init(allow_val_change=True)`); every change after init()
  is written to the store at once, with a "config" event ({"field", "value", "previous"}).
- Events: "config" changes, "resume" (the step a resumed run continues from) and "end" ({"status",
  "reason", "exit_code"}); `finish(exit_code=N)` with N != 0 marks the run failed.
- `init(resume=...)`: "must" needs the id to exist, "never" refuses an existing id, "allow"/"auto"/True
  resume it if it exists and otherwise create it. "auto"/True without an id resume the newest script
  run of the same project started from the same dir if it did not finish (crashed, failed, stopped,
  or running without a heartbeat for SILENT_S), as W&B resumes a crashed run on the same machine;
  `run.resumed` tells which. An existing id without resume is refused (W&B would overwrite that run's
  data; here finished records are kept). Ids are 1-32 characters of a-z, 0-9.
- `init(dir=D)` (or WANDB_DIR) puts the lab's store and files in `D/.lab`, as W&B writes `D/wandb`,
  unless LAB_STORE names the store; D is created if missing, and a file there is refused.
- init() arguments: W&B's that mean nothing offline (IGNORED_INIT_ARGS: entity, settings...) are
  accepted with one warning each; `resume_from` and `fork_from` are refused; anything else is a
  TypeError, as in W&B.
- `mode="disabled"` (or WANDB_MODE=disabled) gives a run that accepts every call and writes nothing.
- `save()` stores files as run files under their relative path; files written into `run.dir` are
  stored when the run finishes. `watch`, `login` are accepted and do nothing.
- Run, Artifact, Image and Table refuse an unknown attribute with an AttributeError listing theirs.

Sweep agents wrap their call of the user's function in `with sweep_trial(SweepTrial(...)):`; init()
then makes a sweep run whose config holds the sampled values, which win over `init(config=...)` and
are locked against later updates (W&B's behaviour).

Layout: this module holds init(), resume decisions, the current run and the module-level calls;
`core.wandb_run` the Run and the sweep trial; `core.wandb_values` config, summary and `Error`;
`core.wandb_media` log() rows, Image and Table; `core.wandb_artifacts` Artifact; `core.wandb_init`
the checks of init()'s arguments.
"""

from __future__ import annotations

import atexit
import inspect
import os
import sys
import time
import warnings
from collections.abc import Mapping
from pathlib import Path

from core import wandb_run as _wandb_run
from core.errors import RunNotFound
from core.status import RunStatus
from core.tracker import check_run_id, new_run_id, shared_store
from core.wandb_artifacts import Artifact
from core.wandb_init import check_dir, check_init_args, filtered
from core.wandb_media import Image, Table
from core.wandb_run import Run, RunPruned, _check_tags, _reason, current_sweep_trial
from core.wandb_values import Error, config_dict, config_key, json_friendly

__all__ = ["Artifact", "Error", "Image", "Run", "RunPruned", "Table", "agent", "config", "define_metric",
           "finish", "init", "log", "log_artifact", "login", "run", "save", "summary", "sweep", "unwatch",
           "use_artifact", "watch"]

MODES = ("online", "offline", "disabled", "shared")
REINIT_MODES = (None, True, False, "default", "finish_previous", "return_previous", "create_new")
HEARTBEAT_S = 10.0            # well inside the 30 s after which a silent running run counts as crashed
SILENT_S = 30.0               # a running run without a heartbeat for this long is taken as crashed
MAX_CODE_BYTES = 1_000_000
AUTO_RESUMED = (RunStatus.CRASHED, RunStatus.FAILED, RunStatus.STOPPED)   # and silent running runs

# Sweep agents (core.sweeps) use these from here; the current trial itself is kept in core.wandb_run.
SweepTrial = _wandb_run.SweepTrial
sweep_trial = _wandb_run.sweep_trial


# -- init and the current run -----------------------------------------------------------------------

def resume_decision(resume, run_id: str | None, exists: bool) -> str:
    """"create" or "resume", by W&B's resume modes; Error where W&B refuses."""
    if not (resume is None or isinstance(resume, bool) or resume in ("allow", "must", "never", "auto")):
        raise ValueError(f"unknown resume {resume!r}; choose one of: allow, must, never, auto, True, False, None")
    if resume == "must":
        if run_id is None:
            raise Error("resume='must' needs id= of a stored run; pass the run's id, or resume='auto'")
        if not exists:
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
         mode: str | None = None, job_type: str | None = None, reinit=None, config_exclude_keys=None,
         config_include_keys=None, allow_val_change: bool | None = None, **more) -> Run:
    """Start (or resume) a run in the store and make it the current one (`wandb.run`)."""
    check_init_args(more, INIT_PARAMETERS)
    mode = mode or os.environ.get("WANDB_MODE") or "online"
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of: {', '.join(MODES)}")
    if reinit not in REINIT_MODES:
        raise ValueError(f"unknown reinit {reinit!r}; choose one of: {', '.join(map(str, REINIT_MODES))}")
    values = filtered(config_dict(config), config_include_keys, config_exclude_keys)
    values = {config_key(k): json_friendly(v, f"config {k!r}") for k, v in values.items()}
    options = dict(project=project or os.environ.get("WANDB_PROJECT"), name=name, group=group,
                   tags=_check_tags(tags), notes=notes)
    folder = None if mode == "disabled" else check_dir(dir if dir is not None else os.environ.get("WANDB_DIR"))
    if run is not None and reinit in (False, "return_previous"):
        return run
    if run is not None and reinit != "create_new":
        run.finish()
    if mode == "disabled":
        new = _disabled_run(values, options)
    else:
        new = _store_run(values, options, id or os.environ.get("WANDB_RUN_ID"),
                         resume if resume is not None else os.environ.get("WANDB_RESUME"), save_code, folder,
                         bool(allow_val_change))
    new.job_type = job_type
    _set_current(new)
    return new


INIT_PARAMETERS = [n for n in inspect.signature(init).parameters if n != "more"]   # named in TypeErrors


def _disabled_run(values: dict, options: dict) -> Run:
    from core.tracker import RunRecord

    run_id = new_run_id()
    record = RunRecord(run_id, options["name"] or f"run-{run_id}", options["project"] or "default",
                       RunStatus.RUNNING, "", values, {}, "script", 0.0, None, group=options["group"],
                       tags=options["tags"], notes=options["notes"] or "")
    return _new_run(None, record)


def _lab_store(folder: Path | None):
    """The store of `init(dir=folder)`: `folder/.lab` as the lab folder (as W&B writes `dir/wandb`),
    unless LAB_STORE names the store; without a folder, the usual one ($LAB_STORE, else $LAB_HOME)."""
    if folder is None or os.environ.get("LAB_STORE"):
        return shared_store()
    return shared_store(home=folder / ".lab")


def _store_run(values: dict, options: dict, run_id: str | None, resume, save_code: bool, folder: Path | None,
               allow_val_change: bool) -> Run:
    trial = current_sweep_trial()
    if trial is not None:
        values = {**values, **json_friendly(dict(trial.values), "sweep values")}
        options["project"] = trial.project or options["project"]
        run_id = trial.run_id or run_id
    if run_id is not None:
        _check_id(run_id)
    store, launch_dir = _lab_store(folder), str(folder or Path.cwd().resolve())
    if run_id is None and trial is None and (resume is True or resume == "auto"):
        run_id = _unfinished_run(store, options["project"] or "default", launch_dir)
    exists = run_id is not None and _exists(store, run_id)
    adopt = trial is not None and trial.run_id is not None and exists      # the agent made the trial's run
    if adopt or resume_decision(resume, run_id, exists) == "resume":
        new = _resume(store, run_id, values, options, allow_val_change)
    else:
        from core.runs import environment

        run_id = store.create_run(values, run_id=run_id, source="script" if trial is None else "sweep",
                                  sweep_id=None if trial is None else trial.sweep_id,
                                  environment={**environment(), "dir": launch_dir},
                                  code=_script_source() if save_code else None,
                                  **{k: v for k, v in options.items() if v is not None})
        new = _new_run(store, store.get_run(run_id), locked=() if trial is None else trial.values,
                       allow_val_change=allow_val_change)
    if trial is not None:
        trial.run_ids.append(new.id)
    _install_exit_hooks()
    return new


def _unfinished_run(store, project: str, launch_dir: str) -> str | None:
    """For resume="auto" without an id, as W&B does: the newest script run of `project` started from
    `launch_dir`, if it crashed, failed or was stopped (or is running but silent); runs still beating
    belong to other live processes and are passed over. None when the newest such run finished."""
    for record in store.list_runs(project=project, source="script"):
        if (record.environment or {}).get("dir") != launch_dir:
            continue
        if record.status is RunStatus.RUNNING and (record.heartbeat_at or 0) > time.time() - SILENT_S:
            continue
        silent = record.status is RunStatus.RUNNING
        return record.run_id if silent or record.status in AUTO_RESUMED else None
    return None


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


def _resume(store, run_id: str, values: dict, options: dict, allow_val_change: bool = False) -> Run:
    """Continue a stored run after its last logged step; init()'s labels and config are applied (config
    changes logged as events) and a "resume" event marks the step it continues from."""
    store.reopen_run(run_id)
    changes = {k: v for k, v in options.items() if k != "project" and v}
    if changes:
        store.update_run(run_id, **changes)
    steps = [r["step"] for r in store.metric_rows(run_id)]
    steps += [r["step"] for r in store.tables(run_id)] + [r["step"] for r in store.images(run_id)]
    steps = [s for s in steps if s is not None]
    step = max(steps) + 1 if steps else 0
    if values:
        store.change_config(run_id, values, step=step)
    store.log_event(run_id, "resume", {"step": step}, step=step)
    trial = current_sweep_trial()
    return _new_run(store, store.get_run(run_id), step=step, locked=() if trial is None else trial.values,
                    resumed=True, allow_val_change=allow_val_change)


def _new_run(store, record, step: int = 0, locked=(), resumed: bool = False, allow_val_change: bool = False) -> Run:
    """A Run that leaves `run` and `_active` when it ends, and beats every HEARTBEAT_S (read before each
    beat, so a change of HEARTBEAT_S reaches open runs)."""
    return Run(store, record, step=step, locked=locked, on_end=_forget, heartbeat_s=lambda: HEARTBEAT_S,
               resumed=resumed, allow_val_change=allow_val_change)


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
                  overwrite=None) -> None:
    """`run.define_metric` of the current run: keep min/max/mean/best/last of a metric in its summary."""
    _current("define_metric").define_metric(name, step_metric=step_metric, step_sync=step_sync, hidden=hidden,
                                            summary=summary, goal=goal, overwrite=overwrite)


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
