"""Plain values for `core.wandb`: scalars and JSON data, `run.config`, `run.summary`, and `Error`.

    to_scalar(np.float32(0.5))                 # 0.5: Python numbers from numpy/torch scalars, else None
    json_friendly(value, "config 'lr'")       # plain JSON data, or TypeError naming where it came from
    run.config.update(argparse_namespace)      # Config: attribute/item access, written through
    run.summary["best"] = 0.9                  # Summary: the same, last write wins
    metrics.define("val_acc", "max", None)     # MetricSummaries: define_metric(summary=...) aggregates

`Config` and `Summary` hand every change to a `write` callable (the store's update), or keep it in
memory when `write` is None (a disabled run). Keys set by a sweep are locked in `Config`.
`refuse_attribute` is the AttributeError of Run, Artifact, Image and Table for a name they lack.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import fnmatch
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path, PurePath

PLAIN_TYPES = (type(None), bool, int, float, str)


# -- values --------------------------------------------------------------------------------------

def to_scalar(value):
    """A Python bool/int/float for numbers, numpy scalars and 0-d arrays or tensors; else None."""
    if isinstance(value, (bool, int, float)):
        return value
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        item = value.item()
        return item if isinstance(item, (bool, int, float)) else None
    return None


def as_plain_dict(value) -> dict | None:
    """The fields of an argparse.Namespace, a dataclass instance or a pydantic model; else None."""
    if isinstance(value, argparse.Namespace):
        return vars(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if callable(getattr(value, "model_dump", None)) and not isinstance(value, type):
        return value.model_dump()
    return None


def json_friendly(value, where: str):
    """`value` as plain JSON data (dicts, lists, str, numbers, bools, None); TypeError naming `where`."""
    if isinstance(value, PLAIN_TYPES):
        return value
    scalar = to_scalar(value)
    if scalar is not None:
        return scalar
    if isinstance(value, Mapping):
        return {_json_key(k, where): json_friendly(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_friendly(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if hasattr(value, "tolist") and hasattr(value, "shape"):          # numpy arrays, torch tensors
        return json_friendly((value.detach().cpu() if hasattr(value, "detach") else value).tolist(), where)
    if isinstance(value, enum.Enum):
        return json_friendly(value.value, where)
    if isinstance(value, PurePath) or type(value).__module__.startswith("torch"):   # paths, devices, dtypes
        return str(value)
    plain = as_plain_dict(value)
    if plain is not None:
        return json_friendly(plain, where)
    raise TypeError(f"{where}: a {type(value).__name__} cannot be stored; use numbers, strings, booleans, "
                    "lists or dicts of them")


def _json_key(key, where: str) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, (int, float, bool)):
        return str(key)
    raise TypeError(f"{where}: dict keys must be strings or numbers, not {type(key).__name__}")


class Error(Exception):
    """A call that cannot work here, with what to do instead (as `wandb.Error`)."""


def public_names(obj) -> list[str]:
    """The names a script may use on `obj`: its class's public attributes and its own."""
    return sorted({n for n in dir(type(obj)) if not n.startswith("_")} |
                  {n for n in vars(obj) if not n.startswith("_")})


def refuse_attribute(obj, name: str):
    """Raise the AttributeError for a name `obj` lacks, listing what it supports (dunders: the plain
    error, which `hasattr` probes from numpy, pandas and copy expect)."""
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(f"{type(obj).__name__} has no attribute {name!r}; it supports: "
                         f"{', '.join(public_names(obj))}")


# -- config and summary ------------------------------------------------------------------------------

class _Values:
    """A dict with attribute access whose changes are handed to `write` (None: kept in memory only)."""

    def __init__(self, kind: str, values: dict, write):
        object.__setattr__(self, "_kind", kind)
        object.__setattr__(self, "_items", dict(values))
        object.__setattr__(self, "_write", write)

    def __getitem__(self, key):
        return self._items[key]

    def __getattr__(self, key):
        if key.startswith("__"):
            raise AttributeError(key)
        try:
            return self._items[key]
        except KeyError:
            raise AttributeError(f"{self._kind} has no key {key!r}; keys: {', '.join(self._items) or 'none'}") from None

    def __setitem__(self, key, value):
        self.update({key: value})

    def __setattr__(self, key, value):
        self.update({key: value})

    def __contains__(self, key) -> bool:
        return key in self._items

    def __iter__(self):
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def keys(self):
        return self._items.keys()

    def items(self):
        return self._items.items()

    def values(self):
        return self._items.values()

    def get(self, key, default=None):
        return self._items.get(key, default)

    def as_dict(self) -> dict:
        return dict(self._items)

    def _store_values(self, values: dict, written: bool = False) -> None:
        """Keep `values`, and write them to the store unless the caller already has (`written`)."""
        if values:
            self._items.update(values)
            if self._write is not None and not written:
                self._write(values)

    def __repr__(self) -> str:
        return f"{self._kind}({self._items})"


class Config(_Values):
    """`run.config`: changing a value needs allow_val_change=True; keys a sweep set stay as it set them."""

    def __init__(self, values: dict, write, locked=(), allow_val_change: bool = False):
        super().__init__("config", values, write)
        object.__setattr__(self, "_locked", frozenset(locked))
        object.__setattr__(self, "_allow_val_change", bool(allow_val_change))   # init(allow_val_change=True)

    def update(self, d, allow_val_change: bool | None = None) -> None:
        changes = {}
        allowed = self._allow_val_change if allow_val_change is None else allow_val_change
        for key, value in config_dict(d).items():
            key = config_key(key)
            if key in self._locked:
                warnings.warn(f"config {key!r} is set by the sweep; the update to {value!r} is ignored", stacklevel=2)
                continue
            value = json_friendly(value, f"config {key!r}")
            if key in self._items and self._items[key] != value and not allowed:
                raise Error(f"config {key!r} is {self._items[key]!r}; to change it to {value!r} pass "
                            "allow_val_change=True to config.update()")
            changes[key] = value
        self._store_values(changes)

    def setdefaults(self, d) -> None:
        self.update({k: v for k, v in config_dict(d).items() if config_key(k) not in self._items})


class Summary(_Values):
    """`run.summary`: the last logged value of each key, or what was set here (last write wins)."""

    def __init__(self, values: dict, write):
        super().__init__("summary", values, write)

    def update(self, d: Mapping) -> None:
        self._store_values({str(k): json_friendly(v, f"summary {k!r}") for k, v in dict(d).items()})


def config_dict(value) -> dict:
    """A config given as dict, argparse.Namespace, dataclass instance, pydantic model or YAML file path."""
    if value is None:
        return {}
    if isinstance(value, (Mapping, _Values)):
        return dict(value.items())
    if isinstance(value, (str, os.PathLike)):
        return _yaml_config(Path(value))
    plain = as_plain_dict(value)
    if plain is None:
        raise TypeError(f"config must be a dict, argparse.Namespace, dataclass instance, pydantic model or YAML "
                        f"file path; got {type(value).__name__}")
    return plain


def _yaml_config(path: Path) -> dict:
    import yaml

    loaded = yaml.safe_load(path.read_text()) or {}
    if not isinstance(loaded, dict):
        raise TypeError(f"config file {path} must hold a mapping of names to values")
    loaded.pop("wandb_version", None)              # W&B's config-defaults.yaml wraps values as {value: ...}
    return {k: v["value"] if isinstance(v, dict) and "value" in v else v for k, v in loaded.items()}


def config_key(key) -> str:
    if not isinstance(key, str) or not key.strip("-"):
        raise TypeError(f"config keys must be non-empty strings; got {key!r}")
    return key.strip("-")                          # "--lr" from argparse is "lr", as in W&B


# -- define_metric -----------------------------------------------------------------------------------

SUMMARY_KINDS = ("min", "max", "mean", "best", "last", "none")     # W&B's define_metric(summary=...)
GOALS = ("minimize", "maximize")


def parse_summary(summary) -> frozenset[str]:
    """{"min", "max"} from "min,max" or ["min", "max"]; ValueError naming a kind W&B does not have."""
    parts = summary.split(",") if isinstance(summary, str) else list(summary)
    kinds = frozenset(str(p).strip() for p in parts)
    unknown = sorted(kinds - set(SUMMARY_KINDS))
    if unknown or not kinds:
        raise ValueError(f"define_metric(summary={summary!r}): unknown kind {', '.join(unknown) or 'none given'}; "
                         f"choose from: {', '.join(SUMMARY_KINDS)}")
    return kinds


def fold(state: dict | None, value) -> dict:
    """Running min, max, sum, count and last of one metric after `value` (NaN counts only as "last")."""
    state = dict(state or {"min": None, "max": None, "sum": 0.0, "count": 0, "last": None})
    state["last"] = value
    if not (isinstance(value, float) and math.isnan(value)):
        state["min"] = value if state["min"] is None else min(state["min"], value)
        state["max"] = value if state["max"] is None else max(state["max"], value)
        state["sum"], state["count"] = state["sum"] + value, state["count"] + 1
    return state


def aggregate(kinds: frozenset[str], goal: str | None, state: dict) -> dict:
    """The summary `kinds` of a folded metric, e.g. {"min": 0.1, "max": 0.9}; "best" is the max for
    goal="maximize", else the min."""
    found = {"min": state["min"], "max": state["max"], "last": state["last"],
             "mean": state["sum"] / state["count"] if state["count"] else None}
    found["best"] = found["max" if goal == "maximize" else "min"]
    return {k: found[k] for k in ("min", "max", "mean", "best", "last") if k in kinds}


class MetricSummaries:
    """What `define_metric(name, summary=..., goal=...)` asked for. A defined key's summary is a dict of
    its aggregates over every value the run logged for it ({"max": 0.93}), as in W&B; "none" leaves the
    key out of the summary; other keys keep their last value. Names may hold '*' globs ("val/*")."""

    def __init__(self, history):
        self._history = history                      # key -> the values the store already holds for it
        self._rules: dict[str, tuple[frozenset[str], str | None]] = {}
        self._states: dict[str, dict] = {}           # defined key -> `fold` state over its values so far

    def define(self, name: str, summary, goal: str | None, overwrite: bool | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"define_metric needs a metric name; got {name!r}")
        if goal is not None and goal not in GOALS:
            raise ValueError(f"define_metric(goal={goal!r}): choose one of: {', '.join(GOALS)}")
        if summary is None:
            return
        kinds, old = parse_summary(summary), self._rules.get(name, (frozenset(), None))
        kinds, goal = (kinds, goal) if overwrite else (kinds | old[0], goal or old[1])
        if "best" in kinds and goal is None:
            raise ValueError(f"define_metric({name!r}, summary='best') needs goal='minimize' or 'maximize'")
        self._rules[name] = (kinds, goal)

    def _rule(self, key: str):
        if key in self._rules:
            return self._rules[key]
        return next((rule for pattern, rule in self._rules.items() if fnmatch.fnmatchcase(key, pattern)), None)

    def summary_of(self, numbers: dict) -> dict:
        """The summary values for one logged row of numbers (call once per written row)."""
        summary = {}
        for key, value in numbers.items():
            rule = self._rule(key)
            if rule is None:
                summary[key] = value
                continue
            if key not in self._states:              # values logged before, or before a resume
                for earlier in self._history(key):
                    self._states[key] = fold(self._states.get(key), earlier)
            self._states[key] = fold(self._states.get(key), value)
            if "none" not in rule[0]:
                summary[key] = aggregate(rule[0], rule[1], self._states[key])
        return summary
