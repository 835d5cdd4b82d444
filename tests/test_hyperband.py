"""Hyperband early termination: brackets, thresholds and stop decisions on hand-made histories."""

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.hyperband import brackets, judged_value, should_stop, threshold
from core.sweepspec import HyperbandSpec, SweepConfigError, load_spec


def test_min_iter_brackets_grow_by_eta():
    assert brackets(HyperbandSpec(min_iter=3, eta=2))[:4] == [3, 6, 12, 24]
    assert brackets(HyperbandSpec(min_iter=3, eta=2), limit=100) == [3, 6, 12, 24, 48, 96]
    assert brackets(HyperbandSpec(min_iter=1), limit=81) == [1, 3, 9, 27, 81]      # eta defaults to 3
    assert brackets(HyperbandSpec(min_iter=2, eta=2.5), limit=40) == [2, 5, 12, 31]  # floors 12.5, 31.25
    assert brackets(HyperbandSpec(min_iter=3, eta=2), limit=2) == []
    assert max(brackets(HyperbandSpec(min_iter=1, eta=2))) <= 1_000_000


def test_max_iter_brackets_are_floored_ascending_and_drop_values_below_one():
    assert brackets(HyperbandSpec(max_iter=27, s=2, eta=3)) == [3, 9]
    assert brackets(HyperbandSpec(max_iter=27, s=3, eta=3)) == [1, 3, 9]
    assert brackets(HyperbandSpec(max_iter=27, s=5, eta=3)) == [1, 3, 9]
    assert brackets(HyperbandSpec(max_iter=10, s=2, eta=3)) == [1, 3]              # 10/9, 10/3 floored
    assert brackets(HyperbandSpec(max_iter=27, s=2, eta=3), limit=5) == [3]
    assert brackets(HyperbandSpec(max_iter=1000, s=10_000, eta=10)) == [1, 10, 100]   # no overflow
    both = HyperbandSpec(min_iter=1, max_iter=27, s=2, eta=3)                     # max_iter+s wins
    assert brackets(both) == [3, 9]


def test_brackets_from_a_loaded_config():
    spec = load_spec({"method": "random", "metric": {"name": "loss"}, "parameters": {"x": {"value": 1}},
                      "early_terminate": {"type": "hyperband", "min_iter": 3, "eta": 2}})
    assert brackets(spec.early_terminate)[:4] == [3, 6, 12, 24]


LOSSES = {"A": [10, 9, 8], "B": [10, 7, 6], "C": [12, 11], "D": [9], "E": [11, 10.5, 10]}


def test_threshold_minimize_by_hand():
    runs = list(LOSSES.values())
    # bracket 2: A 9, B 7, C 11, E 10.5 -> [7, 9, 10.5, 11]; eta 2: index int(4/2)=2 -> 10.5
    assert threshold(runs, 2, 2, "minimize") == 10.5
    # bracket 1: [9, 10, 10, 11, 12]; eta 3: index int(5/3)=1 -> 10
    assert threshold(runs, 1, 3, "minimize") == 10
    # bracket 3: A 8, B 6, E 10 -> [6, 8, 10]; eta 3: index 1 -> 8
    assert threshold(runs, 3, 3, "minimize") == 8
    assert threshold(runs, 4, 3, "minimize") is None


def test_threshold_maximize_sorts_best_first():
    runs = [[0.5, 0.6], [0.7, 0.8], [0.4, 0.45], [0.6, 0.65]]
    # bracket 2 best-first: [0.8, 0.65, 0.6, 0.45]; eta 3: index int(4/3)=1 -> 0.65
    assert threshold(runs, 2, 3, "maximize") == 0.65
    # eta 2: index 2 -> 0.6
    assert threshold(runs, 2, 2, "maximize") == 0.6


def test_threshold_counts_nan_as_worst():
    assert threshold([[1.0], [float("nan")], [2.0]], 1, 2, "minimize") == 2.0    # [1, 2, nan][1]
    assert threshold([[0.1], [float("nan")], [0.3]], 1, 2, "maximize") == 0.1    # [0.3, 0.1, nan][1]


HB_MIN = HyperbandSpec(min_iter=2, eta=2)                  # brackets 2, 4, 8, ...
OTHERS_MIN = [[1.0, 0.5], [1.0, 0.6], [1.0, 0.9]]


def test_non_strict_judges_the_best_value_so_far():
    # bracket 2 values with this run: [0.95, 0.5, 0.6, 0.9] -> sorted [.5, .6, .9, .95]; index 2 -> 0.9
    assert should_stop([0.7, 0.95], OTHERS_MIN, HB_MIN, "minimize") is None     # best 0.7 < 0.9
    stop = should_stop([0.92, 0.95], OTHERS_MIN, HB_MIN, "minimize", metric_name="val_loss")
    assert (stop.bracket, stop.value, stop.threshold, stop.strict, stop.num_runs) == (2, 0.92, 0.9, False, 4)
    assert stop.reason == ("hyperband: val_loss best so far 0.92 is worse than 0.9, the top 1/2 "
                           "threshold of 4 run(s) at bracket 2")


def test_strict_judges_the_bracket_value():
    strict = dataclasses.replace(HB_MIN, strict=True)
    stop = should_stop([0.7, 0.95], OTHERS_MIN, strict, "minimize")
    assert (stop.bracket, stop.value, stop.threshold, stop.strict) == (2, 0.95, 0.9, True)
    assert "value #2 0.95" in stop.reason
    assert should_stop([0.7, 0.6], OTHERS_MIN, strict, "minimize") is None     # [.5, .6, .6, .9][2]


def test_ties_continue_and_runs_before_the_first_bracket_are_never_judged():
    # this run's 0.8 joins [0.5, 0.6, 0.9]: sorted [.5, .6, .8, .9], index 2 -> 0.8: a tie
    assert should_stop([1.0, 0.8], OTHERS_MIN, HB_MIN, "minimize") is None
    assert should_stop([99.0], OTHERS_MIN, HB_MIN, "minimize") is None
    assert should_stop([], OTHERS_MIN, HB_MIN, "minimize") is None


def test_maximize_strict_and_not():
    hb = HyperbandSpec(min_iter=1, eta=3)                  # brackets 1, 3, 9
    others = [[0.5, 0.6, 0.7], [0.6, 0.7, 0.9], [0.2, 0.3, 0.4]]
    run = [0.8, 0.5, 0.45]
    # bracket 3 values best-first: [0.9, 0.7, 0.45, 0.4]; index int(4/3)=1 -> 0.7
    assert should_stop(run, others, hb, "maximize") is None                     # best 0.8 > 0.7
    stop = should_stop(run, others, dataclasses.replace(hb, strict=True), "maximize")
    assert (stop.bracket, stop.value, stop.threshold) == (3, 0.45, 0.7)
    lagging = [0.3, 0.35, 0.4]                             # best 0.4 vs [0.9, 0.7, 0.4, 0.4][1] = 0.7
    assert should_stop(lagging, others, hb, "maximize").threshold == 0.7


def test_judged_at_the_highest_bracket_reached_on_every_logged_value():
    hb = HyperbandSpec(min_iter=1, eta=2)                  # brackets 1, 2, 4
    others = [[5.0, 4.0, 3.0, 2.0], [5.0, 1.0, 1.0, 1.0]]
    # after 3 values the bracket is still 2: values [4.5, 4, 1] -> [1, 4, 4.5][int(3/2)=1] = 4
    stop = should_stop([5.0, 4.5, 4.2], others, hb, "minimize")
    assert (stop.bracket, stop.threshold, stop.value) == (2, 4.0, 4.2)
    assert should_stop([5.0, 4.5, 3.9], others, hb, "minimize") is None         # best so far recovered
    # at 4 values the bracket is 4: [2, 1, 3.0] -> [1, 2, 3][1] = 2; best 3.0 is worse -> stop
    stop = should_stop([5.0, 3.5, 3.2, 3.0], others, hb, "minimize")
    assert (stop.bracket, stop.threshold, stop.value) == (4, 2.0, 3.0)


def test_a_run_that_passed_a_bracket_can_be_stopped_there_later():
    hb = HyperbandSpec(min_iter=2, eta=2)
    run = [1.0, 0.6, 0.6]
    early = [[1.0, 0.9]]
    # when it reached bracket 2 only one other run had: [0.6, 0.9][int(2/2)=1] = 0.9 -> continue
    assert should_stop(run, early, hb, "minimize") is None
    # three better runs reach bracket 2 later: [0.6, 0.9, 0.3, 0.4, 0.5] -> sorted [.3,.4,.5,.6,.9][2]
    later = early + [[1.0, 0.3], [1.0, 0.4], [1.0, 0.5]]
    stop = should_stop(run, later, hb, "minimize")
    assert (stop.bracket, stop.threshold, stop.value, stop.num_runs) == (2, 0.5, 0.6, 5)


def test_nan_histories_are_stopped_and_reported():
    stop = should_stop([float("nan"), float("nan")], OTHERS_MIN, HB_MIN, "minimize")
    assert stop is not None and math.isnan(stop.value) and "nan" in stop.reason
    assert judged_value([float("nan"), 0.4, 0.7], 2, False, "minimize") == 0.4
    assert judged_value([0.2, 0.4, 0.7], 2, False, "maximize") == 0.7
    assert judged_value([0.2, 0.4, 0.7], 2, True, "maximize") == 0.4


def test_decisions_are_frozen_and_goal_is_checked():
    stop = should_stop([0.92, 0.95], OTHERS_MIN, HB_MIN, "minimize")
    with pytest.raises(dataclasses.FrozenInstanceError):
        stop.bracket = 4
    with pytest.raises(SweepConfigError, match="unknown goal 'min'; allowed: minimize, maximize"):
        should_stop([0.92, 0.95], OTHERS_MIN, HB_MIN, "min")


@settings(max_examples=80, deadline=None)
@given(others=st.lists(st.lists(st.floats(0, 10), min_size=1, max_size=12), max_size=6),
       length=st.integers(1, 12), strict=st.booleans(), eta=st.sampled_from([2, 3, 4]))
def test_a_run_at_least_as_good_as_every_other_is_never_stopped(others, length, strict, eta):
    floor = min([v for h in others for v in h], default=0.0)
    run = [floor] * length                                  # ties or beats every value logged
    hb = HyperbandSpec(min_iter=1, eta=eta, strict=strict)
    assert should_stop(run, others, hb, "minimize") is None
    assert should_stop([-v for v in run], [[-v for v in h] for h in others], hb, "maximize") is None
