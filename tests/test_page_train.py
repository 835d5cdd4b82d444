"""The Train page through AppTest, with the real worker process training the run."""

import re
import time

import pytest
from streamlit.testing.v1 import AppTest

from core.config import TrainConfig
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


def widget(widgets, label: str):
    return next(w for w in widgets if w.label == label)


def test_the_quick_start_opens_its_run_with_its_address():
    at = AppTest.from_file(APP, default_timeout=60).run()
    next(b for b in at.button if b.label == "Train the default model").click().run()
    assert not at.exception
    run = Store().list_runs()[0]
    assert at.query_params["run"] == run.run_id                  # a reload comes back to it
    assert [s.value for s in at.subheader][0] == f"Run {run.run_id}: quick start"


def test_a_page_with_no_run_chosen_offers_the_run_in_training():
    running = Store().create_run(TrainConfig(epochs=3).to_dict(), name="from a script")   # as core.wandb.init does
    at = train_page()
    assert not at.exception and not at.subheader
    assert [i.value for i in at.info] == [f"A run is training: from a script ({running})"]
    widget(at.button, "Open it").click().run()
    assert not at.exception
    assert at.query_params["run"] == running
    assert at.subheader[0].value.startswith(f"Run {running}: from a script")


def test_a_run_name_is_shown_literally_not_as_markdown():
    name = "**x** [a](javascript:alert(1))"
    run_id = Store().create_run(TrainConfig().to_dict(), name=name)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/1_Train.py")
    at.query_params["run"] = run_id
    at.run()
    assert not at.exception
    shown = at.subheader[0].value.removeprefix(f"Run {run_id}: ")
    assert not re.search(r"(?<!\\)[*\[\]()_`<>:]", shown)          # no markdown or link syntax left active
    assert re.sub(r"\\(.)", r"\1", shown) == name                  # and it reads as the name typed


def test_the_preview_follows_the_data_fields_as_they_change():
    at = train_page()
    dataset = widget(at.selectbox, "dataset")
    assert dataset.form_id == ""                                    # outside the Start form: changes rerun the page
    assert at.get("image") and not at.get("vega_lite_chart")       # digits: a grid of images
    dataset.set_value("moons").run()
    assert not at.exception
    assert at.get("vega_lite_chart") and not at.get("image")        # moons: a scatter of points
    widget(at.selectbox, "dataset").set_value("digits").run()       # a second change of the same field counts too
    assert at.get("image") and not at.get("vega_lite_chart")
    widget(at.selectbox, "dataset").set_value("moons").run()
    at.switch_page("app.py").run()
    at.switch_page("pages/1_Train.py").run()                        # the form keeps its values across pages
    assert widget(at.selectbox, "dataset").value == "moons" and at.get("vega_lite_chart")
    assert Store().list_runs() == []


def test_the_demo_preview_keeps_the_sample_cap(monkeypatch):
    monkeypatch.setenv("LAB_DEMO", "1")
    at = train_page()
    widget(at.selectbox, "dataset").set_value("moons")
    widget(at.text_input, "num samples").set_value("1000000").run()
    assert not at.exception
    assert [e.value for e in at.error] == ["No dataset preview: num_samples: 1000000 is over the demo's cap of 5000"]


@pytest.mark.parametrize("root", ["~nobodyxyz/x", "a\x00b", "/" + "a" * 5000, "/tmp/" + "a" * 300])
def test_a_bad_data_root_gives_one_line_errors_on_preview_and_start(root):
    at = train_page()
    widget(at.selectbox, "dataset").set_value("mnist")
    widget(at.text_input, "data root").set_value(root).run()
    assert not at.exception
    assert len(at.error) == 1 and at.error[0].value.startswith("No dataset preview: data")
    at.button[0].click().run()                                      # Start
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 2 and errors[1].startswith("data") and errors[1] in errors[0]
    assert all("\n" not in e and len(e) < 400 for e in errors)
    assert Store().list_runs() == []


def test_messages_name_the_form_field_not_a_command_line_flag(tmp_path):
    at = train_page()
    widget(at.selectbox, "dataset").set_value("mnist")
    widget(at.text_input, "data root").set_value(str(tmp_path)).run()          # a folder without the files
    assert not at.exception
    message = at.error[0].value
    assert "mnist files not found" in message and 'fill in the "data root" field' in message
    assert "--" not in message
    widget(at.selectbox, "dataset").set_value("image-folder")
    widget(at.text_input, "data root").set_value("").run()
    assert [e.value for e in at.error] == ['No dataset preview: image-folder needs the "data root" field: a folder '
                                           'with one subfolder of images per class']
    assert "python -m core" not in widget(at.selectbox, "dataset").help
