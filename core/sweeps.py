"""Offline sweeps: a controller that hands out trials from the store, and agents that run them.

    sweep_id = create_sweep(config_dict_or_yaml, project="digits")
    run_agent(sweep_id, count=8)                       # the built-in trainer (TrainConfig parameters)
    run_agent(sweep_id, function=my_train, count=8)    # a W&B-style function using core.wandb
    stop_sweep_runs(store, sweep_id)                   # from any machine: no new trials, running ones stop

The controller has no process of its own: each agent asks `next_trial`, which decides from what the
store holds (grid points taken, random draws, an Optuna TPE study rebuilt from the trials for bayes,
with the trials still running as pending points) and inserts the trial's run in one transaction that
holds the sweep's lock, so every run goes to exactly one agent and `run_cap` holds, also across
processes and machines sharing a PostgreSQL store. New trials stop at `run_cap`, at the metric's
`target`, when a grid is exhausted, or when the sweep is stopped; the sweep is `finished` once it has
no more trials to give and none of its runs still trains.

Early termination (hyperband) is checked on every logged value of the sweep metric, against the
sweep's runs that are running or ended normally; a stopped run ends `pruned` with a one-line reason
recorded as an event. Built-in trainer trials in a hosted demo (LAB_DEMO=1) are held to its caps.
An agent that dies leaves its run `running` until the next agent, or the Sweeps page reading
`sweep_table`, marks it `crashed` (its process gone on this machine, or no heartbeat for
STALE_AFTER_S); the sweep goes on.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np

from core.hyperband import should_stop
from core.status import RunStatus
from core.sweepsample import (impute_value, iter_grid, observe_value, optuna_distributions, point_key,
                              reached_target, sample_random, suggest)
from core.sweepspec import SweepSpec, load_spec
from core.tracker import Store, new_run_id

HEARTBEAT_S = 5.0
STALE_AFTER_S = 60.0
FINAL_OK = (RunStatus.FINISHED, RunStatus.PRUNED, RunStatus.STOPPED)
HYPERBAND_COUNTED = (RunStatus.RUNNING, *FINAL_OK)     # the runs hyperband's thresholds are taken over
BAYES_STARTUP_TRIALS = 5         # random points before TPE's model takes over
BAYES_TRIES = 20                 # asks for a point no trial holds yet before taking a repeat
CLAIM_TRIES = 20                 # another agent may take the same grid point


@dataclass(frozen=True)
class Trial:
    sweep_id: str
    run_id: str
    params: dict
    spec: SweepSpec


def create_sweep(config, project: str | None = None, store: Store | None = None) -> str:
    """Validate a W&B sweep config (dict, YAML/JSON text or file) and record the sweep; its id."""
    spec = load_spec(config)
    store = store or Store()
    sweep_id = new_run_id()
    store.create_sweep(sweep_id, spec.to_dict(), project or spec.project or "default", spec.name)
    return sweep_id


def sweep_spec(store: Store, sweep_id: str) -> SweepSpec:
    return load_spec(store.get_sweep(sweep_id)["config"])


def run_value(history: list[float], goal: str) -> float | None:
    return observe_value(history, goal)


def target_reached(store: Store, sweep_id: str, spec: SweepSpec) -> bool:
    if spec.metric is None or spec.metric.target is None:
        return False
    histories = store.metric_histories(sweep_id, spec.metric.name)
    return any(reached_target(observe_value(h, spec.metric.goal), spec.metric.goal, spec.metric.target)
               for h in histories.values())


def propose(store: Store, sweep_id: str, spec: SweepSpec, trials: list[dict]) -> tuple[dict, str | None] | None:
    """The next parameters (and a grid point key), or None when the method has nothing left."""
    if spec.method == "grid":
        return next_grid_point(spec, trials)
    if spec.method == "random":
        return sample_random(spec, np.random.default_rng()), None
    return suggest_bayes(store, sweep_id, spec, trials), None


def next_grid_point(spec: SweepSpec, trials: list[dict]) -> tuple[dict, str] | None:
    """The first grid point no trial has taken, with its key; None when the grid is exhausted."""
    taken = {t["point_key"] for t in trials}
    for point in iter_grid(spec):
        if point_key(point) not in taken:
            return point, point_key(point)
    return None


def suggest_bayes(store: Store, sweep_id: str, spec: SweepSpec, trials: list[dict], seed: int | None = None) -> dict:
    """Ask a TPE study rebuilt from the sweep's trials for the next point (see `bayes_point`)."""
    histories = store.metric_histories(sweep_id, spec.metric.name)
    return bayes_point(spec, observations(spec, trials, histories), seed)


def observations(spec: SweepSpec, trials: list[dict],
                 histories: dict[str, list[float]]) -> list[tuple[dict, float | None]]:
    """(latent params, value) per trial for the bayes proposer; value None for a trial still running.
    Trials that ended without a value (and none to impute) are left out."""
    completed = [observe_value(histories.get(t["run_id"], []), spec.metric.goal) for t in trials
                 if t["status"] in FINAL_OK]
    completed = [v for v in completed if v is not None]
    found = []
    for trial in trials:
        latent = trial["params"].get("_latent")
        value = trial_value(trial, histories.get(trial["run_id"], []), completed, spec)
        if latent is not None and (value is not None or not trial["status"].is_final):
            found.append((latent, value))
    return found


def bayes_point(spec: SweepSpec, observed: list[tuple[dict, float | None]], seed: int | None = None) -> dict:
    """The next point of a bayes sweep: Optuna's TPE told every observed (latent, value), and the
    points still being evaluated (value None) as pending, which its constant liar steers away from;
    a point already observed or pending is asked again (up to BAYES_TRIES times). Without a `seed`
    each call draws its own, so agents asking at the same moment get different points."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=spec.metric.goal, sampler=optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=BAYES_STARTUP_TRIALS, constant_liar=True))
    distributions = optuna_distributions(spec)
    for latent, value in observed:
        state = optuna.trial.TrialState.RUNNING if value is None else optuna.trial.TrialState.COMPLETE
        study.add_trial(optuna.trial.create_trial(params=latent, distributions=distributions, value=value,
                                                  state=state))
    taken = {point_key(latent) for latent, _ in observed}
    for _ in range(BAYES_TRIES):
        asked = study.ask(fixed_distributions=distributions)
        if point_key(asked.params) not in taken:
            break
    return {**suggest(asked, spec), "_latent": asked.params}


def trial_value(trial: dict, history: list[float], completed: list[float], spec: SweepSpec) -> float | None:
    """A finished trial's value; failed or crashed ones are imputed (worst/best/latest); running: None."""
    status = trial["status"]
    if status in FINAL_OK:
        return observe_value(history, spec.metric.goal)
    if status in (RunStatus.FAILED, RunStatus.CRASHED, RunStatus.DIVERGED):
        return impute_value(history, completed, spec.metric.impute, spec.metric.goal)
    return None


def next_trial(store: Store, sweep_id: str, base_config: dict | None = None) -> Trial | None:
    """Claim the next trial of a sweep for this agent, or None when the sweep has no more."""
    mark_dead_trials(store, sweep_id)
    sweep = store.get_sweep(sweep_id)
    spec = load_spec(sweep["config"])
    owner = {"pid": os.getpid()}          # the agent's process: once it is gone, the run has crashed
    for _ in range(CLAIM_TRIES):
        trials = store.sweep_trials(sweep_id)
        if sweep["state"] != "running" or has_ended(store, sweep_id, spec, trials):
            settle_sweep(store, sweep_id)
            return None
        params, key = propose(store, sweep_id, spec, trials)
        public = {k: v for k, v in params.items() if k != "_latent"}
        run_id = store.add_trial(sweep_id, params, key, {**(base_config or {}), **public}, project=sweep["project"],
                                 run_cap=spec.run_cap, environment=agent_environment(), progress=owner)
        if run_id is not None:
            return Trial(sweep_id, run_id, public, spec)
    return None


@lru_cache(maxsize=1)
def agent_environment() -> dict:
    """Versions and host this agent's trials run with (the host lets the next agent on this machine
    tell whether a trial's process is gone)."""
    from core.runs import environment

    return environment()


def has_ended(store: Store, sweep_id: str, spec: SweepSpec, trials: list[dict]) -> bool:
    """Whether the sweep gives no more trials: its run cap or metric target reached, or its grid exhausted."""
    if spec.run_cap is not None and len(trials) >= spec.run_cap:
        return True
    if spec.method == "grid" and next_grid_point(spec, trials) is None:
        return True
    return target_reached(store, sweep_id, spec)


def settle_sweep(store: Store, sweep_id: str) -> str:
    """Mark a running sweep `finished` once it gives no more trials and none of its runs still
    trains (a grid whose last runs train is still running); its state."""
    sweep = store.get_sweep(sweep_id)
    if sweep["state"] != "running":
        return sweep["state"]
    trials = store.sweep_trials(sweep_id)
    if any(not t["status"].is_final for t in trials):
        return "running"
    if has_ended(store, sweep_id, load_spec(sweep["config"]), trials):
        store.finish_sweep(sweep_id)
    return store.get_sweep(sweep_id)["state"]


def stop_sweep_runs(store: Store, sweep_id: str, reason: str = "sweep stopped") -> list[str]:
    """Stop a sweep from any process or machine sharing the store: state `stopped`, so agents take no
    new trial, and each running run asked to stop (its agent reads the control between steps). The
    runs asked; LookupError for an unknown sweep."""
    store.get_sweep(sweep_id)
    store.set_sweep_state(sweep_id, "stopped")
    asked = [t["run_id"] for t in store.sweep_trials(sweep_id) if t["status"] is RunStatus.RUNNING]
    for run_id in asked:
        store.send_control(run_id, "stop", {"reason": reason})
    return asked


def mark_dead_trials(store: Store, sweep_id: str) -> list[str]:
    """Mark `crashed` the sweep's running runs whose agent died: silent for STALE_AFTER_S (any
    machine), or, on this machine, whose agent process is gone. The run ids marked."""
    from core.cli import dead_process

    marked = store.mark_stale_as_crashed(STALE_AFTER_S)
    now = time.time()
    for run in store.list_runs(sweep_id=sweep_id):
        pid = dead_process(run, now)
        if pid is not None:
            store.finish_run(run.run_id, RunStatus.CRASHED, f"its agent process (pid {pid}) died during the trial")
            marked.append(run.run_id)
    return marked


def early_stop_reason(store: Store, trial: Trial) -> str | None:
    """Hyperband's verdict for this trial after its latest logged value, or None to go on."""
    spec = trial.spec
    if spec.early_terminate is None or spec.metric is None:
        return None
    histories = hyperband_histories(store, trial.sweep_id, spec.metric.name)
    mine = histories.pop(trial.run_id, [])
    decision = should_stop(mine, list(histories.values()), spec.early_terminate, spec.metric.goal,
                           spec.metric.name)
    return None if decision is None else decision.reason


def hyperband_histories(store: Store, sweep_id: str, metric: str) -> dict[str, list[float]]:
    """The metric histories hyperband's thresholds count: runs running or ended normally (failed,
    crashed and diverged runs do not raise or lower the bar)."""
    return store.metric_histories(sweep_id, metric, statuses=HYPERBAND_COUNTED)


class Heartbeat:
    """Refreshes a run's heartbeat from a thread while its trial runs (functions may log rarely)."""

    def __init__(self, store: Store, run_id: str, interval_s: float = HEARTBEAT_S) -> None:
        self.store, self.run_id, self.interval_s = store, run_id, interval_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while not self._done.wait(self.interval_s):
            self.store.log_metrics(self.run_id, {})

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()


def run_agent(sweep_id: str, function: Callable[[], None] | None = None, count: int | None = None,
              store: Store | None = None, base_config: dict | None = None) -> list[str]:
    """Run trials of a sweep until it has no more or `count` are done; the run ids this agent ran."""
    if count is not None and count < 1:
        raise ValueError(f"count: {count} is not allowed; an agent must run at least 1 trial")
    store = store or Store()
    done: list[str] = []
    while count is None or len(done) < count:
        trial = next_trial(store, sweep_id, base_config)
        if trial is None:
            break
        with Heartbeat(store, trial.run_id):
            (run_function_trial if function else run_builtin_trial)(store, trial, function)
        done.append(trial.run_id)
    settle_sweep(store, sweep_id)                           # this agent's last run may have been the sweep's last
    return done


def trial_config(store: Store, trial: Trial):
    """The trial's TrainConfig and data, checked as the Train page checks a run: in a hosted demo
    (LAB_DEMO=1) against the demo's caps, before any file is read and again with the model's size."""
    from core.config import TrainConfig
    from core.demo import check_demo, demo_limits
    from core.models import planned_parameters
    from core.runs import prepare_data

    config = TrainConfig(**store.get_run(trial.run_id).config)
    limits = demo_limits()
    check_demo(config, limits)
    data = prepare_data(config)
    if limits is not None:
        check_demo(config, limits, planned_parameters(config, data.info))
    return config, data


def run_builtin_trial(store: Store, trial: Trial, _function=None) -> None:
    """Train TrainConfig(**sampled parameters) through the store, checking hyperband every epoch; a
    config the trainer (or a hosted demo's caps) refuses fails the run with the one-line reason."""
    from core.errors import USER_ERRORS, first_line
    from core.runs import train_tracked
    from core.worker import StoreControl

    try:
        config, data = trial_config(store, trial)
    except USER_ERRORS as exc:
        store.finish_run(trial.run_id, RunStatus.FAILED, first_line(exc))
        return
    control = StoreControl(store, trial.run_id)
    for _ in train_tracked(config, store, trial.run_id, control=control, data=data, record_steps=False,
                           wait_for_record=True):       # hyperband reads the epoch back at once
        reason = early_stop_reason(store, trial)
        if reason:
            store.log_event(trial.run_id, "pruned", {"reason": reason})
            control.stop(reason, RunStatus.PRUNED)


def run_function_trial(store: Store, trial: Trial, function: Callable[[], None]) -> None:
    """Call a W&B-style function; its `init()` joins this trial's run with the sampled config, and
    each logged value of the sweep metric is checked for early termination."""
    from core import wandb

    spec = trial.spec
    context = wandb.SweepTrial(trial.sweep_id, trial.params, run_id=trial.run_id,
                               metric=spec.metric.name if spec.metric else None,
                               early_stop=lambda: early_stop_reason(store, trial))
    with wandb.sweep_trial(context):
        try:
            function()
        except wandb.RunPruned:
            pass
        except Exception as exc:  # the function's own error fails its run, not the agent
            store.finish_run(trial.run_id, RunStatus.FAILED, f"{type(exc).__name__}: {exc}".splitlines()[0])
        finally:
            if wandb.run is not None and wandb.run.id == trial.run_id:
                wandb.run.finish()
    store.finish_run(trial.run_id, RunStatus.FINISHED, "the sweep function returned")


def sweep_table(store: Store, sweep_id: str):
    """One row per trial: run, state, sampled parameters (flattened), value of the metric. Runs whose
    agent died are marked crashed first, and a sweep with no more to do marked finished."""
    import pandas as pd

    spec = sweep_spec(store, sweep_id)
    mark_dead_trials(store, sweep_id)                       # what the page shows is never a dead agent's run
    settle_sweep(store, sweep_id)
    histories = store.metric_histories(sweep_id, spec.metric.name) if spec.metric else {}
    rows = []
    for t in store.sweep_trials(sweep_id):
        value = observe_value(histories.get(t["run_id"], []), spec.metric.goal) if spec.metric else None
        flat = {k: v for k, v in flatten(t["params"]).items() if not k.startswith("_latent")}
        rows.append({"run_id": t["run_id"], "state": t["status"].value, **flat,
                     "value": value if value is not None and math.isfinite(value) else None, "reason": t["reason"]})
    return pd.DataFrame(rows)


def flatten(params: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in params.items():
        if isinstance(value, dict) and key != "_latent":
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = json.dumps(value) if isinstance(value, (list, dict)) else value
    return out
