"""Comparing runs: the runs table, overlaid curves, seed bands, config diffs, exports. The table's filter
is `core.runfilter`.

    frame = runs_frame(store)                                   # one row per run, query-friendly columns
    curves = curves_frame(store, run_ids, "val_loss", x_axis="epoch", smoothing=0.6)
    bands = band_frame(curves, seed_groups(runs), spread="std")  # mean and spread over seeds
    fig = compare_figure(curves, "val_loss", names, bands=bands, log_y=True)
    fig, note = comparison_figure(store, run_ids, "val_loss", names, x_axis="epoch", spread="std")  # in one call
    config_diff({"a": run_a.config, "b": run_b.config})           # only the keys whose values differ
    delete_problem(run, confirmed=True)                         # why a run may not be deleted now, or None
    artifact_zip(store, record), metrics_csv(store, run_id), config_json(run)   # bytes for downloads

Plain data in; DataFrames, plotly figures or bytes out. The Runs page only draws what this returns.
Smoothing is the debiased exponential moving average of TensorBoard and W&B.
"""

from __future__ import annotations

import base64
import io
import json
import math
import zipfile
from datetime import datetime
from typing import Iterable, Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from core.tracker import ArtifactRecord, RunRecord, Store

RUN_COLUMNS = ("name", "run_id", "project", "status", "dataset", "model", "optimizer", "lr", "batch_size",
               "epochs", "hidden", "width", "seed", "best_val_acc", "best_val_loss", "duration_s", "tags",
               "source", "created")
INT_COLUMNS = ("batch_size", "epochs", "width", "seed")
X_AXES = ("step", "epoch", "wall time")           # wall time: seconds since the run was created
SPREADS = ("min-max", "std")                      # std: population standard deviation (ddof=0)
SPREAD_CHOICES = {"each run": None, "mean, min-max over seeds": "min-max", "mean ± std over seeds": "std"}
GROUPING_IGNORES = ("seed",)
PREFERRED_METRICS = ("val_loss", "val_acc", "train_loss", "train_acc")
IMAGE_TYPES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"))
COLORS = qualitative.Plotly


class CompareError(ValueError):
    """A smoothing weight, axis, spread or label chosen on the Runs page is not usable; one-line message."""


# -- the runs table --------------------------------------------------------------------------------

def runs_frame(store: Store, project: str | None = None) -> pd.DataFrame:
    """One row per run (newest first) with the columns of RUN_COLUMNS; numbers stay numbers."""
    frame = pd.DataFrame([run_row(run) for run in store.list_runs(project)], columns=list(RUN_COLUMNS))
    for column in ("lr", "best_val_acc", "best_val_loss", "duration_s"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in INT_COLUMNS:
        frame[column] = _integers(frame[column])
    return frame


def run_row(run: RunRecord) -> dict:
    config, summary = run.config, run.summary
    end = run.ended_at or run.heartbeat_at
    hidden, width = architecture(config)
    return {"run_id": run.run_id, "name": run.name, "project": run.project, "status": run.status.value,
            "dataset": _label(config.get("dataset")), "model": _label(config.get("model")),
            "optimizer": _label(config.get("optimizer")),
            "lr": config.get("lr"), "batch_size": config.get("batch_size"), "epochs": config.get("epochs"),
            "hidden": _label(hidden), "width": width, "seed": config.get("seed"),
            "best_val_acc": summary.get("best_val_acc"), "best_val_loss": summary.get("best_val_loss"),
            "duration_s": None if end is None else max(0.0, end - run.created_at), "tags": ", ".join(run.tags),
            "source": run.source, "created": datetime.fromtimestamp(run.created_at)}


def architecture(config: dict) -> tuple[str | None, int | None]:
    """(hidden sizes as '32,16', cnn width), each only where the model uses it."""
    hidden, width = config.get("hidden"), config.get("width")
    if isinstance(hidden, (list, tuple)):
        hidden = ",".join(str(size) for size in hidden)
    model = config.get("model")
    return (None if model in ("cnn", "logreg") else hidden), (None if model in ("mlp", "logreg") else width)


def _label(value) -> str | None:
    """Text columns hold text: a list or dict from a script's free-form config becomes its JSON."""
    return value if value is None or isinstance(value, str) else json.dumps(value, default=str)


def _integers(column: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(column, errors="coerce")
    whole = numbers.dropna()
    return numbers.astype("Int64") if (whole == whole.round()).all() else numbers


def sort_frame(frame: pd.DataFrame, column: str, descending: bool = False) -> pd.DataFrame:
    """Rows sorted by `column`, blanks last; ties keep their order."""
    if column not in frame:
        raise CompareError(f"no column {column!r}; choose one of: {', '.join(frame.columns)}")
    return frame.sort_values(column, ascending=not descending, na_position="last", kind="stable")


def run_labels(frame: pd.DataFrame) -> dict[str, str]:
    """run_id -> 'name (run_id)', for pickers."""
    return {row.run_id: f"{row.name} ({row.run_id})" for row in frame.itertuples()}


# -- curves, smoothing, seed groups ----------------------------------------------------------------

def metric_keys(store: Store, run_ids: Iterable[str]) -> list[str]:
    """Every metric key logged by these runs: losses and accuracies first, then the rest by name."""
    found = {row["key"] for run_id in run_ids for row in store.metric_rows(run_id)}
    return [k for k in PREFERRED_METRICS if k in found] + sorted(found - set(PREFERRED_METRICS))


def smooth(values: Sequence[float], weight: float) -> list[float]:
    """Debiased exponential moving average (TensorBoard's and W&B's smoothing): s_n = m_n / (1 - w^n)
    with m_n = w m_(n-1) + (1 - w) x_n, m_0 = 0. Non-finite points pass through and do not count;
    weight 0 returns the values unchanged."""
    if not 0.0 <= weight < 1.0:
        raise CompareError(f"smoothing weight must be at least 0 and below 1, got {weight}")
    values = [float(v) for v in values]
    if len(set(values)) <= 1:
        return values
    smoothed, last, count = [], 0.0, 0
    for value in values:
        if not math.isfinite(value):
            smoothed.append(value)
            continue
        last = last * weight + (1.0 - weight) * value
        count += 1
        smoothed.append(last / (1.0 - weight ** count))
    return smoothed


def curves_frame(store: Store, run_ids: Iterable[str], key: str, x_axis: str = "step",
                 smoothing: float = 0.0) -> pd.DataFrame:
    """Long frame run_id, x, value, smoothed: metric `key` of each run against step, epoch or wall time."""
    if x_axis not in X_AXES:
        raise CompareError(f"unknown x-axis {x_axis!r}; choose one of: {', '.join(X_AXES)}")
    parts = []
    for run_id in run_ids:
        rows = store.metric_rows(run_id, keys=[key])
        start = store.get_run(run_id).created_at
        points = [(_x_of(row, x_axis, start), row["value"]) for row in rows]
        part = pd.DataFrame([p for p in points if p[0] is not None], columns=["x", "value"])
        part = part.astype("float64").sort_values("x", kind="stable")
        part.insert(0, "run_id", run_id)
        part["smoothed"] = smooth(part["value"].tolist(), smoothing)
        parts.append(part)
    columns = ["run_id", "x", "value", "smoothed"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def _x_of(row: dict, x_axis: str, start: float) -> float | None:
    if x_axis == "wall time":
        return row["wall_time"] - start
    return row[x_axis]


def seed_groups(runs: Iterable) -> list[list[str]]:
    """Run ids grouped by config minus the seed, groups and members in first-seen order.
    `runs` are RunRecords or anything with `run_id` and `config`."""
    groups: dict[str, list[str]] = {}
    for run in runs:
        rest = {k: v for k, v in run.config.items() if k not in GROUPING_IGNORES}
        groups.setdefault(json.dumps(rest, sort_keys=True, default=str), []).append(run.run_id)
    return list(groups.values())


def band_frame(curves: pd.DataFrame, groups: list[list[str]], spread: str = "min-max") -> pd.DataFrame:
    """Per group and x: mean of the smoothed values, lower and upper edge of the spread, run count.
    Spread 'min-max' spans the runs; 'std' is mean ± population standard deviation (ddof=0)."""
    if spread not in SPREADS:
        raise CompareError(f"unknown spread {spread!r}; choose one of: {', '.join(SPREADS)}")
    parts = []
    for index, ids in enumerate(groups):
        values = curves[curves["run_id"].isin(ids)].groupby("x")["smoothed"]
        stats = pd.DataFrame({"mean": values.mean(), "min": values.min(), "max": values.max(),
                              "std": values.std(ddof=0), "runs": values.count()}).reset_index()
        if spread == "min-max":
            stats["lower"], stats["upper"] = stats["min"], stats["max"]
        else:
            stats["lower"], stats["upper"] = stats["mean"] - stats["std"], stats["mean"] + stats["std"]
        stats.insert(0, "group", index)
        parts.append(stats[["group", "x", "mean", "lower", "upper", "runs"]])
    columns = ["group", "x", "mean", "lower", "upper", "runs"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def group_names(groups: list[list[str]], names: dict[str, str]) -> list[str]:
    """"first run's name (n seeds)" per group, for legends."""
    return [names.get(ids[0], ids[0]) + (f" ({len(ids)} seeds)" if len(ids) > 1 else "") for ids in groups]


def compare_figure(curves: pd.DataFrame, key: str, names: dict[str, str], *, x_axis: str = "step",
                   log_y: bool = False, bands: pd.DataFrame | None = None,
                   band_names: list[str] | None = None) -> go.Figure:
    """One line per run (raw values faint behind smoothed ones), or per seed group a mean line with
    its spread as a shaded band."""
    fig = go.Figure()
    if bands is not None:
        _draw_bands(fig, bands, band_names or [])
    else:
        _draw_runs(fig, curves, names)
    x_title = "seconds since the run started" if x_axis == "wall time" else x_axis
    fig.update_layout(title=key, xaxis_title=x_title, yaxis_title=key, height=420, margin={"t": 40, "b": 30},
                      yaxis_type="log" if log_y else "linear", hovermode="x unified")
    return fig


def comparison_figure(store: Store, run_ids: list[str], key: str, names: dict[str, str], *, x_axis: str = "step",
                      smoothing: float = 0.0, spread: str | None = None,
                      log_y: bool = False) -> tuple[go.Figure, str | None]:
    """The overlay of metric `key`: one line per run, or with a `spread` a band per seed group; and a
    note saying why no bands are drawn when the spread was asked for on wall time (runs do not line up)."""
    curves = curves_frame(store, run_ids, key, x_axis, smoothing)
    if spread and x_axis != "wall time":
        groups = seed_groups([store.get_run(run_id) for run_id in run_ids])
        return compare_figure(curves, key, names, x_axis=x_axis, log_y=log_y, bands=band_frame(curves, groups, spread),
                              band_names=group_names(groups, names)), None
    note = "Mean and spread line runs up by step or epoch: pick one of those for the x-axis." if spread else None
    return compare_figure(curves, key, names, x_axis=x_axis, log_y=log_y), note


def _draw_runs(fig: go.Figure, curves: pd.DataFrame, names: dict[str, str]) -> None:
    for index, (run_id, part) in enumerate(curves.groupby("run_id", sort=False)):
        color = COLORS[index % len(COLORS)]
        if not part["value"].equals(part["smoothed"]):
            fig.add_scatter(x=part["x"], y=part["value"], mode="lines", line={"color": color}, opacity=0.25,
                            showlegend=False, hoverinfo="skip")
        fig.add_scatter(x=part["x"], y=part["smoothed"], mode="lines+markers", marker={"size": 4},
                        line={"color": color}, name=names.get(run_id, run_id))


def _draw_bands(fig: go.Figure, bands: pd.DataFrame, band_names: list[str]) -> None:
    for group, part in bands.groupby("group", sort=True):
        color = COLORS[int(group) % len(COLORS)]
        name = band_names[group] if group < len(band_names) else f"group {group}"
        fig.add_scatter(x=part["x"], y=part["upper"], mode="lines", line={"width": 0, "color": color},
                        showlegend=False, hoverinfo="skip")
        fig.add_scatter(x=part["x"], y=part["lower"], mode="lines", line={"width": 0, "color": color},
                        fill="tonexty", fillcolor=_translucent(color), showlegend=False, hoverinfo="skip")
        fig.add_scatter(x=part["x"], y=part["mean"], mode="lines", line={"color": color}, name=name)


def _translucent(hex_color: str, alpha: float = 0.2) -> str:
    red, green, blue = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


# -- one run's details -----------------------------------------------------------------------------

def config_diff(configs: dict[str, dict]) -> pd.DataFrame:
    """Keys whose values differ between the configs (missing counts as a value), one column per label;
    cells are display text. Fewer than two configs: an empty frame."""
    missing = object()
    keys = sorted({k for config in configs.values() for k in config})
    rows = {}
    for key in keys:
        values = [config.get(key, missing) for config in configs.values()]
        seen = {"\0missing" if v is missing else json.dumps(v, sort_keys=True, default=str) for v in values}
        if len(configs) > 1 and len(seen) > 1:
            rows[key] = ["(not set)" if v is missing else _text(v) for v in values]
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(configs)).rename_axis("key")


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def events_frame(rows: list[dict]) -> pd.DataFrame:
    """A run's events (start, change, pause, end...) with their data as JSON text."""
    frame = pd.DataFrame([{"time": datetime.fromtimestamp(r["wall_time"]), "kind": r["kind"], "step": r["step"],
                           "epoch": r["epoch"], "data": json.dumps(r["data"], default=str)} for r in rows],
                         columns=["time", "kind", "step", "epoch", "data"])
    return frame.astype({"step": "Int64", "epoch": "Int64"})


def artifacts_frame(records: list[ArtifactRecord]) -> pd.DataFrame:
    return pd.DataFrame([{"artifact": r.label, "type": r.type, "version": r.version, "aliases": ", ".join(r.aliases),
                          "files": len(r.files), "size_bytes": sum(size for _, _, size in r.files),
                          "created": datetime.fromtimestamp(r.created_at), "producer_run": r.producer_run}
                         for r in records],
                        columns=["artifact", "type", "version", "aliases", "files", "size_bytes", "created",
                                 "producer_run"])


def artifact_zip(store: Store, record: ArtifactRecord) -> bytes:
    """The artifact's files as a zip built in memory; entries are its stored (already safe) relative paths."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, sha, _ in record.files:
            archive.writestr(path, store.read_blob(sha))
    return buffer.getvalue()


def image_data_url(data: bytes) -> str:
    """A `data:` URL for image bytes (PNG, JPEG or GIF, told apart by their magic bytes)."""
    mime = next((m for magic, m in IMAGE_TYPES if data.startswith(magic)), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def is_image_cell(cell) -> bool:
    return isinstance(cell, dict) and cell.get("_type") == "image" and isinstance(cell.get("sha256"), str)


def table_frame(store: Store, table: dict) -> tuple[pd.DataFrame, list[str]]:
    """A logged table as a DataFrame (image cells become data URLs, other structures JSON text) and the
    names of its image columns."""
    columns = _unique([str(c) for c in table["columns"]])
    rows = [[_table_cell(store, cell) for cell in row] for row in table["rows"]]
    frame = pd.DataFrame(rows, columns=columns)
    images = [c for i, c in enumerate(columns) if any(is_image_cell(row[i]) for row in table["rows"])]
    return frame, images


def _table_cell(store: Store, cell):
    if is_image_cell(cell):
        try:
            return image_data_url(store.read_blob(cell["sha256"]))
        except (OSError, ValueError):
            return None                                   # the blob is gone: an empty cell, not an error
    return json.dumps(cell, default=str) if isinstance(cell, (dict, list)) else cell


def _unique(columns: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique = []
    for column in columns:
        seen[column] = seen.get(column, 0) + 1
        unique.append(column if seen[column] == 1 else f"{column} ({seen[column]})")
    return unique


def image_steps(rows: list[dict], key: str) -> list[int]:
    """The steps at which images under `key` were logged (no step counts as 0), ascending."""
    return sorted({row["step"] or 0 for row in rows if row["key"] == key})


def images_at(rows: list[dict], key: str, step: int) -> list[dict]:
    return [row for row in rows if row["key"] == key and (row["step"] or 0) == step]


# -- labels and exports ----------------------------------------------------------------------------

def parse_tags(text: str) -> tuple[str, ...]:
    """'a, b,,a ' -> ('a', 'b'): comma-separated, trimmed, blanks and repeats dropped."""
    return tuple(dict.fromkeys(t.strip() for t in (text or "").split(",") if t.strip()))


def label_changes(run: RunRecord, name: str, tags_text: str, notes: str) -> dict:
    """The fields of `Store.update_run` that differ from the run's current labels."""
    name = (name or "").strip()
    if not name:
        raise CompareError("A run needs a name: type one, or keep the old one.")
    wanted = {"name": name, "tags": parse_tags(tags_text), "notes": notes or ""}
    current = {"name": run.name, "tags": tuple(run.tags), "notes": run.notes}
    return {k: v for k, v in wanted.items() if v != current[k]}


def delete_problem(run: RunRecord, confirmed: bool) -> str | None:
    """Why the Runs page may not delete `run` now (still going, or not confirmed), or None."""
    if not run.status.is_final:
        return f"Run {run.run_id} is still {run.status.value}: stop it on the Train page first."
    if not confirmed:
        return "Tick the box above to confirm, then press Delete run again."
    return None


def metrics_csv(store: Store, run_id: str) -> bytes:
    """Every logged metric row of a run as CSV: key, value, step, epoch, wall_time."""
    columns = ["key", "value", "step", "epoch", "wall_time"]
    frame = pd.DataFrame(store.metric_rows(run_id), columns=["id", "run_id", *columns])
    return frame[columns].astype({"step": "Int64", "epoch": "Int64"}).to_csv(index=False).encode()


def config_json(run: RunRecord) -> bytes:
    return json.dumps(run.config, indent=2, sort_keys=True).encode()


def file_name(*parts: str, suffix: str) -> str:
    """A download name from labels: letters, digits, '.', '_' and '-' only ('model-abc_v0.zip')."""
    stem = "_".join("".join(c if c.isascii() and (c.isalnum() or c in "._-") else "-" for c in p) for p in parts)
    return f"{stem.strip('.-_')[:120] or 'download'}{suffix}"


def escape_markdown(text: str) -> str:
    """User text made literal where Streamlit renders Markdown (image captions): every ASCII
    punctuation character backslash-escaped, line breaks as spaces."""
    return "".join(f"\\{c}" if c.isascii() and not c.isalnum() and c.isprintable() and c != " " else c
                   for c in " ".join(str(text).splitlines()))
