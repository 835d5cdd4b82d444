"""`python -m core sweep list` and `sweep stop` as a user runs them: real processes, a real store."""

import json

from core.status import RunStatus
from core.sweeps import create_sweep, run_agent
from core.tracker import Store
from tests.test_cli import cli

TINY = {"method": "grid", "metric": {"name": "val_acc", "goal": "maximize"},
        "parameters": {"dataset": {"value": "threshold"}, "epochs": {"value": 2}, "batch_size": {"value": 6},
                       "lr": {"values": [0.05, 0.001]}}}


def test_sweep_list_shows_state_runs_and_the_best_run():
    store = Store()
    sweep_id = create_sweep({**TINY, "name": "two lrs"}, project="toys", store=store)
    empty = cli("sweep", "list", "--json")
    assert empty.returncode == 0, empty.stderr
    [row] = [json.loads(line) for line in empty.stdout.splitlines()]
    assert (row["sweep_id"], row["state"], row["runs"], row["best_run"]) == (sweep_id, "running", 0, None)
    ran = run_agent(sweep_id, store=store)
    values = {r: store.get_run(r).summary["val_acc"] for r in ran}
    [row] = [json.loads(line) for line in cli("sweep", "list", "--json").stdout.splitlines()]
    assert (row["state"], row["method"], row["metric"], row["goal"]) == ("finished", "grid", "val_acc", "maximize")
    assert row["runs"] == 2 and row["states"] == {"finished": 2}
    assert row["best_value"] == max(values.values()) and values[row["best_run"]] == row["best_value"]
    human = cli("sweep", "list").stdout
    assert sweep_id in human and "finished" in human and "maximize val_acc" in human and "two lrs" in human


def test_sweep_stop_ends_new_trials_and_asks_running_runs_to_stop():
    store = Store()
    sweep_id = create_sweep(TINY, store=store)
    running = store.add_trial(sweep_id, {"lr": 0.05}, "a", {"lr": 0.05}, project="toys", run_cap=None)
    done = cli("sweep", "stop", sweep_id)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"sweep {sweep_id} stopped; asked 1 running run(s) to stop: {running}"
    assert store.get_sweep(sweep_id)["state"] == "stopped"
    assert store.take_controls(running) == [("stop", {"reason": "sweep stopped"})]
    assert run_agent(sweep_id, store=store) == []                     # agents take no new trial
    assert store.get_run(running).status is RunStatus.RUNNING         # its own agent ends it


def test_sweep_stop_of_an_unknown_sweep_is_one_line_and_exit_2():
    done = cli("sweep", "stop", "nosuchsweep")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == "error: no sweep 'nosuchsweep' in the store (" + Store().url + ")"
