"""Sweeps from the dashboard: check a sweep config for the built-in trainer, start and stop agent processes.

    checked = check_sweep(yaml_text_or_dict, dataset="digits", model="mlp")   # error / warnings, no raise
    sweep_id = create_sweep(checked.config, store=store)
    start_agents(sweep_id, processes=2)        # `python -m core sweep agent SWEEP_ID --processes 2`
    sweep_id = launch_sweep(checked.config, processes=2, count=None, store=store)   # both at once
    agents_alive(sweep_id)                     # agent process groups this app started that still run
    free_agent_slots(store)                    # how many more may start: the cores, or a demo's cap left
    is_live(sweep_id, table)                   # agents still running, or runs queued or running
    labels, index, error = sweep_choices(store.list_sweeps(), wanted_id)    # the page's sweep picker
    stop_sweep(store, sweep_id)                # state "stopped", running runs asked to stop, agents ended

Agents run as `python -m core sweep agent` in their own session (process group), with idle OpenMP
threads sleeping (`core.worker.worker_environment`), so they never train on the app's script thread
and outlive a page reload. The app keeps their handles in a process-wide registry keyed by sweep id;
their output goes to `$LAB_HOME/sweeps/SWEEP_ID.log`.

The form on the Sweeps page builds a W&B sweep config with `form_config`: one entry per chosen
training field, a distribution and its keys as text (`values` separated by ";", since an mlp's
`hidden` value "32,16" holds commas).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import first_line
from core.status import RunStatus
from core.sweeplint import lint
from core.sweeps import create_sweep, stop_sweep_runs
from core.sweepparams import DISTRIBUTIONS
from core.sweepspec import SweepConfigError, parse_spec, parse_text
from core.sweeptrainer import trainer_problems
from core.tracker import Store
from core.worker import worker_environment

GRACE_S = 3.0                    # how long stop_sweep lets agents end their runs before ending the agents
LIST_KEYS = ("values", "probabilities")
VALUE_SEPARATOR = ";"
EXAMPLE_YAML = """method: random
metric: {name: val_loss, goal: minimize}
early_terminate: {type: hyperband, min_iter: 2, eta: 3}
run_cap: 8
parameters:
  epochs: {value: 6}
  lr: {distribution: log_uniform_values, min: 1.0e-4, max: 0.1}
  batch_size: {values: [32, 64, 128]}
  optimizer: {values: [adam, sgd]}
"""
# Training fields the form offers, with a sensible first distribution and its keys as text.
FORM_FIELDS: dict[str, tuple[str, dict[str, str]]] = {
    "lr": ("log_uniform_values", {"min": "1e-4", "max": "0.1"}),
    "batch_size": ("categorical", {"values": "32; 64; 128"}),
    "dropout": ("uniform", {"min": "0.0", "max": "0.5"}),
    "optimizer": ("categorical", {"values": "adam; sgd"}),
    "hidden": ("categorical", {"values": "32,16; 64,32"}),
    "width": ("categorical", {"values": "16; 32; 64"}),
    "weight_decay": ("log_uniform_values", {"min": "1e-6", "max": "1e-2"}),
    "epochs": ("categorical", {"values": "5; 10"}),
    "momentum": ("uniform", {"min": "0.5", "max": "0.99"}),
    "activation": ("categorical", {"values": "relu; tanh; gelu"}),
    "label_smoothing": ("uniform", {"min": "0.0", "max": "0.2"}),
    "seed": ("int_uniform", {"min": "1", "max": "3"}),
}


# --------------------------------------------------------------------------- building and checking configs


def distribution_keys(distribution: str) -> tuple[str, ...]:
    """The keys a distribution takes besides `distribution` (e.g. uniform: min, max)."""
    return DISTRIBUTIONS[distribution][0] if distribution in DISTRIBUTIONS else ()


def default_key_text(name: str, distribution: str, key: str) -> str:
    """What the form shows first for one key of a field's distribution."""
    _, texts = FORM_FIELDS.get(name, ("", {}))
    if key in texts:
        return texts[key]
    default = DISTRIBUTIONS.get(distribution, ((), (), {}))[2].get(key)
    return "" if default is None else str(default)


def parse_scalar(text: str):
    """'3' -> 3, '1e-4' -> 0.0001, 'true' -> True, 'adam' -> 'adam'."""
    text = text.strip()
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def key_label(name: str, key: str) -> str:
    """The form's label for one key of a field's distribution: 'lr min', 'batch_size values (separate by ;)'."""
    return f"{name} {key}" + (f" (separate by {VALUE_SEPARATOR})" if key == "values" else "")


def param_entry(distribution: str, texts: dict[str, str]) -> dict:
    """One W&B parameter from the form's texts; empty texts are left out (the spec then names them)."""
    entry: dict = {"distribution": distribution}
    for key, text in texts.items():
        if not text.strip():
            continue
        parts = [p for p in text.split(VALUE_SEPARATOR) if p.strip()]
        entry[key] = [parse_scalar(p) for p in parts] if key in LIST_KEYS else parse_scalar(text)
    return entry


def form_config(method: str, metric: str, goal: str, params: dict[str, tuple[str, dict[str, str]]],
                hyperband: dict | None = None, run_cap: int | None = None) -> dict:
    """A W&B sweep config dict from the form: params maps field -> (distribution, {key: text})."""
    config: dict = {"method": method, "metric": {"name": metric, "goal": goal},
                    "parameters": {name: param_entry(dist, texts) for name, (dist, texts) in params.items()}}
    if hyperband:
        config["early_terminate"] = {"type": "hyperband", **hyperband}
    if run_cap:
        config["run_cap"] = run_cap
    return config


@dataclass(frozen=True)
class CheckedSweep:
    """The outcome of checking a config: what to create, or the one-line error; lint warnings."""

    config: dict | None
    error: str | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)


def with_trainer(raw, dataset: str, model: str):
    """The config with `dataset` and `model` as constants, unless its parameters already set them."""
    if not isinstance(raw, dict) or not isinstance(raw.get("parameters"), dict):
        return raw                                   # parse_spec says what is wrong with it
    fixed = {"dataset": {"value": dataset}, "model": {"value": model}}
    return {**raw, "parameters": {**fixed, **raw["parameters"]}}


def check_sweep(source, dataset: str, model: str) -> CheckedSweep:
    """Validate a config (YAML/JSON text or dict) for the built-in trainer; never raises for user input."""
    try:
        raw = parse_text(source) if isinstance(source, str) else source
        spec = parse_spec(with_trainer(raw, dataset, model))     # load_spec of parsed text
    except SweepConfigError as exc:
        return CheckedSweep(None, first_line(exc))
    error, warnings = trainer_problems(spec)
    if error:
        return CheckedSweep(None, error)
    return CheckedSweep(spec.to_dict(), None, tuple(lint(spec)) + tuple(warnings))


def sweep_choices(sweeps: list[dict], wanted: str | None) -> tuple[dict[str, str], int, str | None]:
    """For a sweep picker: a label per sweep id ('id · method · state · name or project'), in the
    order given; the index of `wanted` (0 when not given or unknown); and an error when it is unknown."""
    labels = {s["sweep_id"]: f"{s['sweep_id']} · {s['config']['method']} · {s['state']} · "
                             f"{s['name'] or s['project']}" for s in sweeps}
    if wanted and wanted not in labels:
        return labels, 0, f"There is no sweep {wanted!r} in this lab; pick one of the sweeps below."
    return labels, (list(labels).index(wanted) if wanted else 0), None


# --------------------------------------------------------------------------- agent processes


@dataclass
class AgentJob:
    """One `python -m core sweep agent` process group started by this app."""

    sweep_id: str
    process: subprocess.Popen
    log: Path
    started_at: float
    processes: int = 1                 # agents in the group (`--processes N`)

    def alive(self) -> bool:
        return self.process.poll() is None


_jobs: dict[str, list[AgentJob]] = {}
_lock = threading.Lock()


def agent_command(sweep_id: str, processes: int = 1, count: int | None = None) -> list[str]:
    command = [sys.executable, "-m", "core", "sweep", "agent", sweep_id, "--processes", str(processes)]
    return command + (["--count", str(count)] if count else [])


def start_agents(sweep_id: str, processes: int = 1, count: int | None = None,
                 store: Store | None = None) -> AgentJob:
    """Start `processes` agents for a sweep (one process group) and remember them under its id."""
    if processes < 1 or (count is not None and count < 1):
        raise ValueError(f"processes ({processes}) and count ({count}) must be at least 1")
    store = store or Store()
    store.get_sweep(sweep_id)                                   # LookupError for an unknown sweep
    log = store.home / "sweeps" / f"{sweep_id}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**worker_environment(), "LAB_STORE": store.url}
    with open(log, "ab") as out:
        process = subprocess.Popen(agent_command(sweep_id, processes, count), stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, cwd=Path(__file__).resolve().parents[1], env=env,
                                   start_new_session=True)
    job = AgentJob(sweep_id, process, log, time.time(), processes)
    with _lock:
        _jobs.setdefault(sweep_id, []).append(job)
    return job


def launch_sweep(config: dict, processes: int = 1, count: int | None = None, store: Store | None = None) -> str:
    """Create a sweep from a checked config and start `processes` agents on it, each running `count`
    trials (0 or None: until the sweep ends); returns the sweep id."""
    store = store or Store()
    sweep_id = create_sweep(config, store=store)
    start_agents(sweep_id, processes=int(processes), count=int(count or 0) or None, store=store)
    return sweep_id


def agent_jobs(sweep_id: str) -> list[AgentJob]:
    with _lock:
        return list(_jobs.get(sweep_id, []))


def agents_alive(sweep_id: str) -> int:
    """How many agent process groups this app started for the sweep are still running."""
    return sum(job.alive() for job in agent_jobs(sweep_id))


def agent_processes(store: Store) -> int:
    """Agent processes this app started that still run, over all of the store's sweeps."""
    return sum(job.processes for s in store.list_sweeps() for job in agent_jobs(s["sweep_id"]) if job.alive())


def free_agent_slots(store: Store) -> int:
    """How many more agent processes may start: the cores, or in a hosted demo its cap on runs at
    once less the agent processes already running."""
    from core.demo import demo_limits

    limits = demo_limits()
    return limits.max_jobs - agent_processes(store) if limits else os.cpu_count() or 1


def is_live(sweep_id: str, table) -> bool:
    """Whether a sweep still changes: agents this app started still run, or its runs table (a
    `sweep_table`) has runs queued or running. The page polls while it does."""
    from core.sweepviz import has_running

    return bool(agents_alive(sweep_id)) or has_running(table)


def wait_agents(sweep_id: str, timeout_s: float) -> bool:
    """Wait until this app's agents for the sweep have exited; whether they all did in time."""
    deadline = time.monotonic() + timeout_s
    while agents_alive(sweep_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not agents_alive(sweep_id)


def in_group(pid, group: int) -> bool:
    try:
        return isinstance(pid, int) and os.getpgid(pid) == group
    except (ProcessLookupError, PermissionError):
        return False


def end_job(store: Store, job: AgentJob, running: list) -> None:
    """End an agent's process group; its runs left running are recorded as stopped."""
    if not job.alive():
        return
    orphans = [r.run_id for r in running if in_group((r.progress or {}).get("pid"), job.process.pid)]
    try:
        os.killpg(job.process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    job.process.wait(timeout=10)
    for run_id in orphans:
        store.finish_run(run_id, RunStatus.STOPPED, "sweep stopped (its agent was ended)")


def stop_sweep(store: Store, sweep_id: str, grace_s: float = GRACE_S) -> list[str]:
    """Stop a sweep: no new trials, its running runs asked to stop, this app's agents ended after
    `grace_s` (time for them to end their runs cleanly). Returns the runs asked to stop."""
    asked = stop_sweep_runs(store, sweep_id)
    wait_agents(sweep_id, grace_s)
    running = [r for r in store.list_runs(sweep_id=sweep_id) if r.status is RunStatus.RUNNING]
    for job in agent_jobs(sweep_id):
        end_job(store, job, running)
    return asked
