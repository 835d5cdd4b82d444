"""Offline sweeps: a controller that hands out trials from the store, and agents that run them.

    sweep_id = create_sweep(config_dict_or_yaml, project="digits")
    run_agent(sweep_id, count=8)                       # the built-in trainer (TrainConfig parameters)
    run_agent(sweep_id, function=my_train, count=8)    # a W&B-style function using core.wandb

The controller has no process of its own: each agent asks `next_trial`, which decides from what the
store holds (grid points taken, random draws, an Optuna study rebuilt from finished trials for bayes)
and inserts the trial's run in one transaction, so every run goes to exactly one agent, also across
processes and machines sharing a PostgreSQL store. New trials stop at `run_cap`, at the metric's
`target`, when a grid is exhausted, or when the sweep is stopped.

Early termination (hyperband) is checked on every logged value of the sweep metric, against all the
sweep's runs; a stopped run ends `pruned` with a one-line reason recorded as an event. An agent that
dies leaves its run without heartbeat; the next agent marks it `crashed` and the sweep goes on.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
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
        taken = {t["point_key"] for t in trials}
        for point in iter_grid(spec):
            if point_key(point) not in taken:
                return point, point_key(point)
        return None
    if spec.method == "random":
        return sample_random(spec, np.random.default_rng()), None
    return suggest_bayes(store, sweep_id, spec, trials), None


def suggest_bayes(store: Store, sweep_id: str, spec: SweepSpec, trials: list[dict]) -> dict:
    """Rebuild an Optuna TPE study from the trials' results (ask-and-tell) and ask for the next point."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    goal = spec.metric.goal
    study = optuna.create_study(direction="minimize" if goal == "minimize" else "maximize",
                                sampler=optuna.samplers.TPESampler(seed=len(trials), n_startup_trials=5))
    distributions = optuna_distributions(spec)
    histories = store.metric_histories(sweep_id, spec.metric.name)
    completed = [observe_value(histories.get(t["run_id"], []), goal) for t in trials if t["status"] in FINAL_OK]
    completed = [v for v in completed if v is not None]
    for trial in trials:
        latent = trial["params"].get("_latent")
        value = trial_value(trial, histories.get(trial["run_id"], []), completed, spec)
        if latent is None or value is None:
            continue
        study.add_trial(optuna.trial.create_trial(params=latent, distributions=distributions, value=value))
    asked = study.ask(fixed_distributions=distributions)
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
    store.mark_stale_as_crashed(STALE_AFTER_S)
    sweep = store.get_sweep(sweep_id)
    spec = load_spec(sweep["config"])
    for _ in range(20):                                     # another agent may take the same point
        if sweep["state"] != "running" or target_reached(store, sweep_id, spec):
            return None
        trials = store.sweep_trials(sweep_id)
        proposal = propose(store, sweep_id, spec, trials)
        if proposal is None:
            store.set_sweep_state(sweep_id, "finished")
            return None
        params, key = proposal
        public = {k: v for k, v in params.items() if k != "_latent"}
        run_id = store.add_trial(sweep_id, params, key, {**(base_config or {}), **public}, project=sweep["project"],
                                 run_cap=spec.run_cap)
        if run_id is not None:
            return Trial(sweep_id, run_id, public, spec)
        if spec.run_cap is not None and len(trials) >= spec.run_cap:
            return None
    return None


def early_stop_reason(store: Store, trial: Trial) -> str | None:
    """Hyperband's verdict for this trial after its latest logged value, or None to go on."""
    spec = trial.spec
    if spec.early_terminate is None or spec.metric is None:
        return None
    histories = store.metric_histories(trial.sweep_id, spec.metric.name)
    mine = histories.pop(trial.run_id, [])
    decision = should_stop(mine, list(histories.values()), spec.early_terminate, spec.metric.goal,
                           spec.metric.name)
    return None if decision is None else decision.reason


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
    return done


def run_builtin_trial(store: Store, trial: Trial, _function=None) -> None:
    """Train TrainConfig(**sampled parameters) through the store, checking hyperband every epoch."""
    from core.config import TrainConfig
    from core.errors import USER_ERRORS
    from core.runs import prepare_data, train_tracked
    from core.worker import StoreControl

    try:
        config = TrainConfig(**store.get_run(trial.run_id).config)
        data = prepare_data(config)
    except USER_ERRORS as exc:
        store.finish_run(trial.run_id, RunStatus.FAILED, str(exc))
        return
    control = StoreControl(store, trial.run_id)
    for _ in train_tracked(config, store, trial.run_id, control=control, data=data, record_steps=False):
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
    """One row per trial: run, state, sampled parameters (flattened), value of the metric."""
    import pandas as pd

    spec = sweep_spec(store, sweep_id)
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
