"""The Runs page through AppTest, over runs trained for real."""

import io
import json
import shutil
import sqlite3

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core import ui_keys as keys
from core.config import TrainConfig
from core.tracker import Store
from tests.conftest import REPO, train_runs_into

CONFIGS = {"thr": TrainConfig(dataset="threshold", epochs=2, batch_size=6),
           "m1": TrainConfig(dataset="moons", epochs=2, num_samples=100, seed=1),
           "m2": TrainConfig(dataset="moons", epochs=2, num_samples=100, seed=2)}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A lab home with three real runs (threshold; moons with seeds 1 and 2), trained once: (home, ids)."""
    home = tmp_path_factory.mktemp("lab")
    made = train_runs_into(home, CONFIGS)
    return home, made


@pytest.fixture(autouse=True)
def no_worker(monkeypatch):
    """The home page warms a training worker; nothing here trains, so spare the cores its start."""
    monkeypatch.setattr("core.worker.ensure_worker", lambda *args, **kwargs: None)


@pytest.fixture
def ids(trained, lab_home) -> dict:
    """A private copy of the trained lab in this test's LAB_HOME (the database copied with SQLite's
    backup, so that it is consistent), which the test may change."""
    home, made = trained
    lab_home.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(home / "lab.db") as source, sqlite3.connect(lab_home / "lab.db") as target:
        source.backup(target)
    for folder in ("artifacts", "runs"):
        shutil.copytree(home / folder, lab_home / folder)
    return made


def runs_page() -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    at.switch_page("pages/4_Runs.py")
    return at.run()


def table_ids(at) -> list:
    return at.dataframe[0].value["run_id"].tolist()


def chart_traces(at) -> list:
    chart = at.get("plotly_chart")[0]
    return json.loads(chart.proto.spec)["data"]


def png_bytes(color) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_empty_store_says_what_to_do():
    at = runs_page()
    assert not at.exception and "No runs yet" in at.info[0].value


def test_the_table_lists_every_run_and_filters_by_query(ids):
    at = runs_page()
    assert not at.exception and not at.error
    assert sorted(table_ids(at)) == sorted(ids.values())
    at.text_input(key=keys.RUNS_FILTER).set_value('dataset == "moons" and seed > 1').run()
    assert not at.exception and table_ids(at) == [ids["m2"]]
    at.text_input(key=keys.RUNS_FILTER).set_value('dataset == "mnist"').run()
    assert not at.exception and table_ids(at) == [] and "No run matches" in at.info[-1].value
    at.text_input(key=keys.RUNS_FILTER).set_value("dataset ==").run()
    assert not at.exception and len(at.error) == 1
    assert "Cannot filter by 'dataset =='" in at.error[0].value and "invalid syntax" in at.error[0].value


def test_sort_by_a_column(ids):
    at = runs_page()
    at.selectbox[0].set_value("seed").run()
    assert table_ids(at) == [ids["thr"], ids["m2"], ids["m1"]]       # 42, 2, 1: descending by default
    at.toggle[0].set_value(False).run()
    assert table_ids(at) == [ids["m1"], ids["m2"], ids["thr"]]


def test_selected_runs_are_overlaid_with_a_config_diff_and_seed_bands(ids):
    at = runs_page()
    assert not at.get("plotly_chart") and "Choose runs above" in at.info[0].value
    at.multiselect(key=keys.RUNS_SELECTED).set_value([ids["m1"], ids["m2"], ids["thr"]]).run()
    assert not at.exception
    assert [t["name"] for t in chart_traces(at)] == [f"{n} ({ids[n]})" for n in ("m1", "m2", "thr")]
    diff = at.dataframe[1].value
    assert diff.index.tolist() == ["batch_size", "dataset", "num_samples", "seed"]
    lines = next(s for s in at.selectbox if s.label == "Lines")
    lines.set_value("mean ± std over seeds").run()
    named = [t["name"] for t in chart_traces(at) if t.get("showlegend") is not False]
    assert named == [f"m1 ({ids['m1']}) (2 seeds)", f"thr ({ids['thr']})"]
    next(s for s in at.selectbox if s.label == "x-axis").set_value("wall time").run()
    assert not at.exception and any("step or epoch" in i.value for i in at.info)


def test_the_selection_survives_a_filter_that_hides_it(ids):
    at = runs_page()
    at.multiselect(key=keys.RUNS_SELECTED).set_value([ids["thr"]]).run()
    at.text_input(key=keys.RUNS_FILTER).set_value('dataset == "moons"').run()
    assert not at.exception and at.multiselect(key=keys.RUNS_SELECTED).value == [ids["thr"]]
    assert len(chart_traces(at)) == 1


def test_rename_and_tag_a_run(ids):
    at = runs_page()
    at.selectbox(key=keys.RUNS_DETAIL).set_value(ids["m1"]).run()
    at.text_input[1].set_value("  ")
    at.button[0].click().run()
    assert "needs a name" in at.error[0].value and Store().get_run(ids["m1"]).name == "m1"
    at.text_input[1].set_value("**bold** <b>x</b>")
    at.text_input[2].set_value("x, y,, x")
    at.button[0].click().run()
    run = Store().get_run(ids["m1"])
    assert not at.exception and (run.name, run.tags) == ("**bold** <b>x</b>", ("x", "y"))
    assert f"run {ids['m1']}" in at.success[0].value
    shown = at.dataframe[0].value.set_index("run_id")
    assert shown.loc[ids["m1"], "name"] == "**bold** <b>x</b>" and shown.loc[ids["m1"], "tags"] == "x, y"


def test_delete_needs_a_confirmation(ids):
    at = runs_page()
    at.multiselect(key=keys.RUNS_SELECTED).set_value([ids["thr"], ids["m2"]]).run()
    at.selectbox(key=keys.RUNS_DETAIL).set_value(ids["thr"]).run()
    delete = next(b for b in at.button if b.label == "Delete run")
    delete.click().run()
    assert "Tick the box" in at.error[0].value and Store().get_run(ids["thr"]).name == "thr"
    at.checkbox(key=f"confirm_delete_{ids['thr']}").check().run()
    next(b for b in at.button if b.label == "Delete run").click().run()
    assert not at.exception and [r.run_id for r in Store().list_runs()] == [ids["m2"], ids["m1"]]
    assert f"Deleted run {ids['thr']}" in at.success[0].value
    assert ids["thr"] not in table_ids(at) and at.multiselect(key=keys.RUNS_SELECTED).value == [ids["m2"]]


def test_a_running_run_cannot_be_deleted(lab_home):
    store = Store()
    run_id = store.create_run({"lr": 0.1}, name="live")
    at = runs_page()
    at.checkbox(key=f"confirm_delete_{run_id}").check().run()
    next(b for b in at.button if b.label == "Delete run").click().run()
    assert "still running" in at.error[0].value and store.get_run(run_id).name == "live"


def test_tables_images_artifacts_and_exports_of_a_run(ids):
    store = Store()
    run_id = ids["thr"]
    cell = {"_type": "image", "sha256": store.put_blob(png_bytes((0, 0, 255))), "caption": "blue"}
    store.log_table(run_id, "cases", ["label", "picture"], [[1, cell], [0, cell]], step=2)
    for step in (1, 2):
        store.log_image(run_id, "samples", png_bytes((step * 100, 0, 0)), step=step, caption=f"**step {step}**")
    at = runs_page()
    at.selectbox(key=keys.RUNS_DETAIL).set_value(run_id).run()
    assert not at.exception
    cases = next(d.value for d in at.dataframe if "picture" in d.value.columns)
    assert cases["picture"].tolist()[0].startswith("data:image/png;base64,")
    at.text_input(key=keys.RUNS_TABLE_FILTER).set_value("label == 0").run()
    assert next(d.value for d in at.dataframe if "picture" in d.value.columns)["label"].tolist() == [0]
    at.text_input(key=keys.RUNS_TABLE_FILTER).set_value("label >").run()
    assert any("Cannot filter by 'label >'" in e.value for e in at.error)
    assert at.select_slider[0].options == ["1", "2"]
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download as zip", "Metrics (CSV)", "Config (JSON)"]
