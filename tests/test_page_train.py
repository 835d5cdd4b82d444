"""The Train page through AppTest, with the real worker process training the run."""

import time

from streamlit.testing.v1 import AppTest

from core.status import RunStatus
from core.tracker import Store
from tests.conftest import REPO

APP = str(REPO / "app.py")


def train_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/1_Train.py")
    return at.run()


def poll_until_final(at: AppTest, seconds: float = 120.0) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        at.run()                                  # AppTest does not fire run_every by itself
        assert not at.exception, at.exception
        runs = Store().list_runs()
        if runs and runs[0].status.is_final:
            at.run()
            return
        time.sleep(0.5)
    raise AssertionError("the run did not finish in time")


def test_start_the_default_run_and_watch_it_finish():
    at = train_page()
    assert not at.exception
    at.button[0].click().run()                    # the form's Start button
    assert not at.exception
    runs = Store().list_runs()
    assert len(runs) == 1 and runs[0].config["dataset"] == "digits" and runs[0].source == "app"
    poll_until_final(at)
    run = Store().get_run(runs[0].run_id)
    assert run.status is RunStatus.FINISHED, run.reason
    assert [m.label for m in at.metric][:2] == ["Status", "Best val acc"]
    assert at.metric[0].value == "finished"
    assert run.summary["epochs_completed"] == 10
    assert any("completed all 10 epochs" in s.value for s in at.success)


def test_bad_field_value_shows_one_line_error_and_starts_nothing():
    at = train_page()
    lr_box = next(t for t in at.text_input if t.label == "lr")
    lr_box.set_value("abc")
    at.button[0].click().run()
    assert not at.exception
    assert len(at.error) == 1 and "lr: 'abc'" in at.error[0].value
    assert Store().list_runs() == []
