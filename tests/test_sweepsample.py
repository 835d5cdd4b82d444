"""Sweep sampling: grids expand exactly, random draws follow the spec's laws (checked against
scipy.stats with 20,000 fixed-seed samples), and the Optuna mapping respects every bound."""

import math
import subprocess
import sys

import numpy as np
import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from core.sweepsample import (SAMPLERS, grid_points, grid_size, impute_value, iter_grid,
                              observe_value, optuna_distributions, param_value, q_uniform_grid,
                              quantize, reached_target, sample_random, suggest, values_from_params)
from core.sweepparams import DISTRIBUTIONS
from core.sweepspec import SweepConfigError, load_spec
from tests.conftest import REPO

N = 20_000


def spec_of(parameters, method="random", **top):
    return load_spec({"method": method, "parameters": parameters, **top})


def draws(raw, n=N, seed=0):
    p = spec_of({"x": raw}).parameters[0]
    rng = np.random.default_rng(seed)
    return [param_value(p, rng) for _ in range(n)]


# --------------------------------------------------------------------------- grid


def test_grid_int_uniform_is_inclusive_and_first_parameter_varies_slowest():
    spec = spec_of({"a": {"min": 1, "max": 3}, "b": {"values": ["x", "y"]}}, "grid")
    assert grid_points(spec) == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"},
                                 {"a": 2, "b": "y"}, {"a": 3, "b": "x"}, {"a": 3, "b": "y"}]


@pytest.mark.parametrize("low, high, q, expected", [
    (0.0, 1.0, 0.25, [0.0, 0.25, 0.5, 0.75]),          # max excluded
    (0.0, 0.3, 0.1, [0.0, 0.1, 0.2]),                   # (0.3 - 0) / 0.1 = 2.9999999999999996
    (0.1, 0.7, 0.2, [0.1, 0.3, 0.5]),                   # no 0.30000000000000004
    (0.0, 0.35, 0.1, [0.0, 0.1, 0.2, 0.3]),
    (0, 10, 3, [0, 3, 6, 9]),
    (1e-5, 5e-5, 1e-5, [1e-5, 2e-5, 3e-5, 4e-5]),
])
def test_q_uniform_grid_is_arange_without_max_and_without_float_drift(low, high, q, expected):
    values = q_uniform_grid(low, high, q)
    assert values == expected
    assert all(type(v) is type(e) for v, e in zip(values, expected))


def test_grid_q_uniform_gives_ints_when_q_and_min_are_ints():
    spec = spec_of({"n": {"distribution": "q_uniform", "min": 2, "max": 9, "q": 2}}, "grid")
    assert grid_points(spec) == [{"n": 2}, {"n": 4}, {"n": 6}, {"n": 8}]
    assert all(type(pt["n"]) is int for pt in grid_points(spec))


def test_grid_skips_duplicates_including_unhashable_values():
    spec = spec_of({"a": {"values": [1, 1, 2]}, "h": {"values": [[8, 8], [8, 8], [16]]},
                    "c": {"value": {"k": 1}}}, "grid")
    points = grid_points(spec)
    assert points == [{"a": 1, "h": [8, 8], "c": {"k": 1}}, {"a": 1, "h": [16], "c": {"k": 1}},
                      {"a": 2, "h": [8, 8], "c": {"k": 1}}, {"a": 2, "h": [16], "c": {"k": 1}}]
    assert grid_size(spec) == 4
    points[0]["h"].append(99)                      # points are copies: the spec is untouched
    assert grid_points(spec)[0]["h"] == [8, 8]


def test_grid_of_nested_parameters_gives_nested_dicts():
    spec = spec_of({"opt": {"parameters": {"name": {"values": ["adam", "sgd"]},
                                           "lr": {"value": 0.1}}},
                    "epochs": {"value": 3}}, "grid")
    assert grid_points(spec) == [{"opt": {"name": "adam", "lr": 0.1}, "epochs": 3},
                                 {"opt": {"name": "sgd", "lr": 0.1}, "epochs": 3}]


def test_huge_grids_are_refused_but_can_be_iterated():
    spec = spec_of({"a": {"min": 0, "max": 9999}, "b": {"min": 0, "max": 9999}}, "grid")
    with pytest.raises(SweepConfigError, match="100000000 points"):
        grid_points(spec)
    first = next(iter_grid(spec))
    assert first == {"a": 0, "b": 0}


def test_grid_of_a_non_grid_distribution_names_the_parameter():
    with pytest.raises(SweepConfigError, match="parameters.lr: distribution 'uniform' has no grid"):
        grid_points(spec_of({"lr": {"min": 0.0, "max": 1.0}}))


# --------------------------------------------------------------------------- random: laws


def ks_pvalue(samples, cdf):
    return stats.kstest(samples, cdf).pvalue


@pytest.mark.parametrize("raw, reference", [
    ({"min": 2.0, "max": 5.0}, stats.uniform(2, 3)),
    ({"distribution": "log_uniform", "min": -3, "max": 1}, stats.loguniform(math.exp(-3), math.exp(1))),
    ({"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1}, stats.loguniform(1e-4, 1e-1)),
    ({"distribution": "inv_log_uniform", "min": 1, "max": 4}, stats.loguniform(math.exp(-4), math.exp(-1))),
    ({"distribution": "inv_log_uniform_values", "min": 0.01, "max": 10}, stats.loguniform(0.01, 10)),
    ({"distribution": "normal", "mu": 2, "sigma": 3}, stats.norm(2, 3)),
    ({"distribution": "normal"}, stats.norm(0, 1)),
    ({"distribution": "log_normal", "mu": 0.5, "sigma": 0.7}, stats.lognorm(s=0.7, scale=math.exp(0.5))),
    ({"distribution": "beta", "a": 2, "b": 5}, stats.beta(2, 5)),
    ({"distribution": "beta"}, stats.beta(1, 1)),
])
def test_continuous_distributions_match_scipy(raw, reference):
    samples = draws(raw)
    assert all(type(s) is float for s in samples[:100])
    assert ks_pvalue(samples, reference.cdf) > 1e-3


def test_log_uniform_values_median_is_the_geometric_mean_of_its_bounds():
    samples = draws({"distribution": "log_uniform_values", "min": 1e-6, "max": 1e-2})
    assert np.median(samples) == pytest.approx(1e-4, rel=0.05)
    assert 1e-6 <= min(samples) and max(samples) <= 1e-2


def test_log_uniform_bounds_are_natural_logs():
    samples = draws({"distribution": "log_uniform", "min": -2, "max": 2})
    assert np.median(samples) == pytest.approx(1.0, rel=0.05)     # exp((-2 + 2) / 2)
    assert math.exp(-2) <= min(samples) and max(samples) <= math.exp(2)


def test_inv_log_uniform_values_has_log_of_its_inverse_uniform():
    samples = np.array(draws({"distribution": "inv_log_uniform_values", "min": 0.01, "max": 10}))
    inverse_logs = np.log(1 / samples)                              # U(log(1/10), log(1/0.01))
    low, high = math.log(1 / 10), math.log(1 / 0.01)
    assert ks_pvalue(inverse_logs, stats.uniform(low, high - low).cdf) > 1e-3


def test_inv_log_uniform_is_exp_of_minus_a_uniform():
    samples = np.array(draws({"distribution": "inv_log_uniform", "min": 1, "max": 4}))
    assert ks_pvalue(-np.log(samples), stats.uniform(1, 3).cdf) > 1e-3


def expected_quantized_frequencies(cdf, q, support):
    return {k: cdf((k + 0.5) * q) - cdf((k - 0.5) * q) for k in support}


def assert_frequencies(samples, q, cdf, tolerance=0.012):
    steps = np.round(np.asarray(samples, dtype=float) / q)
    assert np.allclose(steps * q, samples, atol=1e-12)              # every sample is a multiple of q
    support = range(int(steps.min()), int(steps.max()) + 1)
    expected = expected_quantized_frequencies(cdf, q, support)
    for k, p in expected.items():
        assert abs(np.mean(steps == k) - p) < tolerance, (k, p)


@pytest.mark.parametrize("raw, cdf, q", [
    ({"distribution": "q_uniform", "min": 0, "max": 10, "q": 2.5}, stats.uniform(0, 10).cdf, 2.5),
    ({"distribution": "q_normal", "mu": 1, "sigma": 2, "q": 0.5}, stats.norm(1, 2).cdf, 0.5),
    ({"distribution": "q_log_normal", "sigma": 0.5, "q": 0.25},
     stats.lognorm(s=0.5, scale=1).cdf, 0.25),
    ({"distribution": "q_beta", "a": 2, "b": 2, "q": 0.1}, stats.beta(2, 2).cdf, 0.1),
    ({"distribution": "q_log_uniform_values", "min": 32, "max": 256, "q": 8},
     stats.loguniform(32, 256).cdf, 8),
    ({"distribution": "q_log_uniform", "min": 0, "max": math.log(20), "q": 1},
     stats.loguniform(1, 20).cdf, 1),
])
def test_quantized_distributions_land_on_multiples_of_q_with_the_right_frequencies(raw, cdf, q):
    samples = draws(raw)
    assert_frequencies(samples, q, cdf)
    wanted = int if isinstance(q, int) else float
    assert all(type(s) is wanted for s in samples)


def test_quantized_floats_read_exactly():
    samples = draws({"distribution": "q_beta", "a": 2, "b": 2, "q": 0.1}, n=2000)
    assert set(samples) <= {round(k / 10, 1) for k in range(11)}
    assert quantize(0.3000001, 0.1) == 0.3 and quantize(13, 8) == 16 and quantize(2.5, 5) == 0


def test_int_uniform_includes_max_and_is_uniform():
    samples = draws({"min": 1, "max": 6})
    counts = np.bincount(samples, minlength=7)[1:]
    assert all(type(s) is int for s in samples) and min(samples) == 1 and max(samples) == 6
    assert stats.chisquare(counts).pvalue > 1e-3


def test_categorical_and_weighted_categorical_frequencies():
    uniform = draws({"values": ["a", "b", "c", "d"]})
    assert {v: uniform.count(v) / N for v in "abcd"} == pytest.approx(dict.fromkeys("abcd", 0.25), abs=0.012)
    weighted = draws({"values": ["a", "b", "c"], "probabilities": [0.7, 0.2, 0.1]})
    assert [weighted.count(v) / N for v in "abc"] == pytest.approx([0.7, 0.2, 0.1], abs=0.012)


def test_sample_random_gives_nested_python_values_reproducibly():
    spec = load_spec({"method": "random", "parameters": {
        "opt": {"parameters": {"lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
                               "name": {"values": ["adam", "sgd"]}}},
        "hidden": {"value": [32, 16]}, "epochs": {"min": 1, "max": 5}}})
    first = sample_random(spec, np.random.default_rng(7))
    assert first == sample_random(spec, np.random.default_rng(7))
    assert set(first) == {"opt", "hidden", "epochs"} and set(first["opt"]) == {"lr", "name"}
    assert type(first["opt"]["lr"]) is float and type(first["epochs"]) is int
    first["hidden"].append(8)                       # a copy: the spec's constant is untouched
    assert spec.param("hidden").value == [32, 16]


def test_every_distribution_has_a_sampler():
    assert set(SAMPLERS) == set(DISTRIBUTIONS)


BOUNDED = st.sampled_from(["uniform", "int_uniform", "log_uniform_values", "inv_log_uniform_values",
                           "q_log_uniform_values"])


@settings(max_examples=60, deadline=None)
@given(kind=BOUNDED, low=st.integers(1, 1000), width=st.integers(1, 1000), seed=st.integers(0, 2**32 - 1))
def test_random_samples_lie_within_their_bounds(kind, low, width, seed):
    raw = {"distribution": kind, "min": low, "max": low + width}
    if kind == "q_log_uniform_values":
        raw["q"] = 1
    p = spec_of({"x": raw}).parameters[0]
    rng = np.random.default_rng(seed)
    for _ in range(20):
        value = param_value(p, rng)
        assert low <= value <= low + width


@settings(max_examples=60, deadline=None)
@given(a=st.lists(st.integers(0, 3), min_size=1, max_size=5),
       b=st.lists(st.sampled_from(["x", "y", "z"]), min_size=1, max_size=4),
       n_max=st.integers(0, 3))
def test_grids_have_no_duplicates_and_cover_every_combination(a, b, n_max):
    spec = spec_of({"a": {"values": a}, "g": {"parameters": {"b": {"values": b}}},
                    "n": {"min": 0, "max": n_max + 1}}, "grid")
    keys = [(pt["a"], pt["g"]["b"], pt["n"]) for pt in grid_points(spec)]
    assert len(keys) == len(set(keys)) == grid_size(spec)
    assert set(keys) == {(x, y, n) for x in a for y in b for n in range(n_max + 2)}


# --------------------------------------------------------------------------- bayes (Optuna)

BAYES = {
    "method": "bayes", "metric": {"name": "val_loss"},
    "parameters": {
        "c": {"value": "fixed"},
        "opt": {"values": ["adam", "sgd"]},
        "hidden": {"values": [[32], [64, 32]]},
        "flag": {"values": [1, True, None]},
        "layers": {"min": 1, "max": 4},
        "u": {"min": -1.0, "max": 1.0},
        "qu": {"distribution": "q_uniform", "min": 0, "max": 10, "q": 2},
        "lu": {"distribution": "log_uniform", "min": -5, "max": -1},
        "luv": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
        "qluv": {"distribution": "q_log_uniform_values", "min": 32, "max": 256, "q": 8},
        "ilu": {"distribution": "inv_log_uniform", "min": 1, "max": 4},
        "iluv": {"distribution": "inv_log_uniform_values", "min": 0.01, "max": 1},
        "n": {"distribution": "normal", "mu": 5, "sigma": 0.1},
        "qn": {"distribution": "q_normal", "q": 0.5},
        "ln": {"distribution": "log_normal"},
        "b": {"distribution": "beta", "a": 2, "b": 3},
        "qb": {"distribution": "q_beta", "q": 0.1},
        "nest": {"parameters": {"wd": {"distribution": "log_uniform_values", "min": 1e-6, "max": 1e-2}}},
    },
}


def check_bayes_config(cfg):
    assert cfg["c"] == "fixed" and cfg["opt"] in ("adam", "sgd") and cfg["hidden"] in ([32], [64, 32])
    assert any(cfg["flag"] is v for v in (1, True, None))
    assert type(cfg["layers"]) is int and 1 <= cfg["layers"] <= 4
    assert -1 <= cfg["u"] <= 1
    assert type(cfg["qu"]) is int and cfg["qu"] % 2 == 0 and 0 <= cfg["qu"] <= 10
    assert math.exp(-5) <= cfg["lu"] <= math.exp(-1)
    assert 1e-4 <= cfg["luv"] <= 1e-1
    assert type(cfg["qluv"]) is int and cfg["qluv"] % 8 == 0 and 32 <= cfg["qluv"] <= 256
    assert math.exp(-4) <= cfg["ilu"] <= math.exp(-1)
    assert 0.01 <= cfg["iluv"] <= 1
    assert 4 < cfg["n"] < 6 and cfg["ln"] > 0 and 0 <= cfg["b"] <= 1
    assert type(cfg["qn"]) is float and (cfg["qn"] * 2).is_integer()
    assert cfg["qb"] in {round(k / 10, 1) for k in range(11)}
    assert 1e-6 <= cfg["nest"]["wd"] <= 1e-2


def test_suggest_with_optuna_tpe_respects_bounds_and_types():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = load_spec(BAYES)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=5))
    for _ in range(12):                             # past the startup trials, so TPE's model is used
        trial = study.ask()
        cfg = suggest(trial, spec)
        check_bayes_config(cfg)
        assert set(trial.params) == {p.name for p in spec.parameters} - {"c"}
        assert trial.params["luv"] == cfg["luv"] and trial.params["nest.wd"] == cfg["nest"]["wd"]
        assert values_from_params(spec, trial.params) == cfg
        study.tell(trial, (math.log(cfg["luv"]) + 5) ** 2)
    assert len(study.trials) == 12


def test_optuna_distributions_use_log_scales_and_rebuild_trials():
    spec = load_spec(BAYES)
    dists = optuna_distributions(spec)
    assert dists["luv"].log and dists["lu"].log and dists["ilu"].log and dists["iluv"].log
    assert (dists["lu"].low, dists["lu"].high) == pytest.approx((math.exp(-5), math.exp(-1)))
    assert (dists["ilu"].low, dists["ilu"].high) == pytest.approx((math.exp(-4), math.exp(-1)))
    assert dists["hidden"].choices == (0, 1) and dists["opt"].choices == ("adam", "sgd")
    assert dists["flag"].choices == (0, 1, 2)              # 1 == True in Python: suggested by index
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    trial = study.ask(fixed_distributions=dists)
    check_bayes_config(values_from_params(spec, trial.params))
    study.add_trial(optuna.trial.create_trial(params=trial.params, distributions=dists, value=1.0))
    assert study.best_trial.params == trial.params


def test_normal_and_beta_map_the_quantile_through_scipy():
    spec = load_spec({"method": "bayes", "metric": {"name": "m"}, "parameters": {
        "n": {"distribution": "normal", "mu": 1, "sigma": 2}, "b": {"distribution": "beta", "a": 2, "b": 5}}})
    cfg = values_from_params(spec, {"n": 0.975, "b": 0.5})
    assert cfg["n"] == pytest.approx(1 + 2 * stats.norm.ppf(0.975))
    assert cfg["b"] == pytest.approx(stats.beta(2, 5).median())


# --------------------------------------------------------------------------- metric values


def test_observe_value_is_the_best_finite_logged_value():
    assert observe_value([0.9, 0.7, float("nan"), 0.8], "minimize") == 0.7
    assert observe_value([0.5, 0.9, 0.8], "maximize") == 0.9
    assert observe_value([float("nan")], "minimize") is None and observe_value([], "maximize") is None


def test_impute_value_and_target():
    done = [0.2, 0.5, 0.9]
    assert impute_value([], done, "worst", "minimize") == 0.9
    assert impute_value([], done, "worst", "maximize") == 0.2
    assert impute_value([0.7], done, "best", "minimize") == 0.2
    assert impute_value([0.7, 0.6], done, "latest", "minimize") == 0.6
    assert impute_value([], done, "latest", "maximize") == 0.2      # nothing logged: worst
    assert impute_value([], [], "worst", "minimize") is None
    assert reached_target(0.05, "minimize", 0.1) and not reached_target(0.2, "minimize", 0.1)
    assert reached_target(0.95, "maximize", 0.9) and not reached_target(None, "maximize", 0.9)
    assert not reached_target(0.95, "maximize", None)


def test_grid_random_and_lint_do_not_import_optuna_or_scipy():
    code = ("import sys, numpy as np; from core.sweepspec import load_spec; from core.sweeplint import lint; "
            "from core.sweepsample import grid_points, sample_random; "
            "s = load_spec({'method': 'grid', 'parameters': {'a': {'values': [1, 2]}}}); "
            "lint(s); grid_points(s); sample_random(s, np.random.default_rng(0)); "
            "print('optuna' in sys.modules, 'scipy' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
