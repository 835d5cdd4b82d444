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
    ("lr_table", {0: 0.1}, "epoch >= 1"),
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
