"""The training form as data: which config fields a form shows, grouped, with widget kinds and help.

    for group, fields in FORM_GROUPS: ...            # FieldSpec(name, kind, choices, help)
    for group, expanded, fields in visible_groups(demo=True): ...   # what the form shows, and how
    values = default_form_values()                   # {field: text or bool}, what a form starts with
    config = config_from_form(values)                # TrainConfig, or ConfigError naming the field

Numbers are edited as text so that "1e-3" works and a bad entry gets the config's own message.
Empty text means "off" for the optional fields (grad clip, patience, data root, sample cap).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

from core.config import TrainConfig
from core.registry import DATASET_NAMES, MODEL_NAMES

GROUPS = {
    "Data": ("dataset", "num_samples", "noise", "val_fraction", "max_samples", "data_root", "image_size"),
    "Model": ("model", "hidden", "width", "dropout", "activation"),
    "Optimisation": ("optimizer", "lr", "momentum", "weight_decay", "batch_size", "epochs", "label_smoothing",
                     "grad_clip"),
    "Schedule": ("schedule", "lr_table", "step_size", "gamma", "min_lr", "plateau_patience"),
    "Early stopping": ("patience", "min_delta", "monitor"),
    "Runtime": ("seed", "deterministic", "device"),
}
OPTIONAL = ("grad_clip", "patience", "data_root", "max_samples")
HIDDEN_IN_DEMO = ("data_root",)
EXPANDED = ("Data", "Model", "Optimisation")        # groups the form opens at first


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: str                       # "choice", "flag" or "text"
    choices: tuple[str, ...]
    help: str

    @property
    def label(self) -> str:
        return self.name.replace("_", " ")


def field_spec(name: str) -> FieldSpec:
    info = TrainConfig.model_fields[name]
    help_text = info.description or ""
    if name in OPTIONAL:
        help_text += " (leave empty for off / default)"
    if name == "dataset":
        return FieldSpec(name, "choice", DATASET_NAMES, help_text)
    if name == "model":
        return FieldSpec(name, "choice", MODEL_NAMES, help_text)
    if typing.get_origin(info.annotation) is typing.Literal:
        return FieldSpec(name, "choice", tuple(typing.get_args(info.annotation)), help_text)
    if info.annotation is bool:
        return FieldSpec(name, "flag", (), help_text)
    return FieldSpec(name, "text", (), help_text)


FORM_GROUPS = tuple((group, tuple(field_spec(n) for n in names)) for group, names in GROUPS.items())
assert {n for _, names in GROUPS.items() for n in names} | {"download", "loss"} == set(TrainConfig.model_fields)


def visible_groups(demo: bool = False) -> list[tuple[str, bool, tuple[FieldSpec, ...]]]:
    """(group, opened at first, fields shown) per form group; a hosted demo hides HIDDEN_IN_DEMO."""
    hidden = HIDDEN_IN_DEMO if demo else ()
    return [(group, group in EXPANDED, tuple(f for f in fields if f.name not in hidden))
            for group, fields in FORM_GROUPS]


def to_text(value) -> str | bool:
    """A config value as a form shows it."""
    if isinstance(value, bool):
        return value
    if value is None:
        return ""
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    if isinstance(value, dict):
        return ",".join(f"{k}:{v}" for k, v in value.items())
    return str(value)


def default_form_values(config: TrainConfig | None = None) -> dict:
    config = config or TrainConfig()
    return {name: to_text(getattr(config, name)) for _, fields in FORM_GROUPS for name in (f.name for f in fields)}


def config_from_form(values: dict) -> TrainConfig:
    """Form values (text, bools) -> a validated TrainConfig; empty optional fields mean None."""
    given = {}
    for name, value in values.items():
        if isinstance(value, str):
            value = value.strip()
            if value == "" and name in OPTIONAL:
                value = None
        given[name] = value
    return TrainConfig(**given)
