"""Training configuration: one frozen, validated, JSON-round-trippable record.

    cfg = TrainConfig(dataset="digits", model="mlp", epochs=20)
    cfg2 = TrainConfig.from_json(cfg.to_json())      # equal to cfg
    cfg.replace(lr=3e-4)                             # a new, re-validated config

Every field is also a CLI flag (`--batch-size`). Invalid values raise `ConfigError` with one line
naming the field, the value and what is allowed. Numbers must be finite (no NaN or infinity, also not
as text such as "inf" or "1e999") and never booleans (`True` is not a batch size of 1). Every number
has an upper limit: epoch counts (epochs, step_size, patience, plateau_patience, lr-table epochs) at
most MAX_EPOCHS, max_samples at most MAX_SAMPLES, min_lr at most MAX_LR, min_delta at most
MAX_MIN_DELTA and grad_clip at most MAX_GRAD_CLIP.

LR table schedule (`schedule="table"`): `lr_table={3: 1e-4, 6: 1e-5}` means epochs 1-2 train at `lr`,
epochs 3-5 at 1e-4 and epoch 6 onwards at 1e-5 (keys are 1-based epoch numbers, each entry taking
effect at the *start* of that epoch). The classic template applied `{e: lr}` after its 0-based epoch
`e` had finished, so its `{2: 5e-5}` corresponds to our `{4: 5e-5}`.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.paths import check_folder_text

MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 1 << 20
MIN_LR = 1e-12
MAX_LR = 100.0
MAX_SAMPLES = 100_000_000           # far above any dataset the lab loads into memory
MAX_MIN_DELTA = 1e6                 # improvements are changes of a loss or an accuracy
MAX_GRAD_CLIP = 1e6                 # a gradient-norm limit above this never clips

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("none", "table", "step", "cosine", "plateau", "onecycle")
ACTIVATIONS = ("relu", "tanh", "gelu", "sigmoid", "leaky_relu")
LOSSES = ("cross_entropy",)
MONITORS = ("val_loss", "val_acc")
DEVICES = ("auto", "cpu", "cuda")


INT_FIELDS = ("num_samples", "max_samples", "image_size", "width", "batch_size", "epochs", "step_size",
              "plateau_patience", "patience", "seed")
FLOAT_FIELDS = ("val_fraction", "noise", "dropout", "lr", "momentum", "weight_decay", "label_smoothing",
                "grad_clip", "gamma", "min_lr", "min_delta")
HIDDEN_RULE = "at most 16 sizes, each between 1 and 65536"
CLIP_OFF_VALUES = (0, "0", "none", "None", "")  # grad_clip values that mean no clipping


class ConfigError(ValueError):
    """A configuration value a user supplied is not allowed; the message is one line."""


class TrainConfig(BaseModel):
    """Everything that defines a training run. Frozen: use `replace()` for a changed copy."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False, validate_default=True,
                              allow_inf_nan=False)       # NaN and infinity, also as text ("inf"), are refused

    # data
    dataset: str = Field("digits", description="dataset name, see `python -m core datasets`")
    data_root: str | None = Field(None, description="folder holding dataset files (default $LAB_HOME/data)")
    download: bool = Field(False, description="download missing dataset files when the network allows")
    val_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="share of samples held out for validation")
    num_samples: int = Field(1000, ge=4, le=1_000_000, description="samples generated for 2-D toy sets")
    noise: float = Field(0.2, ge=0.0, le=10.0, description="noise of 2-D toy sets")
    max_samples: int | None = Field(None, ge=2, le=MAX_SAMPLES, description="cap on samples loaded from file datasets")
    image_size: int = Field(32, ge=4, le=512, description="side length images of image-folder are resized to")
    # model
    model: str = Field("mlp", description="model name: mlp, cnn or logreg")
    hidden: tuple[int, ...] = Field((32, 16), description="mlp hidden layer sizes, e.g. 32,16")
    width: int = Field(64, ge=1, le=4096, description="cnn channel width")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="cnn dropout probability (mlp and logreg have no dropout)")
    activation: Literal[ACTIVATIONS] = Field("relu", description="mlp activation")
    # optimisation
    optimizer: Literal[OPTIMIZERS] = Field("adam", description="optimizer")
    lr: float = Field(1e-3, ge=MIN_LR, le=MAX_LR, description="learning rate")
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="momentum of sgd and rmsprop; beta1 of adam and adamw")
    weight_decay: float = Field(0.0, ge=0.0, le=1.0, description="weight decay")
    batch_size: int = Field(64, ge=1, le=MAX_BATCH_SIZE, description="samples per training step")
    epochs: int = Field(10, ge=1, le=MAX_EPOCHS, description="maximum number of epochs")
    loss: Literal[LOSSES] = Field("cross_entropy", description="loss function")
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0, description="label smoothing of the loss")
    grad_clip: float | None = Field(None, gt=0.0, le=MAX_GRAD_CLIP,
                                    description="clip the gradient norm to this value (0 or none: off)")
    # schedule
    schedule: Literal[SCHEDULES] = Field("none", description="learning-rate schedule")
    lr_table: dict[int, float] = Field(default_factory=dict, description="{epoch: lr}, epoch 1-based")
    step_size: int = Field(10, ge=1, le=MAX_EPOCHS, description="epochs between decays (step schedule)")
    gamma: float = Field(0.1, gt=0.0, le=1.0, description="decay factor (step, plateau schedules)")
    min_lr: float = Field(0.0, ge=0.0, le=MAX_LR, description="lowest lr (cosine, plateau schedules)")
    plateau_patience: int = Field(2, ge=0, le=MAX_EPOCHS,
                                  description="epochs without improvement before decay (plateau)")
    # early stopping and checkpoints
    patience: int | None = Field(None, ge=1, le=MAX_EPOCHS,
                                 description="stop after this many epochs without improvement")
    min_delta: float = Field(0.0, ge=0.0, le=MAX_MIN_DELTA, description="smallest change that counts as improvement")
    monitor: Literal[MONITORS] = Field("val_loss", description="metric watched by early stopping and checkpoints")
    # runtime
    seed: int = Field(42, ge=0, lt=2**63, description="random seed")
    deterministic: bool = Field(False, description="use deterministic algorithms only")
    device: Literal[DEVICES] = Field("auto", description="auto, cpu or cuda")

    @field_validator(*INT_FIELDS, *FLOAT_FIELDS, mode="before")
    @classmethod
    def _plain_number(cls, value: Any, info) -> Any:
        """Refuse booleans (pydantic would read True as 1); grad_clip 0 or none means no clipping."""
        _refuse_bool(value)
        if info.field_name == "grad_clip" and isinstance(value, (int, float, str)) and value in CLIP_OFF_VALUES:
            return None
        return value

    @field_validator("data_root")
    @classmethod
    def _plain_path(cls, value: str | None) -> str | None:
        if value:
            check_folder_text(value)
        return value

    @field_validator("hidden", mode="before")
    @classmethod
    def _parse_hidden(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            for size in value:
                _refuse_bool(size)
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            try:
                return tuple(int(p) for p in parts)
            except ValueError:
                raise ValueError("must be comma-separated positive integers, e.g. 32,16") from None
        return value

    @field_validator("hidden")
    @classmethod
    def _check_hidden(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if len(value) > 16 or any(not 1 <= size <= 65536 for size in value):
            raise ValueError(f"must be {HIDDEN_RULE}")
        return value

    @field_validator("lr_table", mode="before")
    @classmethod
    def _parse_table(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = _parse_table_text(value)
        if isinstance(value, dict):
            for epoch, lr in value.items():
                _refuse_bool(epoch)
                _refuse_bool(lr)
        return value

    @field_validator("lr_table")
    @classmethod
    def _check_table(cls, value: dict[int, float]) -> dict[int, float]:
        for epoch, lr in value.items():
            if not (1 <= epoch <= MAX_EPOCHS and MIN_LR <= lr <= MAX_LR and math.isfinite(lr)):
                raise ValueError(f"entry {epoch}: {lr} is out of range")
        return dict(sorted(value.items()))

    @field_validator("dataset", "model")
    @classmethod
    def _known_name(cls, value: str, info) -> str:
        from core.registry import check_name

        check_name(info.field_name, value)
        return value

    @model_validator(mode="after")
    def _check_combination(self) -> "TrainConfig":
        if self.schedule == "table" and not self.lr_table:
            raise ValueError(f"lr_table: schedule 'table' needs at least one {{epoch: lr}} entry "
                             f"(allowed: {allowed('lr_table')})")
        return self

    # -- construction helpers -------------------------------------------------------------------

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigError(describe_error(exc, values)) from None

    def replace(self, **changes: Any) -> "TrainConfig":
        """A new config with `changes` applied and validated again."""
        return TrainConfig(**{**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        if not isinstance(values, dict):
            raise ConfigError(f"config must be a mapping of field names to values, got {type(values).__name__}")
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"config is not valid JSON: {exc}") from None
        return cls.from_dict(values)

    @classmethod
    def field_help(cls) -> dict[str, str]:
        """Field name -> description, for CLI help and form tooltips."""
        return {name: info.description or "" for name, info in cls.model_fields.items()}


def _refuse_bool(value: Any) -> None:
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")


TABLE_FORMAT = 'must look like 3:1e-4,6:1e-5 (epoch:lr pairs) or {"3": 1e-4, "6": 1e-5}'


def _parse_table_text(text: str) -> Any:
    """Parse '3:1e-4,6:1e-5' or its JSON form into {3: 1e-4, 6: 1e-5} (values checked by the field)."""
    if text.strip().startswith("{"):
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            raise ValueError(TABLE_FORMAT) from None
    table = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        epoch, _, lr = pair.partition(":")
        try:
            table[int(epoch)] = float(lr)
        except ValueError:                          # also a pair without ':' (float of '')
            raise ValueError(TABLE_FORMAT) from None
    return table


def describe_error(exc: ValidationError, values: dict[str, Any]) -> str:
    """One line for the first problem in a pydantic error: field, value given, what is allowed."""
    err = exc.errors()[0]
    message = err["msg"].removeprefix("Value error, ")
    if not err["loc"]:                              # a rule across fields: its message names them
        return message
    field, *inner = (str(part) for part in err["loc"])
    if err["type"] == "extra_forbidden":
        return f"unknown config field {shown(field)}; valid fields: {', '.join(TrainConfig.model_fields)}"
    if inner:
        message = f"entry {'.'.join(inner)}: {message}"
    limits = allowed(field)
    if limits and limits not in message:
        message += f" (allowed: {limits})"
    return f"{field}: {shown(values.get(field, err.get('input')))} is not allowed: {message}"


def shown(value: Any, max_chars: int = 80) -> str:
    """`repr(value)` on one line, shortened to about `max_chars` (a 5000-character path stays readable)."""
    text = repr(value).replace("\n", "\\n")
    if len(text) <= max_chars:
        return text
    return f"{text[:max_chars - 20]}... ({len(text)} characters)"


def allowed(field: str) -> str:
    """What a field accepts, from its bounds: e.g. 'a finite number with 1e-12 <= lr <= 100'."""
    if field == "hidden":
        return HIDDEN_RULE
    if field == "lr_table":
        return f"epoch:lr pairs with 1 <= epoch <= {MAX_EPOCHS} and {MIN_LR:g} <= lr <= {MAX_LR:g}"
    if field not in INT_FIELDS and field not in FLOAT_FIELDS:
        return ""
    low = high = ""
    for bound in TrainConfig.model_fields[field].metadata:
        low = _bound(bound, "ge", "{} <= ") or _bound(bound, "gt", "{} < ") or low
        high = _bound(bound, "le", " <= {}") or _bound(bound, "lt", " < {}") or high
    kind = "an integer" if field in INT_FIELDS else "a finite number"
    off = ", or none for off" if TrainConfig.model_fields[field].default is None else ""
    return f"{kind} with {low}{field}{high}{off}"


def _bound(bound: Any, name: str, template: str) -> str:
    value = getattr(bound, name, None)
    return "" if value is None else template.format(value if isinstance(value, int) else f"{value:g}")
