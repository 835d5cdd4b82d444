"""The training form as data: which config fields a form shows, grouped, with widget kinds and help.

    for group, fields in FORM_GROUPS: ...            # FieldSpec(name, kind, choices, help)
    for group, expanded, fields in visible_groups(demo=True): ...   # what the form shows, and how
    values = default_form_values()                   # {field: text or bool}, what a form starts with
    config = config_from_form(values)                # TrainConfig, or ConfigError naming the field
    preview = preview_config(values)                 # the data fields only: what the dataset preview shows
    except FORM_ERRORS as exc: st.error(error_text(exc, values))   # one line, in the form's words

Numbers are edited as text so that "1e-3" works and a bad entry gets the config's own message.
Empty text means "off" for the optional fields (grad clip, patience, data root, sample cap).
Messages written for the command line (`--data-root`) are reworded to name the form's fields.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass

from core import ui_keys as keys
from core.config import TrainConfig
from core.errors import USER_ERRORS, first_line
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
FORM_FIELDS = {name for names in GROUPS.values() for name in names}
HIDDEN_IN_DEMO = ("data_root",)
EXPANDED = ("Data", "Model", "Optimisation")        # groups the form opens at first
LIVE_GROUPS = ("Data",)        # drawn outside the Start form, so that the dataset preview follows them as they change
PREVIEW_FIELDS = (*GROUPS["Data"], "seed")          # what the dataset preview depends on (the seed picks the split)
FORM_ERRORS = (*USER_ERRORS, OSError, ValueError)   # what form values can raise on their way to a preview or a run
MAX_SHOWN_CHARS = 60                                # of a typed value quoted in a message


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: str                       # "choice", "flag" or "text"
    choices: tuple[str, ...]
    help: str

    @property
    def label(self) -> str:
        return self.name.replace("_", " ")

    @property
    def key(self) -> str:
        return keys.TRAIN_FIELD + self.name


def form_message(message: str) -> str:
    """`message`, written for the command line, in the form's words: a flag of a form field names the
    field ('the "data root" field'); advice about what the form has no field for (`--download`, a
    `python -m core` command) is left out."""
    message = re.sub(r",?\s*(?:or\s+)?use\s+--download(?:\s+where the network allows)?", "", message)
    message = re.sub(r",?\s*see `python -m core [^`]*`", "", message)
    message = re.sub(r"(?:or\s+)?pass\s+--([a-z][a-z-]*)", lambda m: f"or fill in {field_words(m[1])}", message)
    return re.sub(r"--([a-z][a-z-]*)", lambda m: field_words(m[1]), message)


def field_words(flag: str) -> str:
    """'the "data root" field' for a flag of a form field; the flag itself for any other."""
    name = flag.replace("-", "_")
    return f'the "{name.replace("_", " ")}" field' if name in FORM_FIELDS else f"--{flag}"


def field_spec(name: str) -> FieldSpec:
    info = TrainConfig.model_fields[name]
    help_text = form_message(info.description or "")
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
assert FORM_FIELDS | {"download", "loss"} == set(TrainConfig.model_fields)


def visible_groups(demo: bool = False, live: bool | None = None) -> list[tuple[str, bool, tuple[FieldSpec, ...]]]:
    """(group, opened at first, fields shown) per form group; a hosted demo hides HIDDEN_IN_DEMO.
    `live=True` keeps only the LIVE_GROUPS, `live=False` only the others; None keeps every group."""
    hidden = HIDDEN_IN_DEMO if demo else ()
    return [(group, group in EXPANDED, tuple(f for f in fields if f.name not in hidden))
            for group, fields in FORM_GROUPS if live is None or (group in LIVE_GROUPS) == live]


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


def preview_config(values: dict) -> TrainConfig:
    """The config the dataset preview loads: the form's PREVIEW_FIELDS over the defaults, so that a bad
    value elsewhere in the form (an lr of "abc") does not hide the preview. ConfigError as config_from_form."""
    return config_from_form({name: values[name] for name in PREVIEW_FIELDS if name in values})


def error_text(exc: Exception, values: dict) -> str:
    """One line for the page about `exc`, raised by the form's `values` (one of FORM_ERRORS): a user
    error's own message in the form's words; an OS or value error (a folder the system cannot use)
    names the data root field, its value and the reason."""
    if isinstance(exc, USER_ERRORS):
        return form_message(str(exc))
    reason = (exc.strerror if isinstance(exc, OSError) else None) or first_line(exc)
    reason = reason[:MAX_SHOWN_CHARS * 3]
    root = values.get("data_root")
    if isinstance(root, str) and root.strip():
        return (f"data root: {shorten(root.strip())} cannot be used ({reason}); type an existing folder, "
                "or leave the field empty for the lab's data folder")
    return f"The dataset's files cannot be read ({reason}); check the data fields"


def shorten(text: str) -> str:
    """`text` quoted for a message, cut to MAX_SHOWN_CHARS characters with its length said."""
    if len(text) <= MAX_SHOWN_CHARS:
        return repr(text)
    return f"{text[:MAX_SHOWN_CHARS]!r}... ({len(text)} characters)"
