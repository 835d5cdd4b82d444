"""core.charts: the Train page's figures and end-of-run figures, and the Predict page's figures."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from core.charts import (RunFrames, boundary_figure, confusion_figure, dataset_preview, end_metrics, picked_points,
                         probability_figure, progress_text, run_frames, train_figures)
from core.config import ConfigError, TrainConfig
from core.status import RunStatus
from core.tracker import Store


def frames() -> RunFrames:
    epochs = pd.DataFrame({"epoch": [1, 2], "step": [5, 10], "train_loss": [0.9, 0.5], "val_loss": [1.0, 0.7],
                           "train_acc": [0.6, 0.8], "val_acc": [0.5, 0.75], "lr": [0.1, 0.05]})
    steps = pd.DataFrame({"step": list(range(1, 11)), "loss": np.linspace(1, 0.4, 10)})
    events = pd.DataFrame([{"kind": "change", "step": 5, "epoch": 1, "label": "lr -> 0.05"}])
    return RunFrames(epochs, steps, events)


def test_train_figures_come_in_reading_order_with_their_data():
    figures = train_figures(frames())
    assert list(figures) == ["loss_chart", "acc_chart", "step_chart", "lr_chart"]
    assert [t.name for t in figures["loss_chart"].data] == ["train_loss", "val_loss"]
    assert list(figures["acc_chart"].data[1].y) == [0.5, 0.75]
    assert len(figures["step_chart"].data[0].x) == 10
    assert figures["step_chart"].layout.shapes[0].x0 == 5                  # the live change, at its step
    assert list(figures["lr_chart"].data[0].y) == [0.1, 0.05] and figures["lr_chart"].layout.yaxis.type == "log"


def test_the_lr_chart_marks_a_live_change_where_it_happened():
    lr_chart = train_figures(frames())["lr_chart"]
    assert [shape.x0 for shape in lr_chart.layout.shapes] == [1.0]        # step 5 ends epoch 1 on the epoch axis
    assert [note.text for note in lr_chart.layout.annotations] == ["lr -> 0.05"]


def running_run(epochs: int, position: dict, created_ago_s: float, now: float):
    return SimpleNamespace(config={"epochs": epochs}, progress=position, created_at=now - created_ago_s)


def test_progress_time_left_comes_from_the_epochs_seconds_not_from_the_queue_wait():
    now = 1_000_000.0
    run = running_run(10, {"epoch": 3, "step_in_epoch": 2, "steps_per_epoch": 10}, created_ago_s=3600, now=now)
    epochs = pd.DataFrame({"epoch": [1, 2], "seconds": [2.0, 4.0]})
    text, fraction = progress_text(run, epochs, now=now, started_at=now - 7)
    assert fraction == pytest.approx(0.22)                                # 2 epochs and 2/10 of the third
    assert text == "epoch 3/10, step 2/10, about 23 s left"              # 3 s per epoch x 7.8 epochs left


def test_progress_before_the_first_epoch_counts_from_the_training_start():
    now = 1_000_000.0
    run = running_run(10, {"epoch": 1, "step_in_epoch": 3, "steps_per_epoch": 10, "paused": True},
                      created_ago_s=3600, now=now)
    empty = pd.DataFrame(columns=["epoch", "step"])
    text, fraction = progress_text(run, empty, now=now, started_at=now - 6)
    assert fraction == pytest.approx(0.03)
    assert text == "epoch 1/10, step 3/10, about 194 s left (paused)"   # 6 s for 0.3 epochs, 9.7 to go
    queued = running_run(10, {}, created_ago_s=3600, now=now)
    assert progress_text(queued, empty, now=now) == ("epoch 1/10, step 0/1", 0.0)     # nothing to estimate from


def test_run_frames_know_when_training_started():
    store = Store()
    run_id = store.create_run({})
    assert run_frames(store, run_id).started_at is None
    store.log_event(run_id, "start", {})
    started = store.event_rows(run_id)[0]["wall_time"]
    assert run_frames(store, run_id).started_at == started


def test_the_preview_keeps_the_demo_caps(monkeypatch):
    monkeypatch.setenv("LAB_DEMO", "1")
    with pytest.raises(ConfigError, match="num_samples: 1000000 is over the demo's cap of 5000"):
        dataset_preview(TrainConfig(dataset="moons", num_samples=1_000_000))
    kind, points = dataset_preview(TrainConfig(dataset="moons", num_samples=500))
    assert kind == "points" and len(points) == 400                        # the training split, 80%


def test_end_metrics_format_the_best_accuracy_and_dash_what_is_missing():
    run = SimpleNamespace(status=RunStatus.FINISHED, summary={"best_val_acc": 0.975, "best_epoch": 7})
    assert end_metrics(run, 10) == [("Status", "finished"), ("Best val acc", "97.50%"), ("Best epoch", 7),
                                    ("Epochs", 10)]
    failed = SimpleNamespace(status=RunStatus.FAILED, summary={})
    assert end_metrics(failed, 0) == [("Status", "failed"), ("Best val acc", "-"), ("Best epoch", "-"),
                                      ("Epochs", 0)]


def test_probability_figure_draws_the_curve_and_the_training_points():
    curve = pd.DataFrame({"x": [0.0, 10.0, 20.0], "<= 8": [0.9, 0.4, 0.1], "> 8": [0.1, 0.6, 0.9]})
    fig = probability_figure(curve, "> 8", np.array([[3.0], [12.0]]), np.array([0, 1]))
    assert [t.name for t in fig.data] == ["P(> 8)", "training points"]
    assert list(fig.data[0].y) == [0.1, 0.6, 0.9]
    assert list(fig.data[1].x) == [3.0, 12.0] and list(fig.data[1].y) == [0, 1]


def test_boundary_figure_holds_the_grid_points_and_the_chosen_point():
    grid = np.array([[0.1, 0.9], [0.2, 0.8]])
    raw = np.array([[0.0, 1.0], [1.0, 0.0]])
    fig = boundary_figure([0.0, 1.0], [0.0, 1.0], grid, raw, np.array([1, 0]), point=(0.25, 0.5))
    assert np.array_equal(np.asarray(fig.data[0].z), grid)
    assert list(fig.data[1].y) == [1.0, 0.0] and list(fig.data[1].marker.color) == [1, 0]
    assert (fig.data[2].x, fig.data[2].y, fig.data[2].name) == ((0.25,), (0.5,), "your point")


def test_confusion_figure_keeps_rows_as_true_labels():
    matrix = pd.DataFrame([[5, 1], [2, 7]], index=["a", "b"], columns=["a", "b"])
    fig = confusion_figure(matrix)
    assert np.array_equal(np.asarray(fig.data[0].z), [[5, 1], [2, 7]])
    assert list(fig.data[0].y) == ["a", "b"] and fig.layout.yaxis.title.text == "true label"
    assert fig.layout.yaxis.autorange == "reversed"


def test_picked_points_reads_a_selection_event_or_nothing():
    assert picked_points({"selection": {"points": [{"x": 1, "y": 2}]}}) == [{"x": 1, "y": 2}]
    assert picked_points(None) == [] and picked_points({}) == [] and picked_points({"selection": {}}) == []
