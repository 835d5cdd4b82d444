"""core.sweepjobs: the Sweeps page's labels and picker, and launching a sweep with its agents.

(Checking configs and stopping agents are exercised in tests/test_page_sweeps.py.)
"""

import os

import pandas as pd

from core.status import RunStatus
from core.sweepjobs import (agent_jobs, agent_processes, free_agent_slots, is_live, key_label, launch_sweep,
                            stop_sweep, sweep_choices, wait_agents)
from core.tracker import Store

SWEEPS = [{"sweep_id": "s2", "name": None, "project": "toys", "config": {"method": "grid"}, "state": "running"},
          {"sweep_id": "s1", "name": "first", "project": "toys", "config": {"method": "bayes"}, "state": "finished"}]


def test_key_labels_say_how_to_separate_values():
    assert key_label("lr", "min") == "lr min"
    assert key_label("batch_size", "values") == "batch_size values (separate by ;)"


def test_sweep_choices_label_each_sweep_and_find_the_wanted_one():
    labels, index, error = sweep_choices(SWEEPS, "s1")
    assert labels == {"s2": "s2 · grid · running · toys", "s1": "s1 · bayes · finished · first"}
    assert (index, error) == (1, None)
    assert sweep_choices(SWEEPS, None)[1:] == (0, None)
    labels, index, error = sweep_choices(SWEEPS, "nope")
    assert index == 0 and error == "There is no sweep 'nope' in this lab; pick one of the sweeps below."
    assert sweep_choices([], "nope") == ({}, 0, "There is no sweep 'nope' in this lab; pick one of the sweeps below.")


def test_launch_sweep_creates_it_and_runs_an_agent_until_the_sweep_ends():
    store = Store()
    grid = {"method": "grid", "parameters": {"dataset": {"value": "threshold"}, "epochs": {"value": 1},
                                             "batch_size": {"value": 6}, "seed": {"values": [1]}}}
    sweep_id = launch_sweep(grid, processes=1, count=0, store=store)          # count 0: until the sweep ends
    [job] = agent_jobs(sweep_id)
    assert "--count" not in job.process.args and store.get_sweep(sweep_id)["config"]["method"] == "grid"
    assert is_live(sweep_id, pd.DataFrame(columns=["run_id", "state"]))      # its agent runs
    assert job.processes == 1
    assert wait_agents(sweep_id, timeout_s=120), job.log.read_text()
    assert agent_processes(store) == 0
    assert [t["status"] for t in store.sweep_trials(sweep_id)] == [RunStatus.FINISHED]


def test_a_sweep_is_live_while_runs_are_queued_or_running():
    table = pd.DataFrame({"run_id": ["a", "b"], "state": ["finished", "running"]})
    assert is_live("no-agents-here", table)
    assert not is_live("no-agents-here", table.iloc[:1])
    assert not is_live("no-agents-here", pd.DataFrame(columns=["run_id", "state"]))


def test_free_agent_slots_are_the_cores_or_the_demo_cap_less_running_agents(monkeypatch):
    store = Store()
    assert free_agent_slots(store) == (os.cpu_count() or 1)
    long = {"method": "grid", "parameters": {"dataset": {"value": "threshold"}, "epochs": {"value": 100_000},
                                             "batch_size": {"value": 6}, "seed": {"values": [1]}}}
    sweep_id = launch_sweep(long, processes=2, count=0, store=store)
    monkeypatch.setenv("LAB_DEMO", "1")
    monkeypatch.setenv("LAB_DEMO_MAX_JOBS", "3")
    try:
        assert (agent_processes(store), free_agent_slots(store)) == (2, 1)
    finally:
        stop_sweep(store, sweep_id, grace_s=0.0)
    assert (agent_processes(store), free_agent_slots(store)) == (0, 3)
