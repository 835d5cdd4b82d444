"""The Sweeps page through AppTest, and the agent processes it starts and stops (core.sweepjobs)."""

import time

import pytest
from streamlit.testing.v1 import AppTest

from core import ui_keys as keys
from core.config import TrainConfig
from core.datacheck import cnn_needs_images
from core.status import RunStatus
from core.sweepjobs import (EXAMPLE_YAML, agents_alive, check_sweep, form_config, param_entry, start_agents,
                            stop_sweep, wait_agents)
from core.sweeps import create_sweep, run_agent, sweep_table
from core.sweepviz import best_run
from core.tracker import Store
from tests.conftest import REPO

TINY = {"method": "random", "metric": {"name": "val_loss", "goal": "minimize"},
        "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 2},
        "parameters": {"dataset": {"value": "threshold"}, "batch_size": {"value": 6}, "epochs": {"value": 2},
                       "lr": {"distribution": "log_uniform_values", "min": 1e-3, "max": 0.3},
                       "dropout": {"min": 0.0, "max": 0.5}}}


@pytest.fixture(autouse=True)
def no_training_worker(monkeypatch):
    """These pages never train from the page, so the home page's warm worker would only compete for the cores."""
    from core.worker import WorkerProcess

    monkeypatch.setattr(WorkerProcess, "ensure_running", lambda self: None)


def sweeps_page(own: tuple[str, ...] = ()) -> AppTest:
    """The Sweeps page in a fresh browser session that started the sweeps `own` (it may steer them in
    a demo)."""
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    at.session_state[keys.OWN_RUNS] = list(own)
    at.switch_page("pages/5_Sweeps.py")
    return at.run()


def yaml_mode(at: AppTest) -> AppTest:
    return at.radio(key=f"{keys.SWEEP_FORM}.mode").set_value("YAML").run()


def test_no_sweeps_says_what_to_do():
    at = sweeps_page()
    assert not at.exception and not at.error
    assert any("No sweeps yet" in info.value for info in at.info)


def test_invalid_yaml_is_one_error_line_and_start_is_disabled():
    at = yaml_mode(sweeps_page())
    at.text_area(key=keys.SWEEP_YAML).set_value("method: [").run()
    assert not at.exception and len(at.error) == 1
    assert "not valid YAML" in at.error[0].value and "\n" not in at.error[0].value
    assert [b for b in at.button if b.label == "Start"][0].disabled
    at.text_area(key=keys.SWEEP_YAML).set_value("method: random\nparameters: {batchsize: {value: 8}}").run()
    assert not at.exception and "did you mean 'batch_size'" in at.error[0].value


def test_valid_yaml_and_the_default_form_show_no_error():
    at = yaml_mode(sweeps_page())
    assert not at.exception and not at.error and not at.warning
    assert not [b for b in at.button if b.label == "Start"][0].disabled
    at.radio(key=f"{keys.SWEEP_FORM}.mode").set_value("form").run()
    assert not at.exception and not at.error
    assert at.number_input(key=f"{keys.SWEEP_FORM}.eta").value == 3               # W&B's default eta
    assert "eta: 3" in EXAMPLE_YAML
    at.text_input(key=f"{keys.SWEEP_FORM}.lr.log_uniform_values.min").set_value("0.5").run()
    assert not at.exception and "parameters.lr: min 0.5 is not less than max 0.1" in at.error[0].value


def test_a_finished_sweep_shows_its_runs_charts_and_best_run():
    store = Store()
    sweep_id = create_sweep(TINY, store=store)
    run_agent(sweep_id, count=4, store=store)
    table = sweep_table(store, sweep_id)
    best = best_run(table, "minimize")["run_id"]
    at = sweeps_page()
    assert not at.exception and not at.error
    shown = at.dataframe[0].value
    assert sorted(shown["run_id"]) == sorted(table["run_id"])
    assert set(shown["state"]) <= {"finished", "early-terminated"}
    assert len(at.get("plotly_chart")) == 3                   # curves, parallel coordinates, scatter
    assert any(best in md.value for md in at.markdown if md.value.startswith("Best run"))
    [b for b in at.button if b.label == "Open in Predict"][0].click().run()
    assert not at.exception and at.session_state[keys.PREDICT_RUN] == best
    again = sweeps_page()
    [b for b in again.button if b.label == "Train it again"][0].click().run()
    assert not again.exception
    queued = store.get_run(again.session_state[keys.ACTIVE_RUN])
    assert queued.status is RunStatus.QUEUED and queued.config == TrainConfig(**store.get_run(best).config).to_dict()


def test_an_unknown_sweep_in_the_address_is_one_error():
    store = Store()
    create_sweep(TINY, store=store)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    at.switch_page("pages/5_Sweeps.py")
    at.query_params["sweep"] = "nosuchsweep"
    at.run()
    assert not at.exception and "no sweep 'nosuchsweep'" in at.error[0].value


def test_form_entries_become_a_wandb_config():
    assert param_entry("categorical", {"values": "32,16; 64,32"}) == {"distribution": "categorical",
                                                                     "values": ["32,16", "64,32"]}
    assert param_entry("q_uniform", {"min": "1e-4", "max": "1", "q": ""}) == {"distribution": "q_uniform",
                                                                             "min": 0.0001, "max": 1}
    config = form_config("grid", "val_acc", "maximize", {"seed": ("int_uniform", {"min": "1", "max": "3"})},
                         {"min_iter": 2, "eta": 3}, run_cap=5)
    checked = check_sweep(config, "threshold", "mlp")
    assert checked.error is None and checked.config["parameters"]["dataset"]["value"] == "threshold"
    assert checked.config["early_terminate"]["min_iter"] == 2 and checked.config["run_cap"] == 5
    assert check_sweep({**config, "metric": {"name": "acc"}}, "threshold", "mlp").warnings
    assert "unknown dataset 'nope'" in check_sweep(config, "nope", "mlp").error


def test_searching_a_setting_the_model_ignores_is_flagged():
    dropout = {"method": "random", "parameters": {"dropout": {"min": 0.0, "max": 0.5}}}
    warned = check_sweep(dropout, "digits", "mlp").warnings
    assert any(w.startswith("parameters.dropout: model mlp does not use dropout") for w in warned)
    assert not check_sweep(dropout, "digits", "cnn").warnings
    both = {"method": "random", "parameters": {"model": {"values": ["mlp", "cnn"]},
                                               "dropout": {"min": 0.0, "max": 0.5}}}
    assert not check_sweep(both, "digits", "mlp").warnings
    hidden = {"method": "grid", "parameters": {"hidden": {"values": ["32", "64"]}}}
    assert "parameters.hidden: model cnn" in check_sweep(hidden, "digits", "cnn").warnings[0]


def test_agent_processes_run_a_grid_to_its_end():
    store = Store()
    grid = {"method": "grid", "parameters": {"dataset": {"value": "threshold"}, "epochs": {"value": 2},
                                             "batch_size": {"value": 6}, "seed": {"values": [1, 2]}}}
    sweep_id = create_sweep(grid, store=store)
    job = start_agents(sweep_id, processes=1, store=store)
    assert agents_alive(sweep_id) == 1 and job.process.pid > 0
    assert wait_agents(sweep_id, timeout_s=120), job.log.read_text()
    assert job.process.returncode == 0 and agents_alive(sweep_id) == 0
    trials = store.sweep_trials(sweep_id)
    assert sorted(t["params"]["seed"] for t in trials) == [1, 2]
    assert all(t["status"] is RunStatus.FINISHED for t in trials)
    assert store.get_sweep(sweep_id)["state"] == "finished"


def wait_for_running_run(store, sweep_id, timeout_s=60.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        running = [t for t in store.sweep_trials(sweep_id) if t["status"] is RunStatus.RUNNING]
        if running and store.get_run(running[0]["run_id"]).progress:
            return running[0]["run_id"]
        time.sleep(0.1)
    pytest.fail("no trial started running")


@pytest.mark.parametrize("grace_s", [10.0, 0.0])
def test_stop_sweep_stops_its_runs_and_agents(grace_s):
    store = Store()
    long = {"method": "grid", "parameters": {"dataset": {"value": "threshold"}, "epochs": {"value": 100_000},
                                             "batch_size": {"value": 6}, "seed": {"values": [1, 2]}}}
    sweep_id = create_sweep(long, store=store)
    start_agents(sweep_id, store=store)
    run_id = wait_for_running_run(store, sweep_id)
    assert stop_sweep(store, sweep_id, grace_s=grace_s) == [run_id]
    assert store.get_sweep(sweep_id)["state"] == "stopped" and agents_alive(sweep_id) == 0
    run = store.get_run(run_id)
    assert run.status is RunStatus.STOPPED and "sweep stopped" in run.reason
    assert len(store.sweep_trials(sweep_id)) == 1                 # no new trial after the stop
    if grace_s:
        assert "agent was ended" not in run.reason                # the run read the stop control itself


# --------------------------------------------------------------------------- checks, demo caps, escaping and the summary


def start_button(at: AppTest):
    return [b for b in at.button if b.label == "Start"][0]


def test_a_distribution_the_trainer_would_refuse_disables_start_and_creates_nothing():
    at = yaml_mode(sweeps_page())
    at.text_area(key=keys.SWEEP_YAML).set_value("method: random\nparameters:\n  lr: {min: -1.0, max: 1.0}\n").run()
    assert not at.exception and len(at.error) == 1
    assert at.error[0].value.startswith("parameters.lr: uniform can give -1 (min), which is not allowed")
    assert start_button(at).disabled
    at.text_area(key=keys.SWEEP_YAML).set_value("method: random\nparameters:\n  epochs: {values: [0, 5]}\n").run()
    assert at.error[0].value.startswith("parameters.epochs: values entry 0 is not allowed")
    assert start_button(at).disabled and Store().list_sweeps() == []


def test_demo_caps_the_agents_and_refuses_server_folders(monkeypatch):
    monkeypatch.setenv("LAB_DEMO", "1")
    monkeypatch.setenv("LAB_DEMO_MAX_JOBS", "1")
    at = yaml_mode(sweeps_page())
    assert not at.exception and any("at most 1 agent processes at once" in i.value for i in at.info)
    agents = at.number_input(key=f"{keys.SWEEP_FORM}.agents")
    assert agents.max == 1 and "at most 1 agent processes" in agents.help
    at.text_area(key=keys.SWEEP_YAML).set_value(
        "method: random\nparameters:\n  data_root: {values: [null, /srv/data]}\n  epochs: {value: 2}\n").run()
    assert not at.exception
    assert at.error[0].value.startswith("parameters.data_root: values entry '/srv/data' is not allowed: server")
    assert start_button(at).disabled
    at.text_area(key=keys.SWEEP_YAML).set_value("method: random\nparameters: {epochs: {values: [5, 50]}}\n").run()
    assert "values entry 50 is not allowed" in at.error[0].value and "cap of 30" in at.error[0].value
    assert Store().list_sweeps() == []


def test_demo_add_an_agent_stops_at_the_cap(monkeypatch):
    monkeypatch.setenv("LAB_DEMO", "1")
    store = Store()
    long = {"method": "grid", "parameters": {"dataset": {"value": "threshold"}, "epochs": {"value": 100_000},
                                             "batch_size": {"value": 6}, "seed": {"values": [1]}}}
    sweep_id = create_sweep(long, store=store)
    try:
        at = sweeps_page(own=(sweep_id,))
        assert not [b for b in at.button if b.label == "Add an agent"][0].disabled
        start_agents(sweep_id, processes=2, store=store)
        at = sweeps_page(own=(sweep_id,))
        assert not at.exception
        add = [b for b in at.button if b.label == "Add an agent"][0]
        assert add.disabled and "at most 2 at once" in add.help
        assert start_button(at).disabled
        assert any("stop a sweep to start another" in i.value for i in at.info)
    finally:
        stop_sweep(store, sweep_id, grace_s=0.0)


def test_run_names_show_literally_and_the_summary_says_how_hyperband_judges():
    store = Store()
    strict = {**TINY, "early_terminate": {**TINY["early_terminate"], "strict": True}}
    sweep_id = create_sweep(strict, store=store)
    [run_id] = run_agent(sweep_id, count=1, store=store)
    store.update_run(run_id, name="**x** [a](javascript:alert(1))")
    at = sweeps_page()
    assert not at.exception
    [best] = [md.value for md in at.markdown if md.value.startswith("Best run")]
    assert r"(\*\*x\*\* \[a\]\(javascript\:alert\(1\)\))" in best and "**x**" not in best
    summary = " ".join(c.value for c in at.caption)
    assert r"strict true\: a run is judged by its value at each bracket" in summary


def test_a_dataset_and_a_model_that_cannot_go_together_are_flagged_or_refused():
    both = {"method": "grid", "parameters": {"dataset": {"values": ["digits", "moons"]},
                                             "model": {"values": ["mlp", "cnn"]}}}
    checked = check_sweep(both, "digits", "mlp")
    assert checked.error is None
    pair = [w for w in checked.warnings if w.startswith("parameters.dataset, parameters.model:")]
    assert pair == [f"parameters.dataset, parameters.model: dataset 'moons' with model 'cnn': "
                    f"{cnn_needs_images('moons', 'point')}; those runs will fail"]
    never = {"method": "random", "parameters": {"dataset": {"values": ["moons", "xor"]}, "model": {"values": ["cnn"]}}}
    error = check_sweep(never, "digits", "mlp").error
    assert error.startswith("parameters.dataset, parameters.model: no dataset and model the sweep can draw go "
                            "together: dataset 'moons' with model 'cnn': model 'cnn' needs an image dataset")
    images = {"method": "grid", "parameters": {"dataset": {"values": ["digits"]}, "model": {"values": ["mlp", "cnn"]}}}
    assert not [w for w in check_sweep(images, "digits", "mlp").warnings if "parameters.model:" in w]
