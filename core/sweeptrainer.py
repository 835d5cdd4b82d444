"""Whether a sweep suits the built-in trainer: its parameters are TrainConfig fields, every value
they can give makes a valid config (and, in a hosted demo, passes its caps), and what it searches
is used by its models.

    check_trainer(spec, demo_limits())     # SweepConfigError naming the parameter, the value and the limit
    error, warnings = trainer_problems(spec)   # the same as one line, plus warnings; never raises
    unused_model_settings(spec)            # e.g. dropout searched while the only model is the mlp

`core.sweepjobs.check_sweep` (the Sweeps page) and `python -m core sweep create/agent` use these.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from core.errors import first_line
from core.sweepparams import ParamSpec
from core.sweepspec import SweepSpec
from core.sweeptext import SweepConfigError, clip, fail, show

TRAINER_METRICS = ("val_loss", "val_acc", "train_loss", "train_acc")
MODEL_SETTINGS = {"dropout": {"cnn"}, "width": {"cnn"}, "hidden": {"mlp"}, "activation": {"mlp"}}


def _reason(message: str, name: str) -> str:
    """What a ConfigError about field `name` says is allowed, without its leading 'name: value'."""
    _, sep, tail = message.partition(" is not allowed: ")
    if message.startswith(f"{name}: "):
        message = tail if sep else message[len(name) + 2:]
    return clip(message, 400)                  # room for a folder's path


def check_trainer(spec: SweepSpec, limits: Any = None) -> None:
    """Refuse a sweep whose runs the built-in trainer would fail: each value a parameter can give (the
    constant, every `values` entry, both ends of a range: `core.sweepsample.candidate_values`) must
    make a valid TrainConfig with the sweep's constants, one whose data can be had
    (`core.datacheck.early_data_problem`: dataset files present, a cnn on images) and, given demo
    `limits`, pass `core.demo.check_demo`. The SweepConfigError names the parameter, the value and
    the limit or the problem."""
    from core.config import ConfigError, TrainConfig
    from core.sweepsample import candidate_values

    constants = sweep_constants(spec)
    try:
        _check_config(TrainConfig(**constants), limits)
    except ConfigError as exc:
        message = clip(str(exc), 300)
        named = any(message.startswith(f"{name}: ") for name in constants)
        raise SweepConfigError(("parameters." if named else "parameters: ") + message) from None
    for p in (p for p in spec.parameters if p.distribution != "constant"):
        seen: set[str] = set()
        for label, value in candidate_values(p, spec.method):
            key = json.dumps(value, sort_keys=True, default=repr)
            if key in seen:
                continue
            seen.add(key)
            try:
                _check_config(TrainConfig(**{**constants, p.name: value}), limits)
            except ConfigError as exc:
                reason = _reason(str(exc), p.name)
                raise fail(p.where, f"{_origin(p, label, value)} is not allowed: {reason}") from None


def sweep_constants(spec: SweepSpec) -> dict[str, Any]:
    """The parameters the sweep holds fixed, by name."""
    return {p.name: p.value for p in spec.parameters if p.distribution == "constant"}


def _check_config(config, limits: Any) -> None:
    """ConfigError when the demo's `limits` refuse `config`, or when its data cannot be had."""
    from core.config import ConfigError
    from core.datacheck import early_data_problem
    from core.demo import check_demo

    check_demo(config, limits)
    if problem := early_data_problem(config):
        raise ConfigError(problem)


def _origin(p: ParamSpec, label: str, value: Any) -> str:
    """'values entry 0', or for ranges 'uniform can give -1 (min), which'."""
    if p.distribution == "constant" or p.distribution.startswith("categorical"):
        return f"{label} {show(value)}"
    shown = f"{value:.10g}" if isinstance(value, float) else show(value)
    return f"{p.distribution} can give {shown} ({label}), which"


def trainer_problems(spec: SweepSpec) -> tuple[str | None, list[str]]:
    """(error, warnings) for running this spec with the built-in trainer (TrainConfig fields): every
    value a parameter can give (each `values` entry, both ends of each range) must make a valid config
    and, in a hosted demo (LAB_DEMO=1), pass the demo's caps, as on the Train page."""
    from core.config import TrainConfig
    from core.demo import demo_limits

    fields = list(TrainConfig.model_fields)
    for p in spec.parameters:
        if p.name not in fields:
            hint = difflib.get_close_matches(p.name, fields, n=1)
            tail = f" (did you mean {hint[0]!r}?)" if hint else f"; use one of: {', '.join(fields)}"
            return f"parameters.{p.name}: not a setting of the built-in trainer{tail}", []
    try:
        check_trainer(spec, demo_limits())
    except SweepConfigError as exc:
        return first_line(exc), []
    pairs, valid = data_model_pairs(spec, demo_limits())
    if pairs and not valid:
        return f"parameters.dataset, parameters.model: no dataset and model the sweep can draw go together: " \
               f"{pairs[0]}", []
    warnings = unused_model_settings(spec) + [f"parameters.dataset, parameters.model: {pair}; those runs will fail"
                                              for pair in pairs]
    if spec.metric and spec.metric.name not in TRAINER_METRICS:
        warnings.append(f"metric.name: the built-in trainer logs {', '.join(TRAINER_METRICS)}, "
                        f"not {spec.metric.name!r}: its runs will have no value")
    return None, warnings


def data_model_pairs(spec: SweepSpec, limits: Any = None, most: int = 64) -> tuple[list[str], int]:
    """When the sweep draws both its dataset and its model from lists: (one line per pair that cannot
    run, e.g. a cnn on 2-D points or, given demo `limits`, a model too large for that dataset's inputs;
    how many pairs can). `check_trainer` checks each parameter with the other's constant or default;
    this checks them together (up to `most` pairs), the same way."""
    from core.config import ConfigError, TrainConfig

    params = {p.name: p for p in spec.parameters}
    dataset, model = params.get("dataset"), params.get("model")
    if dataset is None or model is None or not (dataset.distribution.startswith("categorical")
                                                 and model.distribution.startswith("categorical")):
        return [], 0
    if len(dataset.values) * len(model.values) > most:
        return [], 0
    constants = sweep_constants(spec)
    problems, valid = [], 0
    for data_name in dict.fromkeys(dataset.values):
        for model_name in dict.fromkeys(model.values):
            try:
                _check_config(TrainConfig(**{**constants, "dataset": data_name, "model": model_name}), limits)
            except ConfigError as exc:
                problems.append(f"dataset {show(data_name)} with model {show(model_name)}: "
                                f"{clip(first_line(exc), 200)}")
            else:
                valid += 1
    return problems, valid


def unused_model_settings(spec: SweepSpec) -> list[str]:
    """Warnings for searched settings that none of the sweep's models use (e.g. dropout with mlp)."""
    from core.config import TrainConfig

    params = {p.name: p for p in spec.parameters}
    model = params.get("model")
    if model is None:
        models = {TrainConfig.model_fields["model"].default}
    elif model.distribution == "constant":
        models = {model.value}
    elif model.distribution == "categorical":
        models = set(model.values)
    else:
        return []
    notes = []
    for name, users in MODEL_SETTINGS.items():
        p = params.get(name)
        if p is not None and p.distribution != "constant" and not models & users:
            notes.append(f"parameters.{name}: model {', '.join(sorted(map(str, models)))} does not use "
                         f"{name} (only {', '.join(sorted(users))} does), so its runs differ only by chance")
    return notes
