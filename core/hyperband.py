"""Hyperband early termination for sweeps, as W&B defines it: pure functions over metric histories.

    hb = spec.early_terminate                        # a HyperbandSpec
    brackets(hb)                                     # min_iter=3, eta=2 -> [3, 6, 12, 24, ...]
    decision = should_stop(history, other_histories, hb, "minimize", metric_name="val_loss")
    if decision: stop the run and record decision.reason

A history is the list of values a run has logged for the sweep metric, in order: one "iteration" is
one logged value, not a step or an epoch. Call `should_stop` after each value a running run logs;
`other_histories` are the histories of the sweep's other runs, running or finished (not this one):
runs that failed, crashed or diverged are left out (`core.sweeps.hyperband_histories`).

Interpretation (documented choices):
- Brackets. With `min_iter`: floor(min_iter * eta^k) for k = 0, 1, ... while <= `limit` (at most
  MAX_BRACKETS of them; `s` is ignored). With `max_iter` and `s`: floor(max_iter / eta^k) for
  k = s..1, ascending, values below 1 dropped. When both forms are given, max_iter+s wins, as in W&B.
- Threshold at bracket b: every run with at least b values, this one included, contributes its b-th
  value (index b-1); sorted best-first (sign flipped for maximize) the threshold is the value at
  index int(n/eta), so about the top 1/eta continue. (W&B's engine reads index b, one later; we
  follow the spec's b-th value.) A NaN or infinite value counts as the worst possible value.
- When. On every logged value, the run is judged at the highest bracket b <= len(history), against
  that bracket's current threshold, as W&B's engine does each time it polls. So a run that passed
  bracket b when it reached it can still be stopped at b later, if runs that reach b after it raise
  the bar, before it reaches the next bracket. Between brackets the judgement can only change by new
  values of this run (non-strict) or by other runs reaching b.
- What is judged: with strict=False (our default) the run's best value so far; with strict=True its
  b-th value. It is stopped when that is strictly worse than the threshold (ties continue).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from core.sweepspec import GOALS, HyperbandSpec, SweepConfigError

MAX_BRACKETS = 100           # W&B's engine also lists at most 100 min_iter brackets
DEFAULT_LIMIT = 1_000_000


@dataclass(frozen=True)
class StopDecision:
    """Why a run is stopped: at which bracket, the value judged and the threshold it missed."""

    bracket: int
    value: float
    threshold: float
    strict: bool
    num_runs: int                # runs that had reached the bracket when the threshold was taken
    reason: str


def _floor(x: float) -> int:
    return math.floor(x + 1e-9)        # 27 / 3**3 computed as 0.9999999 still floors to 1


def _max_iter_brackets(max_iter: int, s: int, eta: float) -> list[int]:
    found = []
    for k in range(1, s + 1):
        b = _floor(max_iter / eta ** k)
        if b < 1:
            break                      # smaller from here on; stopping also keeps eta ** k finite
        found.append(b)
    return found


def _min_iter_brackets(min_iter: int, eta: float, limit: int) -> list[int]:
    found = []
    for k in range(MAX_BRACKETS):
        b = _floor(min_iter * eta ** k)
        if b > limit:
            break
        found.append(b)
    return found


def brackets(hb: HyperbandSpec, limit: int = DEFAULT_LIMIT) -> list[int]:
    """The iteration counts at which runs are judged, ascending, none above `limit`."""
    if hb.uses_max_iter:
        found = _max_iter_brackets(hb.max_iter, hb.s, float(hb.eta))
    else:
        found = _min_iter_brackets(hb.min_iter, float(hb.eta), limit)
    return sorted({b for b in found if b <= limit})


def _as_loss(value: float, goal: str) -> float:
    """The value in 'smaller is better' form; NaN and +-inf count as the worst possible value."""
    value = float(value)
    if not math.isfinite(value):
        return math.inf
    return value if goal == "minimize" else -value


def _from_loss(loss: float, goal: str) -> float:
    return loss if goal == "minimize" else -loss


def _check_goal(goal: str) -> None:
    if goal not in GOALS:
        raise SweepConfigError(f"metric.goal: unknown goal {goal!r}; allowed: {', '.join(GOALS)}")


def threshold(histories: Sequence[Sequence[float]], bracket: int, eta: float,
              goal: str) -> float | None:
    """The value a run must match at `bracket`, in the metric's own units; None if no run got there.

    Runs with at least `bracket` values contribute their bracket-th value; sorted best-first, the
    threshold is the value at index int(n / eta).
    """
    _check_goal(goal)
    losses = sorted(_as_loss(h[bracket - 1], goal) for h in histories if len(h) >= bracket)
    if not losses:
        return None
    return _from_loss(losses[int(len(losses) / eta)], goal)


def reached(histories: Sequence[Sequence[float]], bracket: int) -> int:
    """How many runs have logged at least `bracket` values."""
    return sum(1 for h in histories if len(h) >= bracket)


def judged_value(history: Sequence[float], bracket: int, strict: bool, goal: str) -> float:
    """The value hyperband compares: the bracket-th value (strict) or the best so far."""
    if strict:
        return float(history[bracket - 1])
    best = min(_as_loss(v, goal) for v in history)
    return math.nan if math.isinf(best) and best > 0 else _from_loss(best, goal)


def _describe(metric_name: str, strict: bool, bracket: int, value: float, limit: float,
              eta: float, num_runs: int) -> str:
    judged = f"value #{bracket}" if strict else "best so far"
    return (f"hyperband: {metric_name} {judged} {value:.6g} is worse than {limit:.6g}, the top 1/{eta:g} "
            f"threshold of {num_runs} run(s) at bracket {bracket}")


def should_stop(history: Sequence[float], other_histories: Sequence[Sequence[float]],
                hb: HyperbandSpec, goal: str, metric_name: str = "metric") -> StopDecision | None:
    """Whether a running run should stop now, judged at the highest bracket it has reached."""
    _check_goal(goal)
    reached_brackets = brackets(hb, limit=len(history))
    if not reached_brackets:
        return None
    bracket = reached_brackets[-1]
    pool = [history, *other_histories]
    limit = threshold(pool, bracket, hb.eta, goal)
    value = judged_value(history, bracket, hb.strict, goal)
    if limit is None or not _as_loss(value, goal) > _as_loss(limit, goal):
        return None
    num_runs = reached(pool, bracket)
    reason = _describe(metric_name, hb.strict, bracket, value, limit, float(hb.eta), num_runs)
    return StopDecision(bracket=bracket, value=value, threshold=limit, strict=hb.strict,
                        num_runs=num_runs, reason=reason)
