"""Hosted-demo mode: caps checked before a run exists, shown on the page, enforced while training."""

import tomllib

import pytest
from streamlit.testing.v1 import AppTest

from core.config import ConfigError, TrainConfig
from core.demo import DemoLimits, demo_limits
from core.tracker import Store
from core.worker import StoreControl, job_slots, submit
from tests.conftest import REPO


@pytest.fixture
def demo(monkeypatch):
    monkeypatch.setenv("LAB_DEMO", "1")
    monkeypatch.setenv("LAB_DEMO_MAX_SECONDS", "1")
    return demo_limits()


def test_limits_come_from_the_environment(demo, monkeypatch):
    assert demo == DemoLimits(max_seconds=1)
    monkeypatch.setenv("LAB_MAX_JOBS", "8")
    assert job_slots() == demo.max_jobs
    monkeypatch.delenv("LAB_DEMO")
    assert demo_limits() is None and job_slots() == 8


@pytest.mark.parametrize("change,fragment", [
    ({"epochs": 31}, "epochs: 31 is over the demo's cap of 30"),
    ({"dataset": "mnist"}, "not available in the demo"),
    ({"data_root": "/etc"}, "server folders"),
    ({"dataset": "moons", "num_samples": 100_000}, "num_samples"),
    ({"hidden": (2048, 2048)}, "parameters is over the demo's cap"),
])
def test_over_the_caps_is_refused_before_a_run_exists(demo, change, fragment):
    with pytest.raises(ConfigError, match=fragment):
        submit(TrainConfig(**change))
    assert Store().list_runs() == []


def test_model_size_is_worked_out_without_building_the_model(demo):
    from core.datasets import load_dataset
    from tests.test_imports import address_space_cap

    huge = TrainConfig(hidden=(65536,) * 16)             # about 6 x 10^10 parameters
    load_dataset(huge)                                    # the dataset is loaded outside the cap
    with address_space_cap(), pytest.raises(ConfigError, match="parameters is over the demo's cap"):
        submit(huge)
    assert Store().list_runs() == []


def test_wall_time_cap_stops_the_run(demo):
    store = Store()
    run_id = store.create_run({})
    control = StoreControl(store, run_id, interval_s=0.0)
    control.started_at -= 5                                    # as if it had trained for 5 s
    control.at_step(1, 0, 10, 0)
    assert "limit of 1 s per run" in control.stop_reason


def test_wall_time_cap_counts_the_epochs_before_a_resume(demo):
    store = Store()
    run_id = store.create_run({})
    for epoch in (1, 2):                                       # two epochs of 0.6 s before a stop
        store.record_epoch(run_id, {"seconds": 0.6, "val_loss": 1.0}, step=epoch * 10, epoch=epoch)
    control = StoreControl(store, run_id, interval_s=0.0)      # the resumed run's control, fresh clock
    control.at_step(21, 2, 10, 0)
    assert "limit of 1 s per run" in control.stop_reason
    fresh = StoreControl(store, store.create_run({}), interval_s=0.0)
    fresh.at_step(1, 0, 10, 0)
    assert fresh.stop_reason is None


def test_page_shows_the_caps_and_hides_server_paths(demo):
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    at.switch_page("pages/1_Train.py").run()
    assert not at.exception
    assert any("Demo limits: up to 30 epochs" in i.value for i in at.info)
    assert all(t.label != "data root" for t in at.text_input)


def test_xsrf_protection_upload_cap_and_error_details_are_configured():
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["enableXsrfProtection"] is True
    assert config["server"]["maxUploadSize"] == 10
    assert config["client"] == {"showErrorDetails": "type", "toolbarMode": "viewer"}   # no tracebacks, no Deploy
    from core.uploads import MAX_UPLOAD_BYTES

    assert MAX_UPLOAD_BYTES == config["server"]["maxUploadSize"] * 2**20



def test_a_demo_visitor_may_change_only_what_their_session_started(monkeypatch):
    from core.launch import claim, may_change

    state = {}
    assert may_change(state, "abc")                             # a local lab: anyone may
    monkeypatch.setenv("LAB_DEMO", "1")
    assert not may_change(state, "abc")
    claim(state, "abc")
    assert may_change(state, "abc") and not may_change(state, "xyz")


def someone_elses_run() -> str:
    store = Store()
    run_id = store.create_run(TrainConfig(epochs=2).to_dict(), name="not yours")    # running, as created
    store.set_progress(run_id, {"epoch": 1})
    return run_id


@pytest.mark.parametrize("demo_on", [True, False])
def test_runs_and_train_pages_offer_no_controls_over_another_visitors_run(monkeypatch, demo_on):
    from core.launch import NOT_YOURS

    if demo_on:
        monkeypatch.setenv("LAB_DEMO", "1")
    run_id = someone_elses_run()
    runs = AppTest.from_file(str(REPO / "pages" / "4_Runs.py"), default_timeout=60).run()
    assert not runs.exception
    labels = [b.label for b in runs.button]
    assert ("Delete run" in labels) is not demo_on
    assert any(NOT_YOURS in c.value for c in runs.caption) is demo_on
    train = AppTest.from_file(str(REPO / "pages" / "1_Train.py"), default_timeout=60)
    train.query_params["run"] = run_id
    train.run()
    assert not train.exception
    labels = [b.label for b in train.button]
    assert ("Stop" in labels) is not demo_on and ("Pause" in labels) is not demo_on
    assert any(NOT_YOURS in c.value for c in train.caption) is demo_on


@pytest.mark.parametrize("demo_on", [True, False])
def test_the_sweeps_page_offers_no_controls_over_another_visitors_sweep(monkeypatch, demo_on):
    from core.launch import NOT_YOURS
    from core.sweeps import create_sweep

    if demo_on:
        monkeypatch.setenv("LAB_DEMO", "1")
    create_sweep({"method": "grid", "parameters": {"dataset": {"value": "threshold"}, "batch_size": {"value": 6},
                                                   "seed": {"values": [1, 2]}}})
    at = AppTest.from_file(str(REPO / "pages" / "5_Sweeps.py"), default_timeout=60).run()
    assert not at.exception
    assert ("Stop sweep" in [b.label for b in at.button]) is not demo_on
    assert any(NOT_YOURS in c.value for c in at.caption) is demo_on
