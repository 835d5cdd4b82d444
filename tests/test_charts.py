"""core.charts: the Train page's figures and end-of-run figures, and the Predict page's figures."""

from types import SimpleNamespace

import numpy as np
import pandas as pd

from core.charts import (RunFrames, boundary_figure, confusion_figure, end_metrics, picked_points,
                         probability_figure, train_figures)
from core.status import RunStatus


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
