"""Chart data and figures for the dashboard, built from the store (plotly; no streamlit here).

    frames = run_frames(store, run_id)      # epochs, steps, events as DataFrames; when training started
    fig = metric_figure(frames, "loss")     # train/val loss per epoch, with live-change markers
    text, fraction = progress_text(run, frames.epochs, started_at=frames.started_at)
    for key, fig in train_figures(frames).items(): ...   # the Train page's four charts, in reading order
    end_metrics(run, len(frames.epochs))    # [("Status", "finished"), ("Best val acc", "97.50%"), ...]
    confusion_figure(matrix)                # and the Predict page's figures, from core.analysis's frames
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.tracker import RunRecord, Store

EVENT_KINDS_DRAWN = ("change", "pause", "resume")


@dataclass(frozen=True)
class RunFrames:
    epochs: pd.DataFrame     # one row per epoch: epoch, train_loss, val_loss, train_acc, val_acc, lr, step...
    steps: pd.DataFrame      # step, loss
    events: pd.DataFrame     # kind, step, epoch, label
    started_at: float | None = None     # wall time training (last) started or resumed; None before


def run_frames(store: Store, run_id: str) -> RunFrames:
    rows = store.metric_rows(run_id)
    epoch_rows = [r for r in rows if r["epoch"] is not None and r["key"] not in ("step_loss", "epoch")]
    epochs = pd.DataFrame(columns=["epoch", "step"])
    if epoch_rows:
        frame = pd.DataFrame(epoch_rows)
        epochs = frame.pivot_table(index="epoch", columns="key", values="value", aggfunc="last").reset_index()
        epochs["step"] = frame.groupby("epoch")["step"].max().values
        epochs = epochs.rename_axis(columns=None)
    steps = pd.DataFrame([{"step": r["step"], "loss": r["value"]} for r in rows if r["key"] == "step_loss"],
                         columns=["step", "loss"])
    events = store.event_rows(run_id)
    starts = [r["wall_time"] for r in events if r["kind"] in ("start", "resume")]
    return RunFrames(epochs, steps, event_frame(events), starts[-1] if starts else None)


def event_frame(rows: list[dict]) -> pd.DataFrame:
    drawn = [{"kind": r["kind"], "step": r["step"], "epoch": r["epoch"], "label": event_label(r)}
             for r in rows if r["kind"] in EVENT_KINDS_DRAWN]
    return pd.DataFrame(drawn, columns=["kind", "step", "epoch", "label"])


def event_label(row: dict) -> str:
    if row["kind"] == "change":
        return f"{row['data']['field']} -> {row['data']['value']}"
    return row["kind"]


def metric_figure(frames: RunFrames, metric: str) -> go.Figure:
    """Train and validation `metric` ("loss" or "acc") per epoch; live changes as dotted lines."""
    fig = go.Figure()
    for split, dash in (("train", "solid"), ("val", "dot")):
        column = f"{split}_{metric}"
        if column in frames.epochs:
            fig.add_scatter(x=frames.epochs["epoch"], y=frames.epochs[column], mode="lines+markers",
                            name=column, line={"dash": dash})
    add_event_markers(fig, frames, x_of=lambda step, epoch: epoch_position(frames.epochs, step, epoch))
    title = "Loss" if metric == "loss" else "Accuracy"
    fig.update_layout(title=title, xaxis_title="epoch", height=320, margin={"t": 40, "b": 30})
    return fig


def step_figure(frames: RunFrames) -> go.Figure:
    fig = go.Figure()
    fig.add_scatter(x=frames.steps["step"], y=frames.steps["loss"], mode="lines", name="loss per step")
    add_event_markers(fig, frames, x_of=lambda step, epoch: step)
    fig.update_layout(title="Training loss per step", xaxis_title="step", height=320, margin={"t": 40, "b": 30})
    return fig


def lr_figure(frames: RunFrames) -> go.Figure:
    """The lr per epoch (log scale); live changes as dotted lines where they happened."""
    fig = go.Figure()
    if "lr" in frames.epochs:
        fig.add_scatter(x=frames.epochs["epoch"], y=frames.epochs["lr"], mode="lines+markers", name="lr")
    add_event_markers(fig, frames, x_of=lambda step, epoch: epoch_position(frames.epochs, step, epoch))
    fig.update_layout(title="Learning rate", xaxis_title="epoch", yaxis_type="log", height=320,
                      margin={"t": 40, "b": 30})
    return fig


def train_figures(frames: RunFrames) -> dict[str, go.Figure]:
    """The Train page's charts by widget key, in reading order (two per row): loss, accuracy,
    loss per step, learning rate."""
    return {"loss_chart": metric_figure(frames, "loss"), "acc_chart": metric_figure(frames, "acc"),
            "step_chart": step_figure(frames), "lr_chart": lr_figure(frames)}


def epoch_position(epochs: pd.DataFrame, step: int | None, epoch: int | None) -> float | None:
    """Where a step falls on an epoch axis: epoch e spans (e-1, e]; interpolated by step."""
    if step is None or epochs.empty or "step" not in epochs:
        return epoch
    ends = np.concatenate([[0], epochs["step"].to_numpy(dtype=float)])
    marks = np.concatenate([[0], epochs["epoch"].to_numpy(dtype=float)])
    return float(np.interp(step, ends, marks))


def add_event_markers(fig: go.Figure, frames: RunFrames, x_of) -> None:
    for row in frames.events.itertuples():
        x = x_of(row.step, row.epoch)
        if x is not None:
            fig.add_vline(x=x, line_dash="dash", line_color="grey", annotation_text=row.label,
                          annotation_position="top left")


def progress_text(run: RunRecord, epochs: pd.DataFrame, now: float | None = None,
                  started_at: float | None = None) -> tuple[str, float]:
    """('epoch 3/20, step 5/23, about 12 s left', fraction done) for a running run. The time left is
    the completed epochs' mean `seconds` times the epochs left; before the first epoch ends, the time
    since training started (`started_at`, see RunFrames) scaled by the part done. Time spent queued
    never counts."""
    num_epochs = int(run.config.get("epochs", 1))
    position = run.progress or {}
    done_epochs = len(epochs)
    steps_per_epoch = max(1, position.get("steps_per_epoch", 1))
    in_epoch = position.get("step_in_epoch", 0) if position.get("epoch", 0) > done_epochs else 0
    done = done_epochs + in_epoch / steps_per_epoch
    fraction = min(1.0, done / num_epochs)
    left_s = seconds_left(epochs, done, max(0.0, num_epochs - done), started_at, now)
    eta = f", about {left_s:.0f} s left" if left_s is not None else ""
    paused = " (paused)" if position.get("paused") else ""
    text = f"epoch {min(done_epochs + 1, num_epochs)}/{num_epochs}, step {in_epoch}/{steps_per_epoch}{eta}{paused}"
    return text, fraction


def seconds_left(epochs: pd.DataFrame, epochs_done: float, epochs_left: float, started_at: float | None,
                 now: float | None = None) -> float | None:
    """Estimated seconds until `epochs_left` more epochs are done (see progress_text); None when unknown."""
    if "seconds" in epochs and epochs["seconds"].notna().any():
        per_epoch = float(epochs["seconds"].mean())
    elif started_at is not None and epochs_done > 0:
        per_epoch = ((now or time.time()) - started_at) / epochs_done
    else:
        return None
    return per_epoch * epochs_left if math.isfinite(per_epoch) else None


def end_metrics(run: RunRecord, num_epochs: int) -> list[tuple[str, object]]:
    """(label, value) of the figures shown when a run has ended; "-" where the run has none."""
    best = run.summary.get("best_val_acc")
    return [("Status", run.status.value), ("Best val acc", "-" if best is None else f"{best:.2%}"),
            ("Best epoch", run.summary.get("best_epoch", "-")), ("Epochs", num_epochs)]


def probability_figure(curve: pd.DataFrame, class_name: str, raw: np.ndarray, labels: np.ndarray) -> go.Figure:
    """The threshold toy: P(`class_name`) over x (a `probability_curve` frame), and the training points
    at their label (0 or 1)."""
    fig = go.Figure()
    fig.add_scatter(x=curve["x"], y=curve[class_name], name=f"P({class_name})")
    fig.add_scatter(x=raw[:, 0], y=labels, mode="markers", name="training points")
    fig.update_layout(xaxis_title="x", yaxis_title="probability", height=350)
    return fig


def boundary_figure(xs, ys, grid, raw: np.ndarray, labels: np.ndarray, point: tuple[float, float]) -> go.Figure:
    """A 2-D set: the `decision_grid` as a heat map, the training points coloured by label, and the
    chosen point as a cross."""
    fig = go.Figure(go.Heatmap(x=xs, y=ys, z=grid, colorscale="RdBu", opacity=0.6, showscale=False))
    fig.add_scatter(x=raw[:, 0], y=raw[:, 1], mode="markers", marker={"color": labels, "size": 5},
                    name="training points")
    fig.add_scatter(x=[point[0]], y=[point[1]], mode="markers", marker={"size": 14, "symbol": "x"}, name="your point")
    fig.update_layout(height=420, title="Decision boundary: click a point or use the sliders")
    return fig


def confusion_figure(matrix: pd.DataFrame) -> go.Figure:
    """A confusion matrix (true labels as rows, predictions as columns) as an annotated heat map."""
    fig = go.Figure(go.Heatmap(z=matrix.values, x=list(matrix.columns), y=list(matrix.index), text=matrix.values,
                               texttemplate="%{text}", colorscale="Blues"))
    fig.update_layout(xaxis_title="prediction", yaxis_title="true label", height=420, yaxis_autorange="reversed")
    return fig


def picked_points(event) -> list:
    """The points clicked in a chart, from the selection event a page gets back (None or a mapping)."""
    return (event or {}).get("selection", {}).get("points", [])


def dataset_preview(config, count: int = 24) -> tuple[str, object]:
    """("images", [(uint8 array, label)]) for image sets, or ("points", DataFrame x, y, label) for the
    rest (y is 0 for the 1-D threshold toy); values are shown as the user would see them, unnormalised.
    In a hosted demo the demo's caps apply first (ConfigError), as they do to a run."""
    from core.datasets import load_dataset
    from core.demo import check_demo, demo_limits

    check_demo(config, demo_limits())
    data = load_dataset(config)
    info = data.info
    if info.kind == "image":
        mean = np.asarray(info.mean).reshape(-1, 1, 1)
        std = np.asarray(info.std).reshape(-1, 1, 1)
        samples = []
        for x, y in zip(data.train_x[:count].numpy(), data.train_y[:count].tolist()):
            pixels = np.clip((x * std + mean) * 255 + 0.5, 0, 255).astype(np.uint8)
            samples.append((pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0), info.class_names[y]))
        return "images", samples
    raw = data.train_x.numpy() * np.asarray(info.std) + np.asarray(info.mean)
    labels = [info.class_names[y] for y in data.train_y.tolist()]
    second = raw[:, 1] if raw.shape[1] > 1 else np.zeros(len(raw))
    return "points", pd.DataFrame({"x": raw[:, 0], "y": second, "label": labels})
