"""Sweep parameters in the W&B format: the distributions, one leaf parameter, and how a config's
`parameters` block becomes leaves.

    leaves = parse_params({"lr": {"min": 1e-4, "max": 0.1}, "opt": {"parameters": {"beta": {"value": 0.9}}}})
    [(p.name, p.distribution) for p in leaves]    # [('lr', 'uniform'), ('opt.beta', 'constant')]
    leaves[0].to_dict()                           # {'distribution': 'uniform', 'min': 0.0001, 'max': 0.1}

`DISTRIBUTIONS` says, per distribution, which keys it takes, which it needs and their defaults.
Distributions are inferred as in W&B when `distribution` is absent (see `infer_distribution`). The
whole config (method, metric, early termination) is `core.sweepspec`; the helpers here that check
keys and numbers serve it too. Every problem raises a one-line `SweepConfigError`.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any, Mapping

from core.sweeptext import SweepConfigError, clip, fail as _fail, show

GRID_DISTRIBUTIONS = ("constant", "categorical", "int_uniform", "q_uniform")
# W&B keys that only make sense on W&B's servers; named so the error can say so.
WANDB_ONLY_KEYS = ("apiVersion", "kind", "controller", "entity", "job", "image_uri",
                   "impute_while_running")
MAX_LOG_BOUND = 700.0        # exp(709) overflows a float; log-space bounds beyond this are mistakes
MAX_GRID_VALUES = 1_000_000  # values one grid parameter may visit

# distribution -> (keys allowed besides `distribution`, keys required, defaults)
_RANGE = ("min", "max")
DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...], dict[str, Any]]] = {
    "constant": (("value",), ("value",), {}),
    "categorical": (("values",), ("values",), {}),
    "categorical_w_probabilities": (("values", "probabilities"), ("values", "probabilities"), {}),
    "int_uniform": (_RANGE, _RANGE, {}),
    "uniform": (_RANGE, _RANGE, {}),
    "q_uniform": (_RANGE + ("q",), _RANGE, {"q": 1}),
    "log_uniform": (_RANGE, _RANGE, {}),
    "log_uniform_values": (_RANGE, _RANGE, {}),
    "q_log_uniform": (_RANGE + ("q",), _RANGE, {"q": 1}),
    "q_log_uniform_values": (_RANGE + ("q",), _RANGE, {"q": 1}),
    "inv_log_uniform": (_RANGE, _RANGE, {}),
    "inv_log_uniform_values": (_RANGE, _RANGE, {}),
    "normal": (("mu", "sigma"), (), {"mu": 0, "sigma": 1}),
    "q_normal": (("mu", "sigma", "q"), (), {"mu": 0, "sigma": 1, "q": 1}),
    "log_normal": (("mu", "sigma"), (), {"mu": 0, "sigma": 1}),
    "q_log_normal": (("mu", "sigma", "q"), (), {"mu": 0, "sigma": 1, "q": 1}),
    "beta": (("a", "b"), (), {"a": 1, "b": 1}),
    "q_beta": (("a", "b", "q"), (), {"a": 1, "b": 1, "q": 1}),
}
LOG_BOUND_DISTRIBUTIONS = ("log_uniform", "q_log_uniform", "inv_log_uniform")
POSITIVE_MIN_DISTRIBUTIONS = ("log_uniform_values", "q_log_uniform_values", "inv_log_uniform_values")


def unknown(where: str, what: str, name: Any, valid: tuple[str, ...] | list[str]) -> SweepConfigError:
    hint = difflib.get_close_matches(str(name), valid, n=1)
    tail = f" (did you mean {hint[0]!r}?)" if hint else ""
    return _fail(where, f"unknown {what} {show(name)}; allowed: {', '.join(valid)}{tail}")


def check_keys(where: str, data: Mapping, allowed: tuple[str, ...]) -> None:
    for key in data:
        if key in WANDB_ONLY_KEYS:
            raise _fail(where, f"key {show(key)} is a W&B server setting Torch Lab does not support; remove it")
        if key not in allowed:
            raise unknown(where, "key", key, allowed)


def number(where: str, key: str, value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(where, f"{key} must be a finite number, got {show(value)}")
    return value


def positive_int(where: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(where, f"{key} must be a positive integer, got {show(value)}")
    return value


def _is_integral(value: float | int) -> bool:
    return isinstance(value, int) or float(value).is_integer()


@dataclass(frozen=True)
class ParamSpec:
    """One leaf parameter. `path` is its position in the (possibly nested) config, e.g. ('opt', 'lr')."""

    path: tuple[str, ...]
    distribution: str
    value: Any = None
    values: tuple = ()
    probabilities: tuple = ()
    min: float | int | None = None
    max: float | int | None = None
    q: float | int | None = None
    mu: float | int | None = None
    sigma: float | int | None = None
    a: float | int | None = None
    b: float | int | None = None

    @property
    def name(self) -> str:
        return ".".join(self.path)

    @property
    def where(self) -> str:
        return "parameters." + clip(self.name)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", tuple(self.path))
        object.__setattr__(self, "values", tuple(self.values))
        object.__setattr__(self, "probabilities", tuple(self.probabilities))
        if self.distribution not in DISTRIBUTIONS:
            raise unknown(self.where, "distribution", self.distribution, list(DISTRIBUTIONS))
        for key in ("q", "mu", "sigma", "a", "b"):
            if key in DISTRIBUTIONS[self.distribution][0]:
                number(self.where, key, getattr(self, key))
        for key in ("q", "sigma", "a", "b"):
            if key in DISTRIBUTIONS[self.distribution][0] and getattr(self, key) <= 0:
                raise _fail(self.where, f"{key} must be > 0, got {show(getattr(self, key))}")
        if "values" in DISTRIBUTIONS[self.distribution][0] and not self.values:
            raise _fail(self.where, "values must be a non-empty list")
        if "min" in DISTRIBUTIONS[self.distribution][0]:
            self._check_range()
        if self.distribution == "categorical_w_probabilities":
            self._check_probabilities()

    def _check_range(self) -> None:
        low, high = number(self.where, "min", self.min), number(self.where, "max", self.max)
        if low >= high:
            raise _fail(self.where, f"min {show(low)} is not less than max {show(high)}")
        if self.distribution == "int_uniform" and not (_is_integral(low) and _is_integral(high)):
            raise _fail(self.where, f"int_uniform needs integer min and max, got {show(low)} and {show(high)}; "
                                    "use distribution uniform for real numbers")
        if self.distribution in POSITIVE_MIN_DISTRIBUTIONS and low <= 0:
            raise _fail(self.where, f"{self.distribution} needs min > 0 (bounds are the values), got {show(low)}")
        if self.distribution in LOG_BOUND_DISTRIBUTIONS and max(abs(low), abs(high)) > MAX_LOG_BOUND:
            raise _fail(self.where, f"{self.distribution} bounds are natural logs and must lie within "
                                    f"+-{MAX_LOG_BOUND:g}, got {show(low)}..{show(high)}; "
                                    f"did you mean {self.distribution}_values?")

    def _check_probabilities(self) -> None:
        probs = [number(self.where, "probabilities", p) for p in self.probabilities]
        if len(probs) != len(self.values):
            raise _fail(self.where, f"probabilities has {len(probs)} entries but values has "
                                    f"{len(self.values)}; give one probability per value")
        if any(p < 0 for p in probs) or not math.isclose(sum(probs), 1.0, abs_tol=1e-6):
            raise _fail(self.where, f"probabilities must be >= 0 and sum to 1, got {show(list(probs))} "
                                    f"(sum {sum(probs):g})")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"distribution": self.distribution}
        for key in DISTRIBUTIONS[self.distribution][0]:
            item = getattr(self, key)
            out[key] = list(item) if isinstance(item, tuple) else item
        return out


def range_grid_count(p: ParamSpec) -> int:
    """How many values a grid visits for an int_uniform (min..max) or q_uniform (arange(min, max, q))
    parameter, counted without listing them; 0 for other distributions."""
    if p.distribution == "int_uniform":
        return int(p.max) - int(p.min) + 1
    if p.distribution == "q_uniform":
        return math.ceil(round((p.max - p.min) / p.q, 9))
    return 0


def nest_params(params: tuple[ParamSpec, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in params:
        node = out
        for key in p.path[:-1]:
            node = node.setdefault(key, {"parameters": {}})["parameters"]
        node[p.path[-1]] = p.to_dict()
    return out


def infer_distribution(where: str, raw: Mapping[str, Any]) -> str:
    """The distribution W&B infers for a parameter given without `distribution`."""
    if "value" in raw:
        return "constant"
    if "values" in raw:
        return "categorical_w_probabilities" if "probabilities" in raw else "categorical"
    if "min" in raw and "max" in raw:
        ints = all(isinstance(raw[k], int) and not isinstance(raw[k], bool) for k in _RANGE)
        return "int_uniform" if ints else "uniform"
    raise _fail(where, f"cannot tell the distribution from keys {show(sorted(map(str, raw)))}; give value, "
                       "values, min and max, or distribution (one of: " + ", ".join(DISTRIBUTIONS) + ")")


def parse_param(path: tuple[str, ...], raw: Any) -> list[ParamSpec]:
    """The leaves of one entry of `parameters` (several when it nests `parameters`)."""
    where = "parameters." + clip(".".join(path))
    if not isinstance(raw, Mapping):
        raise _fail(where, f"must be a mapping such as {{value: 1}} or {{values: [1, 2]}}, got {show(raw)}")
    if "parameters" in raw:
        check_keys(where, raw, ("parameters",))
        return parse_params(raw["parameters"], path, where + ".parameters")
    dist = raw["distribution"] if "distribution" in raw else infer_distribution(where, raw)
    if dist not in DISTRIBUTIONS:
        raise unknown(where, "distribution", dist, list(DISTRIBUTIONS))
    allowed, required, defaults = DISTRIBUTIONS[dist]
    check_keys(where, raw, ("distribution",) + allowed)
    missing = [k for k in required if k not in raw]
    if missing:
        raise _fail(where, f"distribution {dist} needs {' and '.join(missing)}")
    for key in ("values", "probabilities"):
        if key in raw and not isinstance(raw[key], (list, tuple)):
            raise _fail(where, f"{key} must be a list, got {show(raw[key])}")
    fields = {**defaults, **{k: v for k, v in raw.items() if k != "distribution"}}
    return [ParamSpec(path=path, distribution=dist, **fields)]


def parse_params(raw: Any, prefix: tuple[str, ...] = (), where: str = "parameters") -> list[ParamSpec]:
    if not isinstance(raw, Mapping) or not raw:
        raise _fail(where, f"must be a non-empty mapping of parameter names to settings, got {show(raw)}")
    leaves: list[ParamSpec] = []
    for name, entry in raw.items():
        if not isinstance(name, str) or not name:
            raise _fail(where, f"parameter names must be non-empty strings, got {show(name)}")
        leaves += parse_param(prefix + (name,), entry)
    return leaves
