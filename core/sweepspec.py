"""Sweep configurations in the W&B format: load, validate and round-trip them.

A sweep config written for W&B loads unchanged (`reference/wandb-sweep-spec.md`); anything Torch Lab
does not support is rejected with a one-line `SweepConfigError` naming the key and what is allowed.
Warnings about valid configs that are probably mistakes come from `core.sweeplint.lint`.

    spec = load_spec("sweep.yaml")            # or a dict, a YAML / JSON string, a Path
    spec.method, spec.metric.goal             # 'random', 'maximize'
    [p.name for p in spec.parameters]         # leaves only: nested parameters get dotted names
    SweepSpec.from_dict(spec.to_dict()) == spec
    describe(spec)                            # 'random search over 4 parameters · minimize val_loss · ...'

`to_dict()` gives the normalised form: every parameter has an explicit `distribution` and its
defaults filled in (`q`, `mu`, `sigma`, `a`, `b`), the metric its `goal` and `impute`, hyperband its
`eta` and `strict`. Distributions are inferred as in W&B when `distribution` is absent: `value` ->
constant, `values` -> categorical (with `probabilities` -> categorical_w_probabilities), int
`min`/`max` -> int_uniform, other numeric `min`/`max` -> uniform. `q` defaults to the int 1, as the
spec's table says, so default-q samples are ints (W&B's engine fills 1.0 and gives floats).

Text is read by `core.sweeptext`, which refuses oversized, deeply nested or aliased YAML before
anything is built; user values in messages are cut short there too (`show`). Parameters (the
distributions, a leaf `ParamSpec`, the `parameters` block) are `core.sweepparams`.
Sampling lives in `core.sweepsample`, hyperband decisions in `core.hyperband`, lint in `core.sweeplint`,
the checks for the built-in trainer in `core.sweeptrainer`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from core.sweepparams import (GRID_DISTRIBUTIONS, MAX_GRID_VALUES, ParamSpec, check_keys, nest_params, number,
                              parse_params, positive_int, range_grid_count, unknown)
from core.sweeptext import SweepConfigError  # noqa: F401 - raised by everything here; importers catch it
from core.sweeptext import clip, fail as _fail, parse_text, read_text, show


METHODS = ("grid", "random", "bayes")
GOALS = ("minimize", "maximize")
IMPUTES = ("worst", "best", "latest")
TOP_KEYS = ("method", "parameters", "metric", "early_terminate", "run_cap",
            "name", "description", "project", "program", "command")
METRIC_KEYS = ("name", "goal", "target", "impute")
HYPERBAND_KEYS = ("type", "min_iter", "max_iter", "s", "eta", "strict")


@dataclass(frozen=True)
class MetricSpec:
    """The metric a sweep optimises. A run's value is its best logged value by `goal`."""

    name: str
    goal: str = "minimize"
    target: float | int | None = None
    impute: str = "worst"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise _fail("metric.name", f"must be a non-empty string, got {show(self.name)}")
        if self.goal not in GOALS:
            raise unknown("metric.goal", "goal", self.goal, GOALS)
        if self.impute not in IMPUTES:
            raise unknown("metric.impute", "impute", self.impute, IMPUTES)
        if self.target is not None:
            number("metric", "target", self.target)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "goal": self.goal, "impute": self.impute}
        if self.target is not None:
            out["target"] = self.target
        return out


@dataclass(frozen=True)
class HyperbandSpec:
    """`early_terminate` of type hyperband. With both forms given, max_iter+s wins (as in W&B)."""

    min_iter: int | None = None
    max_iter: int | None = None
    s: int | None = None
    eta: float | int = 3
    strict: bool = False

    def __post_init__(self) -> None:
        where = "early_terminate"
        for key in ("min_iter", "max_iter", "s"):
            if getattr(self, key) is not None:
                positive_int(where, key, getattr(self, key))
        if self.min_iter is None and (self.max_iter is None or self.s is None):
            raise _fail(where, "hyperband needs min_iter, or max_iter together with s")
        if number(where, "eta", self.eta) <= 1:
            raise _fail(where, f"eta must be a number > 1, got {show(self.eta)}")
        if not isinstance(self.strict, bool):
            raise _fail(where, f"strict must be true or false, got {show(self.strict)}")
        if self.uses_max_iter and self.max_iter < self.eta:
            raise _fail(where, f"max_iter={self.max_iter}, eta={self.eta} give no bracket of at least "
                               "one value; raise max_iter or lower eta")

    @property
    def uses_max_iter(self) -> bool:
        return self.max_iter is not None and self.s is not None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "hyperband"}
        for key in ("min_iter", "max_iter", "s"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out.update(eta=self.eta, strict=self.strict)
        return out


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep config. `parameters` holds the leaves in declaration order."""

    method: str
    parameters: tuple[ParamSpec, ...]
    metric: MetricSpec | None = None
    early_terminate: HyperbandSpec | None = None
    run_cap: int | None = None
    name: str | None = None
    description: str | None = None
    project: str | None = None
    program: str | None = None
    command: tuple[str, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "parameters", tuple(self.parameters))
        if self.command is not None:
            object.__setattr__(self, "command", tuple(self.command))
        if self.method not in METHODS:
            raise unknown("method", "method", self.method, METHODS)
        if not self.parameters:
            raise _fail("parameters", "give at least one parameter")
        names = [p.name for p in self.parameters]
        for name in {n for n in names if names.count(n) > 1}:
            raise _fail("parameters." + clip(name), "the dotted name is given twice (flat and nested); rename one")
        if self.run_cap is not None:
            positive_int("", "run_cap", self.run_cap)
        self._check_strings()
        self._check_method_rules()

    def _check_strings(self) -> None:
        for key in ("name", "description", "project", "program"):
            if getattr(self, key) is not None and not isinstance(getattr(self, key), str):
                raise _fail(key, f"must be a string, got {show(getattr(self, key))}")
        if self.command is not None and not all(isinstance(c, str) for c in self.command):
            raise _fail("command", f"must be a list of strings, got {show(list(self.command))}")

    def _check_method_rules(self) -> None:
        if self.method == "bayes" and self.metric is None:
            raise _fail("metric", "method 'bayes' needs a metric: add metric: {name: ..., goal: ...}")
        if self.early_terminate is not None and self.metric is None:
            raise _fail("metric", "early_terminate needs a metric: add metric: {name: ..., goal: ...}")
        for p in self.parameters:
            if p.distribution == "categorical_w_probabilities" and self.method != "random":
                raise _fail(p.where, f"categorical_w_probabilities works only with method 'random', "
                                     f"not {self.method!r}; use values without probabilities")
            if self.method == "grid" and p.distribution not in GRID_DISTRIBUTIONS:
                raise _fail(p.where, f"distribution {p.distribution!r} cannot be used with method 'grid' "
                                     f"(allowed: {', '.join(GRID_DISTRIBUTIONS)}); "
                                     "give values, or use method random or bayes")
            if self.method == "grid" and range_grid_count(p) > MAX_GRID_VALUES:
                raise _fail(p.where, f"{p.distribution} {show(p.min)}..{show(p.max)} gives "
                                     f"{range_grid_count(p):,} grid values, more than {MAX_GRID_VALUES:,}; "
                                     "narrow the range, raise q, or use method random or bayes")

    def param(self, name: str) -> ParamSpec:
        """The leaf parameter with this dotted name."""
        for p in self.parameters:
            if p.name == name:
                return p
        raise unknown("parameters", "parameter", name, [p.name for p in self.parameters])

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SweepSpec":
        return parse_spec(data)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "parameters": nest_params(self.parameters)}
        if self.metric is not None:
            out["metric"] = self.metric.to_dict()
        if self.early_terminate is not None:
            out["early_terminate"] = self.early_terminate.to_dict()
        for key in ("run_cap", "name", "description", "project", "program"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.command is not None:
            out["command"] = list(self.command)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


# --------------------------------------------------------------------------- parsing


def parse_metric(raw: Any) -> MetricSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise _fail("metric", f"must be a mapping with name and goal, got {show(raw)}")
    check_keys("metric", raw, METRIC_KEYS)
    if "name" not in raw:
        raise _fail("metric", "needs a name, e.g. metric: {name: val_loss, goal: minimize}")
    return MetricSpec(**raw)


def parse_early_terminate(raw: Any) -> HyperbandSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise _fail("early_terminate", f"must be a mapping with type: hyperband, got {show(raw)}")
    check_keys("early_terminate", raw, HYPERBAND_KEYS)
    if raw.get("type") != "hyperband":
        raise _fail("early_terminate", f"type must be 'hyperband', got {show(raw.get('type'))}")
    return HyperbandSpec(**{k: v for k, v in raw.items() if k != "type"})


def parse_spec(data: Any) -> SweepSpec:
    """Validate a W&B sweep config given as a mapping."""
    if not isinstance(data, Mapping):
        raise _fail("", f"a sweep config must be a mapping with method and parameters, got {show(data)}")
    check_keys("sweep config", data, TOP_KEYS)
    for key in ("method", "parameters"):
        if key not in data:
            raise _fail(key, "is required (method: grid|random|bayes, and parameters)")
    extras = {k: data[k] for k in ("run_cap", "name", "description", "project", "program", "command")
              if k in data}
    if "command" in extras and not isinstance(extras["command"], (list, tuple)):
        raise _fail("command", f"must be a list of strings, got {show(extras['command'])}")
    return SweepSpec(method=data["method"], parameters=tuple(parse_params(data["parameters"])),
                     metric=parse_metric(data.get("metric")),
                     early_terminate=parse_early_terminate(data.get("early_terminate")), **extras)


def load_spec(source: SweepSpec | Mapping[str, Any] | str | Path) -> SweepSpec:
    """Load a sweep config from a mapping, a YAML or JSON string, or a .yaml/.yml/.json file."""
    if isinstance(source, SweepSpec):
        return source
    if isinstance(source, Mapping):
        return parse_spec(source)
    is_file_name = isinstance(source, str) and "\n" not in source and \
        source.strip().lower().endswith((".yaml", ".yml", ".json"))
    if isinstance(source, Path) or is_file_name:
        path = Path(source)
        if not path.is_file():
            raise _fail("", f"sweep config file not found: {path}")
        return parse_spec(parse_text(read_text(path), where=str(path)))
    if isinstance(source, str):
        return parse_spec(parse_text(source))
    raise _fail("", f"cannot load a sweep config from {type(source).__name__}; "
                    "give a dict, a YAML/JSON string or a file path")


# --------------------------------------------------------------------------- summaries


def describe(spec: SweepSpec) -> str:
    """One line for a sweep's summary: method, metric, early termination (with `strict`) and run cap."""
    parts = [f"{spec.method} search over {len(spec.parameters)} parameters"]
    if spec.metric is not None:
        parts.append(f"{spec.metric.goal} {clip(spec.metric.name)}")
    hb = spec.early_terminate
    if hb is None:
        parts.append("no early termination")
    else:
        brackets = f"max_iter {hb.max_iter}, s {hb.s}" if hb.uses_max_iter else f"min_iter {hb.min_iter}"
        judged = "its value at each bracket" if hb.strict else "its best value so far"
        parts.append(f"hyperband early termination ({brackets}, eta {hb.eta:g}, strict {str(hb.strict).lower()}: "
                     f"a run is judged by {judged})")
    parts.append(f"run cap {spec.run_cap}" if spec.run_cap else "no run cap")
    return " · ".join(parts)
