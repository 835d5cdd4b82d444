"""Sweep analysis: curves, hyperband brackets, parallel coordinates, importance, best run."""

import math

import numpy as np
import pandas as pd
import pytest

from core.hyperband import brackets, threshold
from core.sweeps import create_sweep, run_agent, sweep_table
from core.sweepspec import parse_early_terminate
from core.sweepviz import (SweepView, best_run, bracket_frame, correlations, curves_figure, curves_from_histories,
                           display_table, fanova_importance, importance_frame, parcoords_dimensions, parcoords_figure,
                           rf_importance, scatter_figure, scored, sweep_view, too_few_runs, top_k, varying_params)
from core.tracker import Store

SWEEP = {
    "method": "random",
    "metric": {"name": "val_loss", "goal": "minimize"},
    "early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 2},
    "parameters": {"dataset": {"value": "threshold"}, "batch_size": {"value": 6}, "epochs": {"value": 3},
                   "lr": {"distribution": "log_uniform_values", "min": 1e-3, "max": 0.3},
                   "optimizer": {"values": ["adam", "sgd"]}},
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A random sweep of 5 tiny runs on the threshold toy, run in this process: (store, sweep id)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAB_HOME", str(tmp_path_factory.mktemp("sweepviz")))
        patch.delenv("LAB_STORE", raising=False)
        store = Store()
        sweep_id = create_sweep(SWEEP, store=store)
        run_agent(sweep_id, count=5, store=store)
    return store, sweep_id


def hand_frame(n: int = 40, seed: int = 0) -> pd.DataFrame:
    """value depends on lr only (a bowl in log lr); dropout and optimizer are noise-free distractors."""
    rng = np.random.default_rng(seed)
    lr = 10 ** rng.uniform(-4, -1, n)
    return pd.DataFrame({"run_id": [f"r{i}" for i in range(n)], "state": "finished", "lr": lr,
                         "dropout": rng.uniform(0, 0.5, n), "optimizer": rng.choice(["adam", "sgd"], n),
                         "value": (np.log10(lr) + 2.5) ** 2, "reason": ""})


def test_curves_frame_has_one_row_per_logged_value(finished):
    store, sweep_id = finished
    view = sweep_view(store, sweep_id)
    histories = store.metric_histories(sweep_id, "val_loss")
    assert len(view.curves) == sum(map(len, histories.values())) and len(histories) == 5
    for run_id, values in histories.items():
        run = view.curves[view.curves["run_id"] == run_id]
        assert run["iteration"].tolist() == list(range(1, len(values) + 1))
        assert run["value"].tolist() == pytest.approx(values)
        assert set(run["state"]) == set(view.table.loc[view.table["run_id"] == run_id, "state"])
    assert set(view.table["state"]) <= {"finished", "pruned"}


def test_curves_replace_non_finite_values_by_nan():
    curves = curves_from_histories({"a": [1.0, float("inf")], "b": [float("nan")]}, {"a": "diverged"})
    assert curves["iteration"].tolist() == [1, 2, 1] and curves["state"].tolist() == ["diverged", "diverged", "running"]
    assert curves["value"].iloc[0] == 1.0 and curves["value"].iloc[1:].isna().all()


HISTORIES = {"a": [0.9, 0.5, 0.4, 0.3], "b": [0.8, 0.7], "c": [0.6, 0.65, 0.2, 0.1], "d": [1.0]}


def test_brackets_and_thresholds_by_hand():
    hb = parse_early_terminate({"type": "hyperband", "min_iter": 1, "eta": 2})
    frame = bracket_frame(HISTORIES, hb, "minimize")
    # bracket 1: [0.6, 0.8, 0.9, 1.0][int(4/2)]; bracket 2: [0.5, 0.65, 0.7][1]; bracket 4: [0.1, 0.3][1]
    assert frame["bracket"].tolist() == [1, 2, 4] == brackets(hb, limit=4)
    assert frame["threshold"].tolist() == [0.9, 0.65, 0.3]
    assert frame["runs"].tolist() == [4, 3, 2]
    assert [threshold(list(HISTORIES.values()), b, 2, "minimize") for b in (1, 2, 4)] == [0.9, 0.65, 0.3]
    maximize = bracket_frame(HISTORIES, hb, "maximize")
    # best-first: [1.0, 0.9, 0.8, 0.6][2], [0.7, 0.65, 0.5][1], [0.3, 0.1][1]
    assert maximize["threshold"].tolist() == [0.8, 0.65, 0.1]
    assert bracket_frame(HISTORIES, None, "minimize").empty and bracket_frame({}, hb, "minimize").empty


def test_curves_figure_draws_runs_brackets_and_thresholds(finished):
    store, sweep_id = finished
    view = sweep_view(store, sweep_id)
    hb = parse_early_terminate({"type": "hyperband", "min_iter": 1, "eta": 2})
    hand = SweepView(view.spec, view.table, curves_from_histories(HISTORIES, {"a": "pruned"}),
                     bracket_frame(HISTORIES, hb, "minimize"))
    fig = curves_figure(hand)
    runs = [t for t in fig.data if t.name != "hyperband threshold"]
    assert len(runs) == 4 and [t.name for t in runs if t.showlegend] == ["early-terminated", "running"]
    marks = [t for t in fig.data if t.name == "hyperband threshold"][0]
    assert list(marks.x) == [1, 2, 4] and list(marks.y) == [0.9, 0.65, 0.3]
    assert sorted(shape.x0 for shape in fig.layout.shapes) == [1, 2, 4]
    assert len(curves_figure(view).data) >= 5


def test_parallel_coordinates_encode_categories_as_labelled_ticks():
    frame = pd.DataFrame({"lr": [0.1, 0.01, 0.001], "optimizer": ["sgd", "adam", "sgd"], "value": [0.5, 0.2, 0.9]})
    dims = parcoords_dimensions(frame, ["lr", "optimizer"], "val_loss")
    assert [d["label"] for d in dims] == ["lr", "optimizer", "val_loss"]
    assert dims[0]["values"] == [0.1, 0.01, 0.001] and "ticktext" not in dims[0]
    assert dims[1]["ticktext"] == ["adam", "sgd"] and dims[1]["tickvals"] == [0, 1]
    assert dims[1]["values"] == [1, 0, 1] and dims[2]["values"] == [0.5, 0.2, 0.9]
    fig = parcoords_figure(frame, ["lr", "optimizer"], "val_loss", "minimize")
    assert list(fig.data[0].dimensions[1].ticktext) == ["adam", "sgd"] and fig.data[0].line.reversescale


def test_parallel_coordinates_of_a_real_sweep(finished):
    store, sweep_id = finished
    done = scored(sweep_table(store, sweep_id))
    params = varying_params(done)
    assert "lr" in params and "dataset" not in params and "batch_size" not in params
    dims = parcoords_dimensions(done, params, "val_loss")
    assert [d["label"] for d in dims] == params + ["val_loss"] and len(dims[-1]["values"]) == len(done)


def test_top_k_keeps_the_k_best_by_goal():
    frame = pd.DataFrame({"run_id": list("abcde"), "value": [0.3, 0.1, 0.5, None, 0.2]})
    assert top_k(frame, 2, "minimize")["run_id"].tolist() == ["b", "e"]
    assert top_k(frame, 2, "maximize")["run_id"].tolist() == ["c", "a"]
    assert top_k(frame, 10, "minimize")["run_id"].tolist() == ["b", "e", "a", "c"]


def test_random_forest_importance_ranks_the_parameter_that_decides_first():
    frame = hand_frame()
    params = ["dropout", "lr", "optimizer"]
    importance = rf_importance(frame, params)
    assert list(importance.index) == params and importance.sum() == pytest.approx(1.0)
    assert importance.idxmax() == "lr" and importance["lr"] > 0.8
    assert rf_importance(frame, params).equals(importance)              # fixed random_state


def test_pearson_correlation_signs():
    rng = np.random.default_rng(1)
    lr, dropout = rng.uniform(0, 1, 30), rng.uniform(0, 1, 30)
    optimizer = np.where(rng.uniform(0, 1, 30) > 0.5, "sgd", "adam")
    value = 2 * lr - 3 * dropout + (optimizer == "sgd") * 1.0
    frame = pd.DataFrame({"lr": lr, "dropout": dropout, "optimizer": optimizer, "seed": 1, "value": value})
    found = correlations(frame, ["lr", "dropout", "optimizer", "seed"])
    assert found["lr"] > 0.2 and found["dropout"] < -0.5 and found["optimizer"] > 0     # codes: adam 0, sgd 1
    assert found["lr"] == pytest.approx(np.corrcoef(lr, value)[0, 1]) and math.isnan(found["seed"])


def test_fanova_returns_one_value_per_parameter():
    frame = hand_frame(n=20)
    params = ["dropout", "lr", "optimizer", "const"]
    found = fanova_importance(frame.assign(const=3), params)
    assert list(found.index) == params and found["const"] == 0.0
    assert found.sum() == pytest.approx(1.0) and found.idxmax() == "lr"
    flat = fanova_importance(frame.assign(const=3, value=1.0), params)         # nothing to explain: no error
    assert (flat == 0.0).all()


def test_importance_frame_of_a_real_sweep(finished):
    store, sweep_id = finished
    done = scored(sweep_table(store, sweep_id))
    params = varying_params(done)
    table = importance_frame(done, params)
    assert sorted(table["param"]) == sorted(params)
    assert list(table.columns) == ["param", "importance", "correlation", "fanova"]
    assert table["importance"].sum() == pytest.approx(1.0) and table["importance"].is_monotonic_decreasing


def test_best_run_respects_goal_and_skips_failed_runs():
    table = pd.DataFrame({"run_id": list("abcd"), "state": ["finished", "pruned", "failed", "running"],
                          "value": [0.4, 0.2, 0.05, 0.01], "reason": ""})
    assert best_run(table, "minimize")["run_id"] == "b"
    assert best_run(table, "maximize")["run_id"] == "a"
    assert best_run(table.iloc[2:], "minimize") is None


def test_states_shown_in_wandb_words_and_scatter(finished):
    table = pd.DataFrame({"run_id": ["a", "b"], "state": ["pruned", "finished"], "lr": [0.1, 0.2],
                          "value": [1.0, 0.5], "reason": ""})
    assert display_table(table)["state"].tolist() == ["early-terminated", "finished"]
    assert table["state"].tolist() == ["pruned", "finished"]
    fig = scatter_figure(table, "lr", "val_loss")
    assert sorted(t.name for t in fig.data) == ["early-terminated", "finished"]


def test_too_few_runs_says_why_until_three_runs_vary():
    frame = hand_frame(3)
    assert too_few_runs(frame, "val_loss") is None
    assert too_few_runs(frame.iloc[:2], "val_loss") == (
        "Parallel coordinates and parameter importance need at least 3 finished runs with a value of val_loss "
        "and a parameter that varies; this sweep has 2.")
    same = frame.assign(lr=0.1, dropout=0.2, optimizer="adam")
    assert "this sweep has 3." in too_few_runs(same, "val_acc")
