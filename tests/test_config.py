import json
import math

import pytest

from core.config import ConfigError, TrainConfig


def test_defaults_are_valid_and_round_trip_through_json():
    cfg = TrainConfig(schedule="table", lr_table={3: 1e-4, 6: 1e-5}, hidden="64,32", grad_clip=1.0)
    again = TrainConfig.from_json(cfg.to_json())
    assert again == cfg
    assert again.lr_table == {3: 1e-4, 6: 1e-5}
    assert again.hidden == (64, 32)
    assert json.loads(cfg.to_json())["hidden"] == [64, 32]


def test_frozen_and_replace_revalidates():
    cfg = TrainConfig()
    with pytest.raises(Exception):
        cfg.lr = 0.1
    assert cfg.replace(lr=0.1).lr == 0.1
    with pytest.raises(ConfigError, match="lr"):
        cfg.replace(lr=-1)


@pytest.mark.parametrize("field,value,fragment", [
    ("lr", 0, "greater than or equal"),
    ("lr", -0.1, "lr: -0.1"),
    ("lr", float("nan"), "finite"),
    ("lr", "abc", "valid number"),
    ("lr", 1e-400, "lr: 0.0"),
    ("lr", 1000.0, "less than or equal to 100"),
    ("batch_size", 0, "batch_size: 0"),
    ("batch_size", 2.5, "batch_size: 2.5"),
    ("batch_size", 10**9, "less than or equal"),
    ("epochs", 0, "epochs: 0"),
    ("epochs", 10**9, "epochs"),
    ("dropout", 1.0, "dropout"),
    ("optimizer", "adagrad", "adam"),
    ("dataset", "imagenet", "choose one of: threshold, digits"),
    ("model", "resnet", "choose one of: mlp, cnn, logreg"),
    ("hidden", "32,x", "comma-separated"),
    ("hidden", "0", "between 1 and 65536"),
    ("device", "tpu", "auto"),
    ("momentum", 1.0, "momentum"),
    ("lr_table", {0: 0.1}, "1 <= epoch <= 100000"),
])
def test_bad_values_name_field_value_and_limit(field, value, fragment):
    with pytest.raises(ConfigError) as info:
        TrainConfig(**{field: value})
    message = str(info.value)
    assert field in message and fragment in message
    assert "\n" not in message


def test_unknown_field_lists_valid_fields():
    with pytest.raises(ConfigError, match="unknown config field 'learning_rate'.*lr"):
        TrainConfig(learning_rate=0.1)


def test_table_schedule_needs_entries_and_parses_pairs():
    with pytest.raises(ConfigError, match="lr_table"):
        TrainConfig(schedule="table")
    assert TrainConfig(schedule="table", lr_table="3:1e-4, 6:1e-5").lr_table == {3: 1e-4, 6: 1e-5}


def test_grad_clip_zero_means_off():
    assert TrainConfig(grad_clip=0).grad_clip is None
    assert TrainConfig(grad_clip="0.5").grad_clip == 0.5
    with pytest.raises(ConfigError, match="grad_clip"):
        TrainConfig(grad_clip=-1)
    with pytest.raises(ConfigError, match="grad_clip"):
        TrainConfig(grad_clip=math.inf)


def test_from_dict_rejects_non_mapping():
    with pytest.raises(ConfigError, match="mapping"):
        TrainConfig.from_dict([1, 2])
    with pytest.raises(ConfigError, match="not valid JSON"):
        TrainConfig.from_json("{oops")


@pytest.mark.parametrize("field,value", [
    ("min_lr", "inf"), ("min_lr", "1e999"), ("min_lr", math.inf), ("min_delta", "inf"), ("min_delta", "-inf"),
    ("min_delta", "1e999"), ("grad_clip", "inf"), ("grad_clip", "1e999"), ("grad_clip", math.inf),
    ("lr", "nan"), ("lr", "NaN"), ("momentum", "inf"), ("batch_size", math.inf), ("lr_table", {3: "inf"}),
    ("lr_table", "3:nan"),
])
def test_infinity_and_nan_are_refused_also_as_text(field, value):
    with pytest.raises(ConfigError) as info:
        TrainConfig(**{field: value})
    message = str(info.value)
    assert message.startswith(f"{field}: ") and "finite number" in message and "allowed:" in message
    assert "less than or equal" not in message                     # lr="nan" is not "too large"


@pytest.mark.parametrize("field", ["batch_size", "epochs", "seed", "patience", "max_samples", "step_size", "width",
                                   "lr", "momentum", "grad_clip", "min_delta", "dropout"])
@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_not_numbers(field, value):
    with pytest.raises(ConfigError, match=rf"^{field}: {value} is not allowed: must be a number, not true/false"):
        TrainConfig(**{field: value})


def test_booleans_inside_hidden_sizes_and_the_lr_table_are_refused():
    with pytest.raises(ConfigError, match="^hidden: .*true/false"):
        TrainConfig(hidden=(True, 8))
    with pytest.raises(ConfigError, match="^lr_table: .*true/false"):
        TrainConfig(schedule="table", lr_table={2: True})


@pytest.mark.parametrize("field,limit", [
    ("step_size", 100_000), ("patience", 100_000), ("plateau_patience", 100_000), ("max_samples", 100_000_000),
    ("min_lr", 100), ("min_delta", 1e6), ("grad_clip", 1e6),
])
def test_every_number_has_an_upper_limit_named_in_the_message(field, limit):
    assert getattr(TrainConfig(**{field: limit}), field) == limit
    with pytest.raises(ConfigError) as info:
        TrainConfig(**{field: limit * 10})
    message = str(info.value)
    assert message.startswith(f"{field}: {limit * 10!r} is not allowed") and f"{field} <= " in message


def test_lr_table_epochs_are_limited_and_bad_text_gets_the_format():
    with pytest.raises(ConfigError, match=r"^lr_table: .*1 <= epoch <= 100000"):
        TrainConfig(schedule="table", lr_table={10**12: 0.1})
    for text in ("x:1", "3", "{oops", "{" * 50_000):
        with pytest.raises(ConfigError, match="must look like 3:1e-4,6:1e-5"):
            TrainConfig(schedule="table", lr_table=text)


def test_every_number_field_is_checked_for_booleans_and_bounds():
    from core.config import FLOAT_FIELDS, INT_FIELDS

    numeric = {name for name, info in TrainConfig.model_fields.items()
               if info.annotation in (int, float, int | None, float | None)}
    assert numeric == set(INT_FIELDS) | set(FLOAT_FIELDS)
    for name in numeric:
        bounds = TrainConfig.model_fields[name].metadata
        assert any(hasattr(b, "le") or hasattr(b, "lt") for b in bounds), f"{name} has no upper limit"


def test_huge_values_are_shown_shortened_on_one_line():
    message = str(pytest.raises(ConfigError, TrainConfig, lr=10**400).value)
    assert message.startswith("lr: 1000") and "(401 characters)" in message and len(message) < 250


def test_momentum_help_says_it_is_adams_beta1():
    assert "beta1 of adam and adamw" in TrainConfig.field_help()["momentum"]


@pytest.mark.parametrize("root,fragment", [
    ("a\x00b", "NUL byte"), ("a" * 5000, "at most 4096"), ("x\ny", "control character"),
])
def test_unusable_data_root_text_is_refused(root, fragment):
    with pytest.raises(ConfigError, match=f"^data_root: .*{fragment}"):
        TrainConfig(data_root=root)
