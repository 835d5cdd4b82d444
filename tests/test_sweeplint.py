"""Sweep lint: one-line warnings for valid configs that are probably mistakes."""

from core.sweeplint import lint
from core.sweepspec import load_spec


def _lint(parameters, method="random", **top):
    return lint(load_spec({"method": method, "parameters": parameters, **top}))


def test_lint_flags_log_uniform_with_bounds_that_look_like_values():
    notes = _lint({"lr": {"distribution": "log_uniform", "min": 1e-6, "max": 0.1}})
    assert len(notes) == 1 and "parameters.lr" in notes[0] and "log_uniform_values" in notes[0]
    assert "between 1 and 1.105" in notes[0]
    assert _lint({"lr": {"distribution": "log_uniform", "min": -9.2, "max": -2.3}}) == []
    assert _lint({"bs": {"distribution": "q_log_uniform", "min": 32, "max": 256}})   # exp(256)


def test_lint_flags_a_grid_q_uniform_that_leaves_out_max():
    notes = _lint({"x": {"distribution": "q_uniform", "min": 0.0, "max": 0.3, "q": 0.1}}, "grid")
    assert len(notes) == 1 and "leaves out max=0.3" in notes[0]
    assert _lint({"x": {"distribution": "q_uniform", "min": 0.0, "max": 0.35, "q": 0.1}}, "grid") == []


def test_lint_flags_int_uniform_float_bounds_grid_over_run_cap_and_goal_mismatch():
    notes = _lint({"n": {"distribution": "int_uniform", "min": 1.0, "max": 4.0}})
    assert notes == ["parameters.n: int_uniform bounds 1.0, 4.0 are floats; they are used as the "
                     "integers 1 and 4"]
    grid = _lint({"a": {"values": [1, 2, 3]}, "b": {"min": 1, "max": 4}}, "grid", run_cap=5)
    assert grid == ["run_cap: the grid has 12 points but run_cap is 5; only the first 5 will run"]
    goal = _lint({"a": {"value": 1}}, metric={"name": "val_loss", "goal": "maximize"})
    assert len(goal) == 1 and goal[0].startswith("metric: goal maximize")


def test_lint_flags_repeats_rounding_to_zero_and_off_grid_q_uniform():
    assert "values repeat" in _lint({"a": {"values": [1, 1, 2]}})[0]
    assert "round down to 0" in _lint({"b": {"distribution": "q_log_uniform_values", "min": 1,
                                             "max": 64, "q": 8}})[0]
    assert "outside [0.05, 1]" in _lint({"c": {"distribution": "q_uniform", "min": 0.05, "max": 1,
                                               "q": 0.1}})[0]
    assert "0 or 1" in _lint({"d": {"distribution": "q_beta"}})[0]
    assert "gives only 0 and 1" in _lint({"e": {"min": 0, "max": 1}})[0]
    assert _lint({"e": {"min": 0.0, "max": 1.0}}) == []
