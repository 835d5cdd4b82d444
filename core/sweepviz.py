"""What a sweep found: its runs' curves, hyperband brackets, parallel coordinates and parameter importance.

    view = sweep_view(store, sweep_id)           # spec, runs table, learning curves, hyperband brackets
    curves_figure(view)                          # metric per iteration, coloured by state, brackets drawn
    frame = top_k(scored(view.table), 10, goal)  # the 10 best finished runs
    parcoords_figure(frame, varying_params(frame), "val_loss", goal)
    importance_frame(frame, varying_params(frame))   # random forest, Pearson correlation, fANOVA
    best_run(view.table, goal)                   # the best finished run's row, or None
    too_few_runs(scored(view.table), "val_loss") # why importance cannot be scored yet, or None

The runs table is `core.sweeps.sweep_table`: one row per trial with `run_id, state`, the sampled
parameters (one column each), `value` (the run's best value of the sweep metric) and `reason`.
An "iteration" is one logged value of the sweep metric, as hyperband counts them (1-based).

Importance follows what W&B shows: a random forest fitted on the parameters -> value, its impurity
importances (one per parameter, summing to 1), and the Pearson correlation of each parameter with
the value. Categorical parameters are encoded as integer codes in sorted label order (so the sign of
their correlation only says which end of that order does better). Optuna's fANOVA is shown beside
them, on a study rebuilt from the observed values. Scores need `MIN_RUNS` finished runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from core.hyperband import brackets, reached, threshold
from core.status import RunStatus
from core.sweeps import hyperband_histories, sweep_spec, sweep_table
from core.sweepspec import SweepSpec, load_spec
from core.tracker import Store

MIN_RUNS = 3                                   # finished runs needed before importance means anything
NON_PARAM_COLUMNS = ("run_id", "state", "value", "reason")
SCORED_STATES = (RunStatus.FINISHED.value, RunStatus.PRUNED.value, RunStatus.STOPPED.value)
STATE_LABELS = {RunStatus.PRUNED.value: "early-terminated"}       # W&B's word for a hyperband stop
STATE_COLOURS = {"running": "#1f77b4", "finished": "#2ca02c", "early-terminated": "#ff7f0e",
                 "stopped": "#7f7f7f", "failed": "#d62728", "crashed": "#8c1a1a", "diverged": "#9467bd",
                 "queued": "#c7c7c7"}


def state_label(state: str) -> str:
    """The state as the page shows it: `pruned` reads "early-terminated", the rest as they are."""
    return STATE_LABELS.get(state, state)


# --------------------------------------------------------------------------- the sweep as frames


@dataclass(frozen=True)
class SweepView:
    spec: SweepSpec
    table: pd.DataFrame        # sweep_table: run_id, state, parameters..., value, reason
    curves: pd.DataFrame       # run_id, state, iteration, value: one row per logged metric value
    brackets: pd.DataFrame     # bracket, threshold, runs: hyperband's current thresholds


def sweep_view(store: Store, sweep_id: str) -> SweepView:
    """Everything the live part of the page draws, read from the store in one go."""
    spec = sweep_spec(store, sweep_id)
    table = sweep_table(store, sweep_id)
    if table.empty:                                # a sweep without trials yet
        table = pd.DataFrame(columns=list(NON_PARAM_COLUMNS))
    if spec.metric is None:
        return SweepView(spec, table, curves_from_histories({}, {}), bracket_frame({}, None, "minimize"))
    histories = store.metric_histories(sweep_id, spec.metric.name)
    states = dict(zip(table["run_id"], table["state"])) if len(table) else {}
    curves = curves_from_histories(histories, states)
    counted = hyperband_histories(store, sweep_id, spec.metric.name)   # the runs hyperband judges by
    return SweepView(spec, table, curves, bracket_frame(counted, spec.early_terminate, spec.metric.goal))


def curves_from_histories(histories: dict[str, list[float]], states: dict[str, str]) -> pd.DataFrame:
    """One row per logged value: run_id, state, iteration (1-based), value (NaN when not finite)."""
    rows = [{"run_id": run_id, "state": states.get(run_id, "running"), "iteration": i,
             "value": float(v) if v is not None and math.isfinite(v) else math.nan}
            for run_id, values in histories.items() for i, v in enumerate(values, start=1)]
    return pd.DataFrame(rows, columns=["run_id", "state", "iteration", "value"])


def bracket_frame(histories: dict[str, list[float]], hb, goal: str) -> pd.DataFrame:
    """Hyperband's brackets reached so far with each one's threshold over all runs (None: no hyperband)."""
    columns = ["bracket", "threshold", "runs"]
    pool = list(histories.values())
    if hb is None or not pool:
        return pd.DataFrame(columns=columns)
    rows = [{"bracket": b, "threshold": threshold(pool, b, hb.eta, goal), "runs": reached(pool, b)}
            for b in brackets(hb, limit=max(map(len, pool)))]
    return pd.DataFrame(rows, columns=columns)


def curves_figure(view: SweepView) -> go.Figure:
    """The sweep metric per iteration for each run, coloured by state; brackets as dashed lines and
    each bracket's threshold as a short horizontal mark."""
    fig, shown = go.Figure(), set()
    for run_id, run in view.curves.groupby("run_id", sort=False):
        label = state_label(run["state"].iloc[0])
        fig.add_scatter(x=run["iteration"], y=run["value"], mode="lines+markers", name=label, legendgroup=label,
                        showlegend=label not in shown, line={"color": STATE_COLOURS.get(label)},
                        hovertext=run_id, hoverinfo="text+x+y")
        shown.add(label)
    for row in view.brackets.itertuples():
        fig.add_vline(x=row.bracket, line_dash="dash", line_color="grey", annotation_text=f"bracket {row.bracket}")
    if len(view.brackets):
        fig.add_scatter(x=view.brackets["bracket"], y=view.brackets["threshold"], mode="markers",
                        name="hyperband threshold", marker={"symbol": "line-ew-open", "size": 28, "color": "black",
                                                            "line": {"width": 3}})
    metric = view.spec.metric.name if view.spec.metric else "metric"
    fig.update_layout(title=f"{metric} per iteration", xaxis_title="iteration (logged value)", yaxis_title=metric,
                      height=380, margin={"t": 40, "b": 30})
    return fig


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The runs table as shown: states in W&B's words."""
    shown = table.copy()
    if len(shown):
        shown["state"] = shown["state"].map(state_label)
    return shown


def has_running(table: pd.DataFrame) -> bool:
    return bool(len(table)) and bool(table["state"].isin([RunStatus.RUNNING.value, RunStatus.QUEUED.value]).any())


# --------------------------------------------------------------------------- choosing runs


def scored(table: pd.DataFrame) -> pd.DataFrame:
    """Runs that ended normally (finished, early-terminated, stopped) and have a value."""
    if not len(table):
        return table
    return table[table["state"].isin(SCORED_STATES) & table["value"].notna()]


def sort_best_first(frame: pd.DataFrame, goal: str) -> pd.DataFrame:
    kept = frame[frame["value"].notna()]
    return kept.sort_values("value", ascending=goal == "minimize", kind="stable")


def top_k(frame: pd.DataFrame, k: int, goal: str) -> pd.DataFrame:
    """The `k` runs with the best values by goal, best first."""
    return sort_best_first(frame, goal).head(k)


def best_run(table: pd.DataFrame, goal: str) -> dict | None:
    """The best scored run's row as a dict, or None when no run has finished with a value."""
    best = top_k(scored(table), 1, goal)
    return None if best.empty else best.iloc[0].to_dict()


def sweep_overview(store: Store, sweep_id: str) -> dict:
    """What `python -m core sweep list` prints of a sweep: ids, state, method, metric, its runs by
    state and the best scored run so far. Dead agents' runs are marked crashed first, as on the page."""
    table = sweep_table(store, sweep_id)
    sweep = store.get_sweep(sweep_id)                     # read after the table: it may have settled the state
    spec = load_spec(sweep["config"])
    best = best_run(table, spec.metric.goal) if spec.metric is not None and len(table) else None
    states = {str(k): int(v) for k, v in table["state"].value_counts().items()} if len(table) else {}
    return {"sweep_id": sweep_id, "name": sweep["name"], "project": sweep["project"], "state": sweep["state"],
            "method": spec.method, "metric": spec.metric.name if spec.metric else None,
            "goal": spec.metric.goal if spec.metric else None, "runs": len(table), "states": states,
            "best_run": best["run_id"] if best else None, "best_value": float(best["value"]) if best else None}


def too_few_runs(done: pd.DataFrame, metric: str) -> str | None:
    """Why parallel coordinates and importance cannot be shown for these scored runs, or None: they
    need MIN_RUNS runs and a parameter that varies among them."""
    if len(done) >= MIN_RUNS and varying_params(done):
        return None
    return (f"Parallel coordinates and parameter importance need at least {MIN_RUNS} finished runs "
            f"with a value of {metric} and a parameter that varies; this sweep has {len(done)}.")


def param_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in NON_PARAM_COLUMNS and not c.startswith("_")]


def varying_params(frame: pd.DataFrame) -> list[str]:
    """Parameters that take more than one value among these runs (constants explain nothing)."""
    return [c for c in param_columns(frame) if frame[c].astype(str).nunique() > 1]


# --------------------------------------------------------------------------- encoding


def is_categorical(column: pd.Series) -> bool:
    return pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column)


def categories(column: pd.Series) -> list[str]:
    return sorted(column.astype(str).unique())


def encode_column(column: pd.Series) -> pd.Series:
    """Numbers as floats; categories as integer codes in sorted label order."""
    if not is_categorical(column):
        return column.astype(float)
    codes = {label: i for i, label in enumerate(categories(column))}
    return column.astype(str).map(codes).astype(float)


def encode_params(frame: pd.DataFrame, params: list[str]) -> pd.DataFrame:
    return pd.DataFrame({p: encode_column(frame[p]) for p in params}, index=frame.index)


# --------------------------------------------------------------------------- parallel coordinates


def parcoords_dimensions(frame: pd.DataFrame, params: list[str], metric: str) -> list[dict]:
    """One plotly dimension per parameter (categories as integer ticks with their labels), then the value."""
    dims = []
    for p in params:
        values = encode_column(frame[p])
        dim = {"label": p, "values": values.tolist()}
        if is_categorical(frame[p]):
            labels = categories(frame[p])
            dim.update(tickvals=list(range(len(labels))), ticktext=labels, range=[-0.5, len(labels) - 0.5])
        dims.append(dim)
    dims.append({"label": metric, "values": frame["value"].astype(float).tolist()})
    return dims


def parcoords_figure(frame: pd.DataFrame, params: list[str], metric: str, goal: str) -> go.Figure:
    """Parallel coordinates of the parameters and the value; lines coloured by value, best brightest."""
    line = {"color": frame["value"].astype(float).tolist(), "colorscale": "Viridis", "showscale": True,
            "reversescale": goal == "minimize"}
    fig = go.Figure(go.Parcoords(line=line, dimensions=parcoords_dimensions(frame, params, metric)))
    fig.update_layout(height=420, margin={"t": 60, "b": 30, "l": 60, "r": 60})
    return fig


# --------------------------------------------------------------------------- importance


def rf_importance(frame: pd.DataFrame, params: list[str], seed: int = 0) -> pd.Series:
    """Random-forest (impurity) importance of each parameter for the value; sums to 1 unless nothing varies."""
    from sklearn.ensemble import RandomForestRegressor

    x = encode_params(frame, params)
    x = x.fillna(x.median()).fillna(0.0)
    forest = RandomForestRegressor(n_estimators=100, random_state=seed)
    forest.fit(x.to_numpy(), frame["value"].astype(float).to_numpy())
    return pd.Series(forest.feature_importances_, index=params, name="importance")


def correlations(frame: pd.DataFrame, params: list[str]) -> pd.Series:
    """Pearson correlation of each (encoded) parameter with the value; NaN where either is constant."""
    x, value = encode_params(frame, params), frame["value"].astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        found = {p: x[p].corr(value) if x[p].nunique() > 1 else math.nan for p in params}
    return pd.Series(found, name="correlation", dtype=float)


def observed_distribution(column: pd.Series):
    """An Optuna distribution spanning the observed values: ints, floats, or categories (as text)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if is_categorical(column):
        return CategoricalDistribution(categories(column))
    if pd.api.types.is_integer_dtype(column):
        return IntDistribution(int(column.min()), int(column.max()))
    return FloatDistribution(float(column.min()), float(column.max()))


def trial_params(row: pd.Series, params: list[str], dists: dict) -> dict:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    out = {}
    for p in params:
        value = row[p]
        if isinstance(dists[p], CategoricalDistribution):
            out[p] = str(value)
        else:
            out[p] = int(value) if isinstance(dists[p], IntDistribution) else float(value)
    return out


def fanova_importance(frame: pd.DataFrame, params: list[str], seed: int = 0) -> pd.Series:
    """Optuna's fANOVA importance per parameter, on a study rebuilt from the runs' observed values."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    used = [p for p in params if frame[p].notna().all() and frame[p].astype(str).nunique() > 1]
    found: dict[str, float] = {}
    if used and frame["value"].nunique() > 1:          # fANOVA has nothing to split when all values are equal
        dists = {p: observed_distribution(frame[p]) for p in used}
        study = optuna.create_study()
        for _, row in frame.iterrows():
            study.add_trial(optuna.trial.create_trial(params=trial_params(row, used, dists), distributions=dists,
                                                      value=float(row["value"])))
        found = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=seed), params=used)
    return pd.Series({p: found.get(p, 0.0) for p in params}, name="fanova", dtype=float)


def importance_frame(frame: pd.DataFrame, params: list[str], seed: int = 0) -> pd.DataFrame:
    """param, importance (random forest), correlation (Pearson), fanova; most important first."""
    frame = frame[frame["value"].notna()]
    table = pd.concat([rf_importance(frame, params, seed), correlations(frame, params),
                       fanova_importance(frame, params, seed)], axis=1)
    return table.rename_axis("param").reset_index().sort_values("importance", ascending=False, kind="stable")


# --------------------------------------------------------------------------- metric vs parameter


def scatter_figure(table: pd.DataFrame, param: str, metric: str) -> go.Figure:
    """The value of each run against one parameter, coloured by state."""
    frame = display_table(table[table["value"].notna()])
    fig = px.scatter(frame, x=param, y="value", color="state", hover_data=["run_id"],
                     color_discrete_map=STATE_COLOURS, labels={"value": metric})
    fig.update_layout(title=f"{metric} against {param}", height=360, margin={"t": 40, "b": 30})
    return fig
