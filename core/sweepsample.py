"""Sweep sampling: grid points, random draws and Optuna (bayes) suggestions for a `SweepSpec`.

    spec = load_spec(config)
    grid_points(spec)                        # grid: every combination once, in a stable order
    sample_random(spec, np.random.default_rng(0))     # random: one nested config dict
    trial = study.ask(); suggest(trial, spec)          # bayes: Optuna ask-and-tell
    observe_value([0.9, 0.7, 0.8], "minimize")         # 0.7: a run's value is its best logged one
    candidate_values(spec.param("lr"))                 # [('min', 0.0001), ('max', 0.1)]: the ends it can give

Each distribution is a small pure function in `SAMPLERS` (keyed by name), drawing exactly what the
W&B sweep spec says: e.g. `log_uniform` is exp(U(min, max)) (bounds are natural logs),
`log_uniform_values` is exp(U(log min, log max)), `inv_log_uniform` is exp(-U(min, max)), and
`inv_log_uniform_values` draws log(1/X) ~ U(log(1/max), log(1/min)), the same law as
`log_uniform_values`. Quantised forms round to multiples of q counted from 0 (round(x/q)*q) and give
ints when q is an int; float results are rounded to q's decimals so 0.1*3 reads 0.3.

Grid order: the first parameter (in declaration order, nested ones depth-first) varies slowest.
`int_uniform` expands to range(min, max+1); `q_uniform` to arange(min, max, q) with max excluded
(ints when q and min are ints). Repeated values are skipped, so no point appears twice.

Bayes (`suggest`): Optuna models a latent value per parameter, named by its dotted name:
- uniform / int_uniform / categorical: the value itself (categoricals that are not plain scalars are
  suggested by index).
- log_uniform, log_uniform_values, inv_log_uniform, inv_log_uniform_values: the value, with
  log=True between the value bounds (exp(min)..exp(max) for the natural-log forms; exp(-max)..
  exp(-min) for inv_log_uniform). A log-uniform prior on X is exactly a uniform prior on log X, so
  this is the faithful mapping and keeps the real value in Optuna's records.
- normal, log_normal, beta: a quantile u in (1e-9, 1-1e-9), mapped through scipy.stats' ppf.
- q_ forms: the unrounded latent, rounded afterwards as in random sampling.
`optuna_distributions(spec)` and `values_from_params(spec, params)` expose the same mapping, so a
store can rebuild trials with `optuna.trial.create_trial` and turn `trial.params` into a config.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from decimal import Decimal
from statistics import NormalDist
from typing import Any, Callable, Iterator

from typing import TYPE_CHECKING

import numpy as np

from core.registry import choose
from core.sweepparams import GRID_DISTRIBUTIONS, ParamSpec, range_grid_count
from core.sweepspec import SweepConfigError, SweepSpec

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

MAX_GRID_POINTS = 1_000_000
QUANTILE_EPS = 1e-9          # latent quantiles stay inside (0, 1) so normal's ppf stays finite

# --------------------------------------------------------------------------- helpers


def decimals_of(x: float | int) -> int:
    """Digits after the point in x's shortest repr: 0.1 -> 1, 1e-05 -> 5, 8 -> 0."""
    return max(0, -Decimal(repr(x)).as_tuple().exponent)


def quantize(x: float, q: float | int) -> float | int:
    """round(x/q)*q; an int when q is an int, else rounded to q's decimals (no 0.30000000000000004)."""
    steps = round(x / q)
    if isinstance(q, int):
        return int(steps) * q
    return round(steps * q, decimals_of(q))


def nest(flat: dict[tuple[str, ...], Any]) -> dict[str, Any]:
    """{('opt', 'lr'): 0.1, ('bs',): 8} -> {'opt': {'lr': 0.1}, 'bs': 8}."""
    out: dict[str, Any] = {}
    for path, value in flat.items():
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return out


def point_key(point: Any) -> str:
    """A canonical string for a config point (dict order ignored), to tell repeats apart."""
    return json.dumps(point, sort_keys=True, default=repr)


# --------------------------------------------------------------------------- random sampling

Sampler = Callable[[ParamSpec, np.random.Generator], Any]


def _constant(p, rng):
    return copy.deepcopy(p.value)


def _categorical(p, rng):
    return copy.deepcopy(p.values[int(rng.integers(len(p.values)))])


def _categorical_w_probabilities(p, rng):
    probs = np.asarray(p.probabilities, dtype=float)
    return copy.deepcopy(p.values[int(rng.choice(len(p.values), p=probs / probs.sum()))])


def _int_uniform(p, rng):
    return int(rng.integers(int(p.min), int(p.max) + 1))


def _uniform(p, rng):
    return float(rng.uniform(p.min, p.max))


def _log_uniform(p, rng):
    return float(np.exp(rng.uniform(p.min, p.max)))


def _log_uniform_values(p, rng):
    return float(np.exp(rng.uniform(math.log(p.min), math.log(p.max))))


def _inv_log_uniform(p, rng):
    return float(np.exp(-rng.uniform(p.min, p.max)))


def _inv_log_uniform_values(p, rng):
    # log(1/X) ~ U(log(1/max), log(1/min))
    return float(np.exp(-rng.uniform(math.log(1 / p.max), math.log(1 / p.min))))


def _normal(p, rng):
    return float(rng.normal(p.mu, p.sigma))


def _log_normal(p, rng):
    return float(np.exp(rng.normal(p.mu, p.sigma)))


def _beta(p, rng):
    return float(rng.beta(p.a, p.b))


def _quantized(base: Sampler) -> Sampler:
    def sample(p, rng):
        return quantize(base(p, rng), p.q)
    sample.__name__ = f"q{base.__name__}"
    return sample


SAMPLERS: dict[str, Sampler] = {
    "constant": _constant,
    "categorical": _categorical,
    "categorical_w_probabilities": _categorical_w_probabilities,
    "int_uniform": _int_uniform,
    "uniform": _uniform,
    "q_uniform": _quantized(_uniform),
    "log_uniform": _log_uniform,
    "log_uniform_values": _log_uniform_values,
    "q_log_uniform": _quantized(_log_uniform),
    "q_log_uniform_values": _quantized(_log_uniform_values),
    "inv_log_uniform": _inv_log_uniform,
    "inv_log_uniform_values": _inv_log_uniform_values,
    "normal": _normal,
    "q_normal": _quantized(_normal),
    "log_normal": _log_normal,
    "q_log_normal": _quantized(_log_normal),
    "beta": _beta,
    "q_beta": _quantized(_beta),
}


def param_value(p: ParamSpec, rng: np.random.Generator) -> Any:
    """One random draw of parameter `p` (a Python scalar, or a copy of a constant/categorical value)."""
    return choose(SAMPLERS, "distribution", p.distribution)(p, rng)


def sample_random(spec: SweepSpec, rng: np.random.Generator) -> dict[str, Any]:
    """One config for method random: each parameter drawn independently, in declaration order."""
    return nest({p.path: param_value(p, rng) for p in spec.parameters})


# --------------------------------------------------------------------------- grid


def q_uniform_grid(low: float | int, high: float | int, q: float | int, start: int = 0) -> list[float | int]:
    """arange(low, high, q)[start:] with high excluded, free of float drift; ints when q and low are ints."""
    count = math.ceil(round((high - low) / q, 9))
    if isinstance(q, int) and isinstance(low, int):
        return [low + k * q for k in range(start, count)]
    digits = max(decimals_of(q), decimals_of(low))
    return [round(low + k * q, digits) for k in range(start, count)]


def grid_values(p: ParamSpec) -> list[Any]:
    """The values a grid visits for one parameter, repeats removed, first occurrence kept."""
    if p.distribution not in GRID_DISTRIBUTIONS:
        raise SweepConfigError(f"{p.where}: distribution {p.distribution!r} has no grid; "
                               f"grid allows {', '.join(GRID_DISTRIBUTIONS)}")
    if p.distribution == "constant":
        raw = [p.value]
    elif p.distribution == "categorical":
        raw = list(p.values)
    elif p.distribution == "int_uniform":
        raw = list(range(int(p.min), int(p.max) + 1))
    else:
        raw = q_uniform_grid(p.min, p.max, p.q)
    unique: dict[str, Any] = {}
    for value in raw:
        unique.setdefault(point_key(value), value)
    return list(unique.values())


def grid_size(spec: SweepSpec) -> int:
    """How many points the grid has (ranges are counted, not listed)."""
    return math.prod(range_grid_count(p) or len(grid_values(p)) for p in spec.parameters)


def iter_grid(spec: SweepSpec) -> Iterator[dict[str, Any]]:
    """The grid points one by one, first parameter slowest; each point is a fresh nested dict."""
    columns = [grid_values(p) for p in spec.parameters]
    for combo in itertools.product(*columns):
        yield nest({p.path: copy.deepcopy(v) for p, v in zip(spec.parameters, combo)})


def grid_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every grid point once. Grids over MAX_GRID_POINTS are refused: iterate `iter_grid` instead."""
    size = grid_size(spec)
    if size > MAX_GRID_POINTS:
        raise SweepConfigError(f"parameters: the grid has {size} points, more than {MAX_GRID_POINTS}; "
                               "use fewer values, or iter_grid() with a run_cap")
    return list(iter_grid(spec))


# --------------------------------------------------------------------------- the values a parameter can take

_Z = NormalDist().inv_cdf(1 - QUANTILE_EPS)     # about 6: bayes draws normals within mu +- _Z sigma


def _exp(x: float) -> float:
    return math.exp(x) if x < 709 else math.inf


def _normal_ends(p: ParamSpec) -> tuple[float, float]:
    return p.mu - _Z * p.sigma, p.mu + _Z * p.sigma


# distribution (without q_) -> (lowest, highest) value, and how each is named in messages
ENDS: dict[str, tuple[Callable[[ParamSpec], tuple[Any, Any]], str, str]] = {
    "int_uniform": (lambda p: (int(p.min), int(p.max)), "min", "max"),
    "uniform": (lambda p: (p.min, p.max), "min", "max"),
    "log_uniform": (lambda p: (_exp(p.min), _exp(p.max)), "exp(min)", "exp(max)"),
    "log_uniform_values": (lambda p: (p.min, p.max), "min", "max"),
    "inv_log_uniform": (lambda p: (_exp(-p.max), _exp(-p.min)), "exp(-max)", "exp(-min)"),
    "inv_log_uniform_values": (lambda p: (p.min, p.max), "min", "max"),
    "normal": (_normal_ends, "mu - 6 sigma", "mu + 6 sigma"),
    "log_normal": (lambda p: tuple(map(_exp, _normal_ends(p))), "exp(mu - 6 sigma)", "exp(mu + 6 sigma)"),
    "beta": (lambda p: (QUANTILE_EPS, 1 - QUANTILE_EPS), "near 0", "near 1"),   # just inside (0, 1)
}


def _grid_ends(p: ParamSpec) -> list[tuple[str, Any]]:
    return [("min", p.min), ("last grid value", q_uniform_grid(p.min, p.max, p.q, range_grid_count(p) - 1)[0])]


def candidate_values(p: ParamSpec, method: str = "random") -> list[tuple[str, Any]]:
    """(label, value) for the values of `p` that stand for all it can give: the constant, each of
    `values`, or the two ends of a range (normal forms: the ends bayes reaches, mu +- 6 sigma; q_ forms
    rounded to q; grid q_uniform: min and its last grid value). Labels say where a value comes from:
    'value', 'values entry', 'min', 'exp(max)', 'max rounded to q=8'."""
    if p.distribution == "constant":
        return [("value", p.value)]
    if p.distribution.startswith("categorical"):
        return [("values entry", v) for v in p.values]
    if method == "grid" and p.distribution == "q_uniform":
        return _grid_ends(p)
    quantized = p.distribution.startswith("q_")
    ends, low_name, high_name = ENDS[p.distribution.removeprefix("q_")]
    pairs = list(zip((low_name, high_name), ends(p)))
    if not quantized:
        return pairs
    return [(f"{name} rounded to q={p.q!r}", quantize(x, p.q) if math.isfinite(x) else x) for name, x in pairs]


# --------------------------------------------------------------------------- bayes (Optuna)

# optuna and scipy.stats are imported on first use: they cost about 1.5 s, and grid, random
# sampling and lint (which pages call) need neither.
Latent = tuple["BaseDistribution | None", Callable[[Any], Any]]


def _float(low: float, high: float, log: bool = False) -> BaseDistribution:
    from optuna.distributions import FloatDistribution
    return FloatDistribution(low, high, log=log)


def _int(low: int, high: int) -> BaseDistribution:
    from optuna.distributions import IntDistribution
    return IntDistribution(low, high)


def _choices(choices: list) -> BaseDistribution:
    from optuna.distributions import CategoricalDistribution
    return CategoricalDistribution(choices)


def _norm_ppf(u: float, mu: float, sigma: float) -> float:
    from scipy.stats import norm
    return float(norm.ppf(u, loc=mu, scale=sigma))


def _beta_ppf(u: float, a: float, b: float) -> float:
    from scipy.stats import beta
    return float(beta.ppf(u, a, b))


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _latent_categorical(p: ParamSpec) -> Latent:
    # Optuna stores plain scalars; anything else, or values equal in Python (1, 1.0, True), by index
    if all(_is_scalar(v) for v in p.values) and len(set(p.values)) == len(p.values):
        return _choices(list(p.values)), copy.deepcopy
    return _choices(list(range(len(p.values)))), lambda i: copy.deepcopy(p.values[i])


def _latent_log(low: float, high: float, p: ParamSpec, quantized: bool) -> Latent:
    to_value = (lambda x: quantize(x, p.q)) if quantized else float
    return _float(low, high, log=True), to_value


def _latent_quantile(ppf: Callable[[float], float], p: ParamSpec, quantized: bool) -> Latent:
    def to_value(u: float) -> Any:
        x = float(ppf(u))
        return quantize(x, p.q) if quantized else x
    return _float(QUANTILE_EPS, 1 - QUANTILE_EPS), to_value


LATENTS: dict[str, Callable[[ParamSpec], Latent]] = {
    "constant": lambda p: (None, lambda _: copy.deepcopy(p.value)),
    "categorical": _latent_categorical,
    "int_uniform": lambda p: (_int(int(p.min), int(p.max)), int),
    "uniform": lambda p: (_float(p.min, p.max), float),
    "q_uniform": lambda p: (_float(p.min, p.max), lambda x: quantize(x, p.q)),
    "log_uniform": lambda p: _latent_log(math.exp(p.min), math.exp(p.max), p, False),
    "q_log_uniform": lambda p: _latent_log(math.exp(p.min), math.exp(p.max), p, True),
    "log_uniform_values": lambda p: _latent_log(p.min, p.max, p, False),
    "q_log_uniform_values": lambda p: _latent_log(p.min, p.max, p, True),
    "inv_log_uniform": lambda p: _latent_log(math.exp(-p.max), math.exp(-p.min), p, False),
    "inv_log_uniform_values": lambda p: _latent_log(p.min, p.max, p, False),
    "normal": lambda p: _latent_quantile(lambda u: _norm_ppf(u, p.mu, p.sigma), p, False),
    "q_normal": lambda p: _latent_quantile(lambda u: _norm_ppf(u, p.mu, p.sigma), p, True),
    "log_normal": lambda p: _latent_quantile(lambda u: math.exp(_norm_ppf(u, p.mu, p.sigma)), p, False),
    "q_log_normal": lambda p: _latent_quantile(lambda u: math.exp(_norm_ppf(u, p.mu, p.sigma)), p, True),
    "beta": lambda p: _latent_quantile(lambda u: _beta_ppf(u, p.a, p.b), p, False),
    "q_beta": lambda p: _latent_quantile(lambda u: _beta_ppf(u, p.a, p.b), p, True),
}


def latent(p: ParamSpec) -> Latent:
    """(Optuna distribution of the latent, latent -> value); the distribution is None for constants."""
    return choose(LATENTS, "distribution for bayes", p.distribution)(p)


def optuna_distributions(spec: SweepSpec) -> dict[str, BaseDistribution]:
    """The latent search space by dotted parameter name (constants are not searched)."""
    return {p.name: dist for p in spec.parameters if (dist := latent(p)[0]) is not None}


def values_from_params(spec: SweepSpec, params: dict[str, Any]) -> dict[str, Any]:
    """A nested config from Optuna's latent `params` (as in `trial.params`)."""
    return nest({p.path: latent(p)[1](params.get(p.name)) for p in spec.parameters})


def _ask(trial: Any, name: str, dist: BaseDistribution) -> Any:
    from optuna.distributions import FloatDistribution, IntDistribution
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high)
    return trial.suggest_categorical(name, dist.choices)


def suggest(trial: Any, spec: SweepSpec) -> dict[str, Any]:
    """A nested config for method bayes from an Optuna trial (from `study.ask()`)."""
    params = {name: _ask(trial, name, dist) for name, dist in optuna_distributions(spec).items()}
    return values_from_params(spec, params)


# --------------------------------------------------------------------------- metric values


def _finite(values: list[float]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def observe_value(values: list[float], goal: str) -> float | None:
    """A run's value: its best finite logged value by goal (None when there is none)."""
    finite = _finite(values)
    if not finite:
        return None
    return min(finite) if goal == "minimize" else max(finite)


def impute_value(values: list[float], completed: list[float], impute: str, goal: str) -> float | None:
    """The value a failed or crashed run gets in bayes search (metric.impute).

    `completed` holds the values of the sweep's other observed runs; `latest` falls back to worst
    when the run logged nothing. None when there is nothing to impute from.
    """
    done = _finite(completed)
    if impute == "latest" and _finite(values):
        return _finite(values)[-1]
    if not done:
        return None
    worst_is_max = goal == "minimize"
    if impute == "best":
        return min(done) if worst_is_max else max(done)
    return max(done) if worst_is_max else min(done)


def reached_target(value: float | None, goal: str, target: float | None) -> bool:
    """Whether a run's value meets metric.target (after which no new runs start)."""
    if value is None or target is None:
        return False
    return value <= target if goal == "minimize" else value >= target
