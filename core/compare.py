"""Comparing runs: the runs table and its filter, overlaid curves, seed bands, config diffs, exports.

    frame = runs_frame(store)                                   # one row per run, query-friendly columns
    shown = filter_frame(frame, 'dataset == "moons" and best_val_acc > 0.8')   # CompareError if bad
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

import ast
import base64
import io
import json
import math
import operator
import re
import tokenize
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
QUERY_EXAMPLE = 'dataset == "moons" and best_val_acc > 0.8'
IMAGE_TYPES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"))
COLORS = qualitative.Plotly


class CompareError(ValueError):
    """A filter, smoothing weight or label typed on the Runs page is not usable; the message is one line."""


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


def filter_frame(frame: pd.DataFrame, query: str) -> pd.DataFrame:
    """The rows matching a filter in the safe subset of `df.query` syntax that `parse_filter` accepts; an
    empty query keeps every row. Nothing typed is ever executed: the text is parsed, checked node by node
    and evaluated here over the frame's columns."""
    text = (query or "").strip()
    if not text:
        return frame
    if len(text) > MAX_QUERY_CHARS:
        raise CompareError(f"the filter is {len(text)} characters long; at most {MAX_QUERY_CHARS} are allowed")
    try:
        tree, names = parse_filter(text, frame.columns)
        mask = _Evaluator(frame, names).value(tree.body)
    except CompareError as exc:
        raise CompareError(f"Cannot filter by {_short(text)}: {exc}. Quote text and compare columns, e.g. "
                           f"{QUERY_EXAMPLE}") from None
    except (TypeError, ValueError, ArithmeticError, AttributeError) as exc:  # e.g. text compared with a number
        raise CompareError(f"Cannot filter by {_short(text)}: {_first_line(exc)}. Quote text and compare "
                           f"columns, e.g. {QUERY_EXAMPLE}") from None
    if not isinstance(mask, pd.Series) or not (pd.api.types.is_bool_dtype(mask) or mask.isna().all()):
        raise CompareError(f"{_short(text)} is not a condition: write one that is true or false per row, "
                           f"e.g. {QUERY_EXAMPLE}")
    return frame[mask.astype("boolean").fillna(False).astype(bool)]


MAX_QUERY_CHARS = 1000
FILTER_HELP = ("Comparisons of columns with values (`lr < 0.01`, `dataset == \"moons\"`, `1 < seed <= 3`), joined "
               "by and / or / not (or & | ~); `dataset in [\"moons\", \"xor\"]`, `\"baseline\" in tags`; "
               "`width.isna()`, `seed.between(1, 3)`, `name.str.contains(\"mlp\")`; a column with spaces in "
               "\\`backticks\\`. The filter is parsed, never executed.")
FILTER_METHODS = {"isna": 0, "notna": 0, "isnull": 0, "notnull": 0, "between": 2, "isin": 1}
FILTER_STR_METHODS = {"contains": 1, "startswith": 1, "endswith": 1, "lower": 0, "upper": 0, "strip": 0,
                      "len": 0}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge}
_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
               ast.Mod: operator.mod, ast.Pow: operator.pow, ast.FloorDiv: operator.floordiv}
_BACKTICKED = re.compile(r"`([^`]*)`")


def parse_filter(text: str, columns: Iterable[str]) -> tuple[ast.Expression, dict[str, str]]:
    """The checked syntax tree of a filter and its identifier -> column map. Allowed: column names (a
    name with spaces in `backticks`), numbers, quoted text, True/False/None, lists of those; comparisons
    (chained too), `in` / `not in`, and/or/not (or & | ~), + - * / % ** //, and the methods
    col.isna() notna() between(a, b) isin([..]) and col.str.contains/startswith/endswith/lower/upper/strip/len.
    Anything else (attributes, calls, subscripts, lambdas, @variables, dunder names) raises CompareError."""
    columns = [str(column) for column in columns]
    names: dict[str, str] = {}

    def quoted(match: re.Match) -> str:
        column = match.group(1)
        if column not in columns:
            raise CompareError(f"no column {column!r}")
        identifier = f"_column_{len(names)}"
        names[identifier] = column
        return identifier

    source = _BACKTICKED.sub(quoted, text)
    try:
        tree = ast.parse(_words_for_bit_operators(source), mode="eval")
    except SyntaxError as exc:
        raise CompareError(f"invalid syntax ({exc.msg})") from None
    for column in columns:
        if column.isidentifier():
            names.setdefault(column, column)
    for node in ast.walk(tree):
        _check_node(node, names)
    return tree, names


def _words_for_bit_operators(source: str) -> str:
    """`&` and `|` as `and` and `or`, as pandas' query reads them (so `a > 1 & b < 2` needs no brackets)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, IndentationError):
        return source                                          # ast.parse reports the syntax error
    line_starts = [0]
    for line in source.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    words = {"&": " and ", "|": " or "}
    for token in reversed(tokens):
        if token.type == tokenize.OP and token.string in words:
            at = line_starts[token.start[0] - 1] + token.start[1]
            source = source[:at] + words[token.string] + source[at + 1:]
    return source


def _check_node(node: ast.AST, names: dict[str, str]) -> None:
    allowed = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd, ast.Invert,
               ast.Compare, ast.In, ast.NotIn, ast.BinOp, ast.BitAnd, ast.BitOr, ast.Constant, ast.List,
               ast.Tuple, ast.Load, ast.Name, ast.Call, ast.Attribute, *_COMPARE, *_ARITHMETIC)
    if not isinstance(node, allowed):
        raise CompareError(f"{type(node).__name__.lower()} expressions are not allowed in a filter")
    if isinstance(node, ast.Name) and node.id not in names and node.id not in ("True", "False", "None"):
        raise CompareError(f"name {node.id!r} is not defined (columns: {', '.join(sorted(set(names.values())))})")
    if isinstance(node, ast.Constant) and not isinstance(node.value, (str, int, float, bool, type(None))):
        raise CompareError("only numbers, quoted text, True, False and None are allowed as values")
    if isinstance(node, ast.Attribute) and not (
            node.attr == "str" and isinstance(node.value, ast.Name)
            or node.attr in FILTER_STR_METHODS and _is_str_accessor(node.value)
            or node.attr in FILTER_METHODS and isinstance(node.value, ast.Name)):
        raise CompareError(f"'.{node.attr}' is not available; use one of: "
                           f"{', '.join(sorted(FILTER_METHODS))}, str.{', str.'.join(sorted(FILTER_STR_METHODS))}")
    if isinstance(node, ast.Call):
        method = node.func.attr if isinstance(node.func, ast.Attribute) else None
        arity = FILTER_STR_METHODS.get(method) if isinstance(node.func, ast.Attribute) and _is_str_accessor(
            node.func.value) else FILTER_METHODS.get(method)
        if arity is None or node.keywords or len(node.args) != arity:
            raise CompareError("only column methods can be called: col.isna(), col.between(a, b), "
                               "col.isin([..]), col.str.contains('text') and the like")
        if any(not isinstance(arg, (ast.Constant, ast.List, ast.Tuple, ast.UnaryOp)) for arg in node.args):
            raise CompareError("method arguments must be values, e.g. name.str.contains('mlp')")


def _is_str_accessor(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "str" and isinstance(node.value, ast.Name)


class _Evaluator:
    """Evaluates a tree that parse_filter checked, over a frame's columns."""

    def __init__(self, frame: pd.DataFrame, names: dict[str, str]):
        self.frame, self.names = frame, names

    def value(self, node: ast.AST):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in ("True", "False", "None"):
                return {"True": True, "False": False, "None": None}[node.id]
            return self.frame[self.names[node.id]]
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.value(item) for item in node.elts]
        if isinstance(node, ast.BoolOp):
            values = [self._condition(self.value(item)) for item in node.values]
            combine = operator.and_ if isinstance(node.op, ast.And) else operator.or_
            result = values[0]
            for item in values[1:]:
                result = combine(result, item)
            return result
        if isinstance(node, ast.UnaryOp):
            operand = self.value(node.operand)
            if isinstance(node.op, (ast.Not, ast.Invert)):
                return ~self._condition(operand) if isinstance(operand, pd.Series) else not operand
            return -operand if isinstance(node.op, ast.USub) else +operand
        if isinstance(node, ast.BinOp):
            left, right = self.value(node.left), self.value(node.right)
            if isinstance(node.op, (ast.BitAnd, ast.BitOr)):
                combine = operator.and_ if isinstance(node.op, ast.BitAnd) else operator.or_
                return combine(self._condition(left), self._condition(right))
            return _ARITHMETIC[type(node.op)](left, right)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise CompareError(f"{type(node).__name__.lower()} expressions are not allowed in a filter")

    def _compare(self, node: ast.Compare):
        result, left = None, self.value(node.left)
        for op, right_node in zip(node.ops, node.comparators):
            right = self.value(right_node)
            if isinstance(op, (ast.In, ast.NotIn)):
                part = self._membership(left, right)
                part = ~part if isinstance(op, ast.NotIn) else part
            else:
                part = _COMPARE[type(op)](left, right)
            result = part if result is None else self._condition(result) & self._condition(part)
            left = right
        return result

    def _membership(self, left, right) -> pd.Series:
        if isinstance(left, pd.Series) and isinstance(right, list):
            return left.isin(right)
        if isinstance(left, pd.Series) and not isinstance(right, pd.Series):
            return left.isin([right])
        if isinstance(right, pd.Series) and isinstance(left, str):       # "tag" in tags: text inside a column
            return right.astype("string").str.contains(left, regex=False)
        raise CompareError("'in' needs a column and a list, e.g. dataset in ['moons', 'xor']")

    def _call(self, node: ast.Call):
        args = [self.value(arg) for arg in node.args]
        if _is_str_accessor(node.func.value):
            column = self.value(node.func.value.value).astype("string")
            if node.func.attr == "contains":
                return column.str.contains(str(args[0]), regex=False)
            return getattr(column.str, node.func.attr)(*args)
        column = self.value(node.func.value)
        if node.func.attr == "isin":
            return column.isin(args[0] if isinstance(args[0], list) else [args[0]])
        return getattr(column, node.func.attr)(*args)

    @staticmethod
    def _condition(value):
        if isinstance(value, pd.Series):
            if not (pd.api.types.is_bool_dtype(value) or value.isna().all()):
                raise CompareError("and/or/not join conditions, not values")
            return value.astype("boolean")
        return value


def _short(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__).strip("'\"").rstrip(".")


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
