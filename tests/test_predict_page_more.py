"""The Predict page through AppTest: fresh checkpoints, chart clicks, a missing dataset, the import form."""

import base64
import io
import json
import shutil

import numpy as np
import plotly.io as pio
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from core import ui_keys as keys
from core.checkpoint import load_model, save_checkpoint
from core.config import TrainConfig
from core.predict import Predictor, click_targets, clicked_cell, clicked_point
from core.tracker import Store
from tests.conftest import MNIST_ROOT, REPO, needs_mnist
from tests.test_imports import address_space_cap
from tests.test_page_predict import trained

PAGE = str(REPO / "pages" / "2_Predict.py")


def predict_page(run_id: str | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    if run_id:
        at.session_state[keys.PREDICT_RUN] = run_id
    return at.run()


def figures(at: AppTest) -> list:
    """The page's plotly charts as figures, in page order."""
    return [pio.from_json(chart.proto.spec) for chart in at.get("plotly_chart")]


def trace(figure, name: str):
    return next(t for t in figure.data if t.name == name)


def values(array) -> list:
    """A trace's x or y as a list: plotly sends numeric arrays as base64 ("bdata") with a dtype."""
    if isinstance(array, dict) and "bdata" in array:
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


# -- the model follows its newest checkpoint -----------------------------------------------------------

def test_a_new_checkpoint_of_the_same_run_is_picked_up():
    """A run still training (or resumed) writes a new best checkpoint: the page predicts with it."""
    run_id = trained(dataset="threshold", batch_size=1, epochs=10)
    at = predict_page(run_id)
    assert not at.exception and at.metric[0].value == "> 8"              # the default input is 24
    folder = Store().run_folder(run_id)
    model, meta = load_model(folder)
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():                                                  # swap the two classes' logits
        last.weight.neg_()
        last.bias.neg_()
    save_checkpoint(folder, model, {k: meta[k] for k in ("config", "dataset", "epoch")})
    at.run()
    assert not at.exception and at.metric[0].value == "<= 8"
    assert Predictor.from_run(run_id).predict(24).label == "<= 8"


# -- clicks on charts ----------------------------------------------------------------------------------

def test_clicks_as_the_browser_reports_them_pick_a_point_or_a_cell():
    # what Streamlit hands back after a click on a chart (recorded from a real browser)
    selection = [{"curve_number": 3, "point_number": 9, "point_index": 9, "x": 1, "y": 2}]
    assert clicked_point(selection) == (1.0, 2.0)
    assert clicked_point([{"x": "a", "y": 1}, {"x": 0.25, "y": -1.5}]) == (0.25, -1.5)
    assert clicked_point([]) is None and clicked_point(None) is None
    digits = [str(i) for i in range(10)]                  # numeric-looking names come back as numbers
    assert clicked_cell(selection, digits) == ("2", "1")
    assert clicked_cell([{"x": 7.0, "y": 3.0}], digits) == ("3", "7")
    assert clicked_cell([{"x": 1.5, "y": 3}, {"x": 12, "y": 3}], digits) is None
    assert clicked_cell([{"x": "> 8", "y": "<= 8"}], ("<= 8", "> 8")) == ("<= 8", "> 8")
    targets = click_targets(["a", "b", "c"], ["a", "b", "c"])
    assert sorted(zip(targets["x"], targets["y"])) == [(x, y) for x in "abc" for y in "abc"]


def test_the_cross_follows_the_sliders_and_every_cell_can_be_clicked():
    """Plotly selects points of scatter traces only, never heat-map cells: each heat map carries a
    click target at every cell. The cross, the caption and the prediction all show the chosen point."""
    run_id = trained(dataset="moons", epochs=2, num_samples=200)
    at = predict_page(run_id)
    assert not at.exception
    x_slider, y_slider = at.slider
    x_slider.set_value(x_slider.min + 0.25 * (x_slider.max - x_slider.min))
    y_slider.set_value(y_slider.max - 0.1 * (y_slider.max - y_slider.min))
    at.run()
    point = (x_slider.value, y_slider.value)
    boundary, confusion = figures(at)
    cross = trace(boundary, "your point")
    assert (cross.x[0], cross.y[0]) == pytest.approx(point)
    assert f"Point ({point[0]:.3f}, {point[1]:.3f})" in [c.value for c in at.caption]
    assert at.metric[0].value == Predictor.from_run(run_id).predict(point).label
    heat, clicks = boundary.data[0], trace(boundary, "click")
    grid = {(x, y) for x in values(heat.x) for y in values(heat.y)}
    assert len(grid) == 80 * 80 and set(zip(values(clicks.x), values(clicks.y))) == grid
    names = values(confusion.data[0].x)
    cells = trace(confusion, "click")
    assert sorted(zip(values(cells.x), values(cells.y))) == [(x, y) for x in names for y in names]


# -- a run whose dataset files are gone -----------------------------------------------------------------

def digit_png() -> bytes:
    image = Image.new("L", (28, 28))
    image.paste(255, (12, 4, 16, 24))                                     # a "1"
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@needs_mnist
def test_without_the_dataset_files_drawing_and_uploads_still_predict(tmp_path):
    from core.datasets import _load_cached

    root = tmp_path / "data"
    shutil.copytree(MNIST_ROOT / "MNIST", root / "MNIST")
    run_id = trained(dataset="mnist", data_root=str(root), max_samples=300, epochs=1, batch_size=64,
                     hidden=(16,))
    shutil.rmtree(root)
    _load_cached.cache_clear()                        # as after a restart: nothing left in memory
    at = predict_page(run_id)
    assert not at.exception and not at.error
    assert len(at.warning) == 1 and str(root / "MNIST" / "raw") in at.warning[0].value
    assert "\n" not in at.warning[0].value
    assert not at.metric and not [c for c in at.caption if "validation samples right" in c.value]
    next(u for u in at.file_uploader if u.label == "An image").set_value(("one.png", digit_png(), "image/png")).run()
    assert not at.exception and [m.label for m in at.metric] == ["Prediction"]


# -- the import form --------------------------------------------------------------------------------

def weights_file() -> bytes:
    from safetensors.torch import save

    from core.datasets import load_dataset
    from core.models import build_model

    config = TrainConfig(dataset="digits", model="mlp", hidden=(16,))
    model = build_model(config, load_dataset(config).info)
    return save({k: v.contiguous() for k, v in model.state_dict().items()})


def try_import(at: AppTest, extra: dict) -> list[str]:
    """Import the weights file with these other config fields; the page's error lines."""
    next(t for t in at.text_input if t.label.startswith("Other config fields")).input(json.dumps(extra)).run()
    next(b for b in at.button if b.label == "Import").click().run()
    assert not at.exception
    return [e.value for e in at.error]


@pytest.mark.parametrize("root,expected", [
    ("~nobodyxyz/x", "~nobodyxyz/x"), ("data\x00root", "NUL byte"), ("x" * 5000, "5000"),
    ("/no/such/folder", "not a folder on this server")])
def test_the_import_form_refuses_bad_data_roots_in_one_line(root, expected):
    at = predict_page()
    next(u for u in at.file_uploader if u.label == "Weights file").set_value(
        ("w.safetensors", weights_file(), "application/octet-stream")).run()
    errors = try_import(at, {"hidden": [16], "data_root": root})
    assert len(errors) == 1 and errors[0].startswith("data_root") and expected in errors[0], errors
    assert "\n" not in errors[0] and Store().list_runs() == []


def test_in_a_hosted_demo_the_import_form_takes_no_server_path_and_keeps_the_caps(monkeypatch, tmp_path):
    monkeypatch.setenv("LAB_DEMO", "1")
    at = predict_page()
    assert any("Demo limits" in c.value for c in at.caption)
    assert "mnist" not in next(s for s in at.selectbox if s.label == "Dataset").options
    next(u for u in at.file_uploader if u.label == "Weights file").set_value(
        ("w.safetensors", weights_file(), "application/octet-stream")).run()
    errors = try_import(at, {"hidden": [16], "data_root": str(tmp_path)})
    assert len(errors) == 1 and errors[0].startswith("data_root: server folders"), errors
    with address_space_cap():                             # refused from arithmetic: nothing allocated
        errors = try_import(at, {"hidden": [65536] * 16})
    assert len(errors) == 1 and "over the demo's cap of 300,000" in errors[0], errors
    assert Store().list_runs() == []
    assert try_import(at, {"hidden": [16]}) == [] and len(Store().list_runs()) == 1
