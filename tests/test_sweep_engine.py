"""The sweep engine under load: atomic trial claims across processes, distinct bayes proposals,
demo caps on trials, hyperband's counting and real pruning, dead agents, the sweep's final state,
and `python -m core sweep` end to end."""

import json
import math
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import time

import numpy as np
import pytest

from core import sweeps
from core.status import RunStatus
from core.sweepsample import sample_random
from core.sweeps import create_sweep, run_agent
from core.sweepspec import load_spec
from core.tracker import Store
from tests.conftest import REPO

CAPPED = {"method": "random", "run_cap": 3, "parameters": {"x": {"distribution": "uniform", "min": 0, "max": 1}}}
AGENTS = 4
ROUNDS = 6                                  # sweeps raced in turn, so a lost race shows up reliably


def ends_at_once() -> None:
    """A sweep function that logs nothing: its trial ends as soon as it is claimed."""


def race_agents(url: str, sweep_ids: list[str], start: multiprocessing.Barrier) -> None:
    store = Store(url)
    for sweep_id in sweep_ids:
        start.wait(timeout=60)
        run_agent(sweep_id, function=ends_at_once, store=store)


def race(url: str, rounds: int = ROUNDS) -> list[str]:
    """`AGENTS` agent processes run every sweep at the same moment; the sweep ids."""
    store = Store(url)
    sweep_ids = [create_sweep(CAPPED, store=store) for _ in range(rounds)]
    sweeps.agent_environment()                 # read once here, not by each forked agent
    context = multiprocessing.get_context("fork")
    start = context.Barrier(AGENTS)
    agents = [context.Process(target=race_agents, args=(url, sweep_ids, start)) for _ in range(AGENTS)]
    for agent in agents:
        agent.start()
    for agent in agents:
        agent.join(timeout=120)
    assert [agent.exitcode for agent in agents] == [0] * AGENTS
    return sweep_ids


def test_four_agent_processes_never_pass_the_run_cap_on_sqlite(lab_home):
    url = f"sqlite:///{lab_home / 'lab.db'}"
    store = Store(url)
    for sweep_id in race(url):
        trials = store.sweep_trials(sweep_id)
        assert len(trials) == 3 and len(store.list_runs(sweep_id=sweep_id)) == 3
        assert {t["status"] for t in trials} == {RunStatus.FINISHED}
        assert store.get_sweep(sweep_id)["state"] == "finished"


def test_four_agent_processes_never_pass_the_run_cap_on_postgresql(postgres_server):
    url = postgres_server.new_database()
    store = Store(url)
    for sweep_id in race(url, rounds=3):
        assert len(store.sweep_trials(sweep_id)) == 3 and len(store.list_runs(sweep_id=sweep_id)) == 3


# --------------------------------------------------------------------------- bayes: distinct points

BAYES = {"method": "bayes", "metric": {"name": "loss", "goal": "minimize"},
         "parameters": {"lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1.0},
                        "x": {"distribution": "uniform", "min": 0.0, "max": 1.0}}}


def toy_loss(params: dict) -> float:
    """A bowl with its bottom at lr = 1e-2, x = 0.3."""
    return (math.log10(params["lr"]) + 2) ** 2 + 4 * (params["x"] - 0.3) ** 2


def finish_trial(store: Store, trial, values: list[float], status: RunStatus = RunStatus.FINISHED) -> None:
    for value in values:
        store.log_metrics(trial.run_id, {trial.spec.metric.name: value})
    store.finish_run(trial.run_id, status, "ended by the test")


def test_bayes_agents_asking_at_the_same_moment_get_different_points():
    store = Store()
    sweep_id = create_sweep(BAYES, store=store)
    for _ in range(6):                                   # past TPE's random start
        trial = sweeps.next_trial(store, sweep_id)
        finish_trial(store, trial, [toy_loss(trial.params)])
    running = sweeps.next_trial(store, sweep_id)         # still training
    spec, trials = sweeps.sweep_spec(store, sweep_id), store.sweep_trials(sweep_id)
    asked = [sweeps.propose(store, sweep_id, spec, trials)[0] for _ in range(4)]   # four agents, one snapshot
    points = {(p["lr"], p["x"]) for p in asked} | {(running.params["lr"], running.params["x"])}
    assert len(points) == 5


def test_bayes_never_proposes_a_point_another_agent_is_running():
    config = {"method": "bayes", "metric": {"name": "loss", "goal": "minimize"},
              "parameters": {"width": {"values": [8, 16, 24, 32, 40, 48, 56, 64]}}}
    store = Store()
    sweep_id = create_sweep(config, store=store)
    claimed = [sweeps.next_trial(store, sweep_id) for _ in range(6)]      # none has ended yet
    assert len({t.params["width"] for t in claimed}) == 6


def test_bayes_beats_the_median_random_draw_on_a_toy_bowl():
    spec = load_spec(BAYES)
    for seed in range(5):
        observed, values = [], []
        for i in range(20):
            point = sweeps.bayes_point(spec, observed, seed=100 * seed + i)
            observed.append((point["_latent"], toy_loss(point)))
            values.append(toy_loss(point))
        rng = np.random.default_rng(seed)
        random_values = [toy_loss(sample_random(spec, rng)) for _ in range(20)]
        # once TPE's model has 10 points, its proposals sit well inside the bowl
        assert statistics.median(values[10:]) < statistics.median(random_values), seed


# --------------------------------------------------------------------------- hosted demo caps

DEMO_GRID = {"method": "grid", "parameters": {"dataset": {"value": "threshold"}, "model": {"value": "mlp"},
                                              "batch_size": {"value": 6}, "epochs": {"values": [1, 40]},
                                              "hidden": {"values": ["4", "64,64"]}}}


def test_a_demo_sweep_refuses_each_trial_over_a_cap_before_it_trains(monkeypatch):
    monkeypatch.setenv("LAB_DEMO", "1")
    monkeypatch.setenv("LAB_DEMO_MAX_PARAMETERS", "1000")          # hidden 64,64 has 4,418
    store = Store()
    sweep_id = create_sweep(DEMO_GRID, store=store)
    assert len(run_agent(sweep_id, store=store)) == 4
    by_point = {(t["params"]["epochs"], t["params"]["hidden"]): t for t in store.sweep_trials(sweep_id)}
    assert by_point[(1, "4")]["status"] is RunStatus.FINISHED
    assert by_point[(40, "4")]["reason"] == "epochs: 40 is over the demo's cap of 30"
    assert by_point[(1, "64,64")]["reason"] == ("model: 4,418 parameters is over the demo's cap of 1,000; "
                                                "use smaller hidden sizes or width")
    for point in ((40, "4"), (40, "64,64"), (1, "64,64")):
        assert by_point[point]["status"] is RunStatus.FAILED
        assert store.metric_rows(by_point[point]["run_id"]) == []          # refused before training
    folder = create_sweep({"method": "random", "run_cap": 1, "parameters": {
        "dataset": {"value": "threshold"}, "batch_size": {"value": 6}, "data_root": {"value": "/etc"}}}, store=store)
    [run_id] = run_agent(folder, store=store)
    assert store.get_run(run_id).reason == "data_root: server folders and downloads are not available in the demo"


def test_a_demo_sweep_whose_spec_fixes_a_value_over_a_cap_is_refused_up_front(monkeypatch):
    from core.sweepjobs import check_sweep

    config = {"method": "random", "parameters": {"epochs": {"value": 40}, "lr": {"values": [0.1, 0.01]}}}
    assert check_sweep(config, "threshold", "mlp").error is None               # no caps outside a demo
    monkeypatch.setenv("LAB_DEMO", "1")
    assert check_sweep(config, "threshold", "mlp").error == "parameters.epochs: 40 is over the demo's cap of 30"
    folder = {"method": "random", "parameters": {"data_root": {"value": "/etc"}, "lr": {"values": [0.1]}}}
    assert check_sweep(folder, "threshold", "mlp").error.startswith("parameters.data_root: server folders")
    assert check_sweep({**config, "parameters": {"epochs": {"value": 3}}}, "mnist", "mlp").error.startswith(
        "parameters.dataset: 'mnist' is not available in the demo")
    assert check_sweep({**config, "parameters": {"epochs": {"value": 3}}}, "threshold", "mlp").error is None


# --------------------------------------------------------------------------- hyperband counts running and finished runs

HYPERBAND = {"method": "random", "metric": {"name": "loss", "goal": "minimize"},
             "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 2},
             "parameters": {"x": {"distribution": "uniform", "min": 0.0, "max": 1.0}}}


def three_runs(ended: RunStatus):
    """A hyperband sweep where one run ended `ended` at 0.1, one finished at 1.0 and one, still running,
    logged 2.0: (store, sweep id, the running trial)."""
    store = Store()
    sweep_id = create_sweep(HYPERBAND, store=store)
    first, done, running = (sweeps.next_trial(store, sweep_id) for _ in range(3))
    finish_trial(store, first, [0.1], ended)
    finish_trial(store, done, [1.0])
    store.log_metrics(running.run_id, {"loss": 2.0})
    return store, sweep_id, running


def judged_after(ended: RunStatus) -> str | None:
    """Hyperband's verdict on the running run of `three_runs(ended)`."""
    store, _, judged = three_runs(ended)
    return sweeps.early_stop_reason(store, judged)


@pytest.mark.parametrize("ended", [RunStatus.FAILED, RunStatus.CRASHED, RunStatus.DIVERGED])
def test_failed_and_crashed_runs_do_not_count_in_hyperband_thresholds(ended):
    # counted: [1.0, 2.0] -> the threshold at index int(2/2)=1 is 2.0, a tie: the run goes on
    assert judged_after(ended) is None


@pytest.mark.parametrize("ended", [RunStatus.FINISHED, RunStatus.PRUNED, RunStatus.STOPPED])
def test_runs_that_ended_normally_count_in_hyperband_thresholds(ended):
    # counted: [0.1, 1.0, 2.0] -> the threshold at index 1 is 1.0, and 2.0 is worse
    assert judged_after(ended) == ("hyperband: loss best so far 2 is worse than 1, the top 1/2 threshold "
                                   "of 3 run(s) at bracket 1")


# --------------------------------------------------------------------------- pruning for real

def test_a_random_sweep_with_hyperband_prunes_runs_and_records_why():
    from core import wandb

    def train():
        with wandb.init() as run:
            for step in range(1, 9):
                wandb.log({"loss": run.config.x + 1.0 / step})     # a higher x is a worse run throughout

    store = Store()
    sweep_id = create_sweep({**HYPERBAND, "run_cap": 24}, store=store)
    assert len(run_agent(sweep_id, function=train, store=store)) == 24
    pruned = [t for t in store.sweep_trials(sweep_id) if t["status"] is RunStatus.PRUNED]
    assert pruned                                         # with 24 random runs, some start worse than half
    for trial in pruned:
        [event] = [e for e in store.event_rows(trial["run_id"]) if e["kind"] == "pruned"]
        assert event["data"]["reason"] == trial["reason"] and trial["reason"].startswith("hyperband: loss")
        bracket = int(trial["reason"].rsplit("at bracket ", 1)[1])     # it stopped where it was judged
        assert len(store.metric_rows(trial["run_id"], ["loss"])) == bracket
    assert store.get_sweep(sweep_id)["state"] == "finished"


def test_the_built_in_trainer_prunes_a_run_that_learns_nothing():
    grid = {"method": "grid", "metric": {"name": "val_loss", "goal": "minimize"},
            "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 2},
            "parameters": {"dataset": {"value": "threshold"}, "model": {"value": "logreg"}, "epochs": {"value": 3},
                           "batch_size": {"value": 6}, "optimizer": {"value": "adam"},
                           "lr": {"values": [0.05, 0.02, 1e-7]}}}
    store = Store()
    sweep_id = create_sweep(grid, store=store)
    run_agent(sweep_id, store=store)
    by_lr = {t["params"]["lr"]: t for t in store.sweep_trials(sweep_id)}
    assert by_lr[0.05]["status"] is RunStatus.FINISHED and by_lr[0.02]["status"] is RunStatus.FINISHED
    stalled = by_lr[1e-7]
    assert stalled["status"] is RunStatus.PRUNED and stalled["reason"].startswith("hyperband: val_loss")
    assert "at bracket 1" in stalled["reason"]
    assert [e["kind"] for e in store.event_rows(stalled["run_id"])].count("pruned") == 1
    assert store.metrics_frame(stalled["run_id"])["epoch"].max() == 1           # stopped after its first epoch


# --------------------------------------------------------------------------- dead agents and the sweep's state

TWO_POINTS = {"method": "grid", "parameters": {"x": {"values": [1, 2]}}}


def wait_for(condition, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.2)


def trains_for_ever() -> None:
    time.sleep(600)


def agent_that_hangs(url: str, sweep_id: str) -> None:
    run_agent(sweep_id, function=trains_for_ever, store=Store(url))


def test_the_only_agent_killed_mid_trial_leaves_its_run_crashed_and_the_next_agent_goes_on(lab_home):
    from core.cli import DEAD_PROCESS_SILENCE_S

    url = f"sqlite:///{lab_home / 'lab.db'}"
    store = Store(url)
    sweep_id = create_sweep(TWO_POINTS, store=store)
    sweeps.agent_environment()
    agent = multiprocessing.get_context("fork").Process(target=agent_that_hangs, args=(url, sweep_id))
    agent.start()
    wait_for(lambda: store.sweep_trials(sweep_id))
    os.kill(agent.pid, signal.SIGKILL)
    agent.join()
    [orphan] = store.sweep_trials(sweep_id)
    assert orphan["status"] is RunStatus.RUNNING                    # nobody is left to say otherwise
    wait_for(lambda: time.time() - store.get_run(orphan["run_id"]).heartbeat_at > DEAD_PROCESS_SILENCE_S)
    ran = run_agent(sweep_id, function=ends_at_once, store=store)   # the next agent, long before STALE_AFTER_S
    dead = store.get_run(orphan["run_id"])
    assert dead.status is RunStatus.CRASHED and dead.reason == (f"its agent process (pid {agent.pid}) died "
                                                                 "during the trial")
    assert len(ran) == 1 and store.get_run(ran[0]).status is RunStatus.FINISHED
    assert store.get_sweep(sweep_id)["state"] == "finished"


def test_the_sweeps_table_marks_a_silent_run_crashed(monkeypatch):
    store = Store()
    sweep_id = create_sweep({"method": "grid", "parameters": {"x": {"values": [1]}}}, store=store)
    silent = sweeps.next_trial(store, sweep_id)                     # its agent went quiet (another machine)
    monkeypatch.setattr(sweeps, "STALE_AFTER_S", -1.0)
    table = sweeps.sweep_table(store, sweep_id)                     # what the Sweeps page polls
    assert table["state"].tolist() == ["crashed"] and table["run_id"].tolist() == [silent.run_id]
    assert store.get_sweep(sweep_id)["state"] == "finished"


def test_a_grid_whose_last_run_still_trains_is_not_finished():
    store = Store()
    sweep_id = create_sweep(TWO_POINTS, store=store)
    training = sweeps.next_trial(store, sweep_id)                   # another agent's run
    assert len(run_agent(sweep_id, function=ends_at_once, store=store)) == 1
    assert store.get_sweep(sweep_id)["state"] == "running"
    assert sweeps.sweep_table(store, sweep_id)["state"].tolist() == ["running", "finished"]
    assert store.get_sweep(sweep_id)["state"] == "running"
    store.finish_run(training.run_id, RunStatus.FINISHED, "its function returned")
    assert run_agent(sweep_id, function=ends_at_once, store=store) == []
    assert store.get_sweep(sweep_id)["state"] == "finished"


def test_a_sweep_that_reaches_its_run_cap_or_its_target_ends_finished():
    from core import wandb

    store = Store()
    capped = create_sweep(CAPPED, store=store)
    assert len(run_agent(capped, function=ends_at_once, store=store)) == 3
    assert store.get_sweep(capped)["state"] == "finished"

    def reaches_it():
        with wandb.init():
            wandb.log({"loss": 0.1})

    target = create_sweep({**CAPPED, "run_cap": None, "metric": {"name": "loss", "goal": "minimize", "target": 0.5}},
                          store=store)
    assert len(run_agent(target, function=reaches_it, store=store)) == 1
    assert store.get_sweep(target)["state"] == "finished"
    stopped = create_sweep(CAPPED, store=store)
    store.set_sweep_state(stopped, "stopped")
    assert run_agent(stopped, function=ends_at_once, store=store) == []
    assert store.get_sweep(stopped)["state"] == "stopped"


# --------------------------------------------------------------------------- the command line

GRID_YAML = """method: grid
run_cap: 2
parameters:
  dataset: {value: threshold}
  batch_size: {value: 6}
  epochs: {value: 1}
  seed: {values: [1, 2, 3, 4]}
"""


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", "sweep", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ}, timeout=300)


def test_sweep_create_on_the_command_line(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(GRID_YAML)
    made = cli("create", str(path), "--project", "from-cli")
    assert made.returncode == 0, made.stderr
    sweep = Store().get_sweep(made.stdout.strip())
    assert sweep["project"] == "from-cli" and sweep["state"] == "running"
    assert sweep["config"]["method"] == "grid" and sweep["config"]["run_cap"] == 2
    assert made.stderr == ("warning: run_cap: the grid has 4 points but run_cap is 2; "
                           "only the first 2 will run\n")
    missing = cli("create", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and missing.stderr == f"error: no sweep file at {tmp_path / 'nope.yaml'}\n"
    path.write_text(GRID_YAML.replace("{value: 6}", "{distribution: uniformly, min: 1, max: 9}"))
    wrong = cli("create", str(path))
    assert wrong.returncode == 2 and wrong.stderr.startswith("error: parameters.batch_size: unknown distribution")
    assert wrong.stderr.count("\n") == 1 and len(Store().list_sweeps()) == 1
    path.write_text(GRID_YAML.replace("{value: 6}", "{distribution: int_uniform, min: 0, max: 8}"))
    refused = cli("create", str(path))                 # a range end the trainer refuses: no sweep either
    assert refused.returncode == 2 and refused.stderr.startswith("error: parameters.batch_size: int_uniform can give 0")
    assert refused.stderr.count("\n") == 1 and len(Store().list_sweeps()) == 1


@pytest.mark.slow
def test_agent_processes_on_the_command_line_split_the_torch_threads():
    sweep_id = create_sweep(load_spec(GRID_YAML).to_dict())
    done = cli("agent", sweep_id, "--processes", "2", "--count", "1")
    assert done.returncode == 0, done.stderr
    ran = [json.loads(line)["runs"] for line in done.stdout.splitlines()]
    assert sorted(map(len, ran)) == [1, 1]
    starts = [next(e for e in Store().event_rows(run_id) if e["kind"] == "start")["data"] for [run_id] in ran]
    threads = max(1, (os.cpu_count() or 1) // 2)                     # agents x threads = cores
    assert [s["torch_threads"] for s in starts] == [threads, threads]
    assert starts[0]["pid"] != starts[1]["pid"]
    assert Store().get_sweep(sweep_id)["state"] == "finished"          # its run cap of 2 is reached


@pytest.mark.parametrize("ended, thresholds", [(RunStatus.CRASHED, [2.0]), (RunStatus.FINISHED, [1.0])])
def test_the_drawn_thresholds_are_the_ones_hyperband_judges_by(ended, thresholds):
    from core.sweepviz import sweep_view

    store, sweep_id, _ = three_runs(ended)
    assert sweep_view(store, sweep_id).brackets["threshold"].tolist() == thresholds
