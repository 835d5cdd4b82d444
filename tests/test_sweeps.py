"""Sweeps end to end, offline: the built-in trainer on digits, agents in-process and as processes."""

import json
import os
import statistics
import subprocess
import sys

import pytest

from core.status import RunStatus
from core.sweeps import create_sweep, run_agent, sweep_table
from core.tracker import Store
from tests.conftest import REPO

RANDOM = {
    "method": "random",
    "metric": {"name": "val_acc", "goal": "maximize"},
    "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 2},
    "parameters": {
        "dataset": {"value": "digits"}, "model": {"value": "cnn"}, "epochs": {"value": 6},
        "lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
        "batch_size": {"distribution": "q_uniform", "min": 32, "max": 256, "q": 32},
        "dropout": {"distribution": "uniform", "min": 0.0, "max": 0.5},
        "optimizer": {"values": ["adam", "sgd"]},
        "width": {"values": [16, 32]},                       # the cnn's hidden width
    },
}


@pytest.mark.slow
def test_random_sweep_with_hyperband_two_agent_processes():
    store = Store()
    sweep_id = create_sweep(RANDOM, project="sweeps")
    env = {**os.environ}
    agent = [sys.executable, "-m", "core", "sweep", "agent", sweep_id, "--count", "4", "--processes", "2"]
    done = subprocess.run(agent, cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    ran = [json.loads(line)["runs"] for line in done.stdout.splitlines()]
    assert sorted(map(len, ran)) == [4, 4] and len(set(ran[0]) | set(ran[1])) == 8
    table = sweep_table(store, sweep_id)
    assert len(table) == 8 and set(table["state"]) <= {"finished", "pruned"}
    for row in table.itertuples():
        assert 1e-4 <= row.lr <= 1e-1 and row.batch_size in (32, 64, 96, 128, 160, 192, 224, 256)
        assert 0 <= row.dropout <= 0.5 and row.optimizer in ("adam", "sgd") and row.width in (16, 32)
        run = store.get_run(row.run_id)
        assert run.config["lr"] == row.lr and run.sweep_id == sweep_id and run.source == "sweep"
    for run_id in table[table["state"] == "pruned"]["run_id"]:
        events = [e for e in store.event_rows(run_id) if e["kind"] == "pruned"]
        assert len(events) == 1 and "hyperband: val_acc" in events[0]["data"]["reason"]
        assert store.metrics_frame(run_id)["epoch"].max() < 6


def test_grid_sweep_runs_every_point_once_and_ends():
    grid = {"method": "grid", "parameters": {"dataset": {"value": "threshold"}, "epochs": {"value": 2},
                                             "batch_size": {"values": [6, 9]}, "seed": {"min": 1, "max": 3}}}
    store = Store()
    sweep_id = create_sweep(grid)
    first = run_agent(sweep_id, count=4)
    rest = run_agent(sweep_id)                        # runs until the grid is exhausted
    assert len(first) == 4 and len(rest) == 2
    points = sorted((t["params"]["batch_size"], t["params"]["seed"]) for t in store.sweep_trials(sweep_id))
    assert points == [(6, 1), (6, 2), (6, 3), (9, 1), (9, 2), (9, 3)]
    assert store.get_sweep(sweep_id)["state"] == "finished"
    assert run_agent(sweep_id) == []


def test_run_cap_target_and_invalid_samples():
    config = {"method": "random", "run_cap": 3, "metric": {"name": "val_acc", "goal": "maximize", "target": 2.0},
              "parameters": {"dataset": {"value": "threshold"}, "epochs": {"value": 1},
                             "batch_size": {"values": [0, 6]}}}
    store = Store()
    sweep_id = create_sweep(config)
    assert len(run_agent(sweep_id, count=10)) == 3
    failed = [t for t in store.sweep_trials(sweep_id) if t["params"]["batch_size"] == 0]
    assert all(t["status"] is RunStatus.FAILED and "batch_size: 0" in t["reason"] for t in failed)
    reached = create_sweep({**config, "run_cap": 10, "metric": {"name": "val_acc", "goal": "maximize", "target": 0.5},
                            "parameters": {**config["parameters"], "batch_size": {"value": 6}}})
    assert len(run_agent(reached, count=10)) == 1       # the first run reaches the target


@pytest.mark.slow
def test_bayes_beats_the_median_random_run():
    space = {"dataset": {"value": "digits"}, "epochs": {"value": 3}, "optimizer": {"value": "sgd"},
             "momentum": {"value": 0.0},
             "lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1.0}}
    metric = {"name": "val_acc", "goal": "maximize"}
    store = Store()
    random_id = create_sweep({"method": "random", "metric": metric, "parameters": space})
    bayes_id = create_sweep({"method": "bayes", "metric": metric, "parameters": space})
    run_agent(random_id, count=10)
    run_agent(bayes_id, count=10)
    random_values = sweep_table(store, random_id)["value"].tolist()
    bayes_values = sweep_table(store, bayes_id)["value"].tolist()
    assert len(bayes_values) == 10 and all(v is not None for v in bayes_values)
    assert max(bayes_values) > statistics.median(random_values)


def test_agents_on_one_postgresql_store_never_share_a_run(postgres_server):
    url = postgres_server.new_database()
    grid = {"method": "grid", "parameters": {"dataset": {"value": "threshold"}, "epochs": {"value": 1},
                                             "batch_size": {"value": 6}, "seed": {"min": 1, "max": 12}}}
    sweep_id = create_sweep(grid, store=Store(url))
    env = {**os.environ, "LAB_STORE": url}
    command = [sys.executable, "-m", "core", "sweep", "agent", sweep_id]
    agents = [subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [json.loads(a.communicate(timeout=300)[0].splitlines()[-1])["runs"] for a in agents]
    assert all(a.returncode == 0 for a in agents)
    assert not set(outputs[0]) & set(outputs[1]) and len(outputs[0]) + len(outputs[1]) == 12
    seeds = sorted(t["params"]["seed"] for t in Store(url).sweep_trials(sweep_id))
    assert seeds == list(range(1, 13))


def test_a_dead_agents_run_is_marked_crashed_and_the_sweep_goes_on(monkeypatch):
    from core import sweeps

    store = Store()
    sweep_id = create_sweep({"method": "grid", "parameters": {"dataset": {"value": "threshold"},
                                                              "epochs": {"value": 1}, "batch_size": {"value": 6},
                                                              "seed": {"values": [1, 2]}}})
    orphan = sweeps.next_trial(store, sweep_id)        # claimed, then its agent "dies"
    monkeypatch.setattr(sweeps, "STALE_AFTER_S", -1.0)
    ran = run_agent(sweep_id)
    assert store.get_run(orphan.run_id).status is RunStatus.CRASHED
    assert len(ran) == 1 and store.get_run(ran[0]).status is RunStatus.FINISHED


def test_wandb_sweep_and_agent_with_a_function_and_hyperband():
    from core import wandb

    config = {"method": "grid", "metric": {"name": "loss", "goal": "minimize"},
              "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 2},
              "parameters": {"slope": {"values": [1.0, 0.5, 0.1, 0.0]}, "width": {"value": 3}}}
    seen = []

    def train():
        with wandb.init(project="toy", config={"width": 99, "extra": "kept"}) as run:
            seen.append(dict(run.config.items()))
            for step in range(8):
                wandb.log({"loss": 10.0 - run.config.slope * step})

    sweep_id = wandb.sweep(config, project="toy")
    wandb.agent(sweep_id, function=train)
    store = Store()
    trials = store.sweep_trials(sweep_id)
    assert len(trials) == 4 and len(seen) == 4
    assert all(s["width"] == 3 and s["extra"] == "kept" for s in seen)      # sampled values win
    by_slope = {t["params"]["slope"]: t for t in trials}
    assert by_slope[1.0]["status"] is RunStatus.FINISHED
    assert by_slope[0.0]["status"] is RunStatus.PRUNED and "hyperband: loss" in by_slope[0.0]["reason"]
    flat = store.metric_rows(by_slope[0.0]["run_id"], ["loss"])
    assert len(flat) < 8 and store.get_run(by_slope[0.0]["run_id"]).config["slope"] == 0.0
