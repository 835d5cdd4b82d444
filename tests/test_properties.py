"""Property tests (Hypothesis): config validation and the path guard, over thousands of inputs."""

import math
import os
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import ConfigError, TrainConfig
from core.paths import UnsafePath, resolve_inside, safe_relative

NUMERIC = {"lr": (1e-12, 100.0), "momentum": (0.0, 1.0), "weight_decay": (0.0, 1.0), "dropout": (0.0, 1.0),
           "batch_size": (1, 1 << 20), "epochs": (1, 100_000), "noise": (0.0, 10.0), "val_fraction": (0.0, 1.0),
           "min_lr": (0.0, 100.0), "min_delta": (0.0, 1e6), "grad_clip": (0.0, 1e6), "gamma": (0.0, 1.0),
           "label_smoothing": (0.0, 1.0), "step_size": (1, 100_000), "patience": (1, 100_000),
           "plateau_patience": (0, 100_000), "max_samples": (2, 100_000_000), "num_samples": (4, 1_000_000),
           "image_size": (4, 512), "width": (1, 4096), "seed": (0, 2**63 - 1)}
OPTIONAL = {"grad_clip", "patience", "max_samples"}              # None (off) is a valid value
NON_FINITE_TEXT = ["inf", "-inf", "+inf", "Infinity", "nan", "NaN", "-nan", "1e999", "-1e999", " inf ", "1e-400"]
numbers_as_text = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(str),
                            st.integers(-10**30, 10**30).map(str), st.sampled_from(NON_FINITE_TEXT))
anything = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**12, 10**12),
                     st.integers(-10**400, 10**400), st.text(max_size=12), numbers_as_text, st.booleans(), st.none(),
                     st.lists(st.integers(), max_size=2))


def check_one_line_error(exc: ConfigError, field: str) -> None:
    message = str(exc)
    assert message.startswith(f"{field}:") and "\n" not in message and "allowed" in message, message
    assert len(message) < 400, message


@settings(max_examples=3000, deadline=None)
@given(field=st.sampled_from(sorted(NUMERIC)), value=anything)
def test_a_numeric_field_is_valid_or_named_in_a_one_line_error(field, value):
    try:
        config = TrainConfig(**{field: value})
    except ConfigError as exc:
        check_one_line_error(exc, field)
        return
    assert not isinstance(value, bool), f"{field} accepted {value!r}"
    accepted = getattr(config, field)
    assert TrainConfig.from_json(config.to_json()) == config
    if accepted is None:
        assert field in OPTIONAL
        return
    low, high = NUMERIC[field]
    assert isinstance(accepted, (int, float)) and math.isfinite(accepted) and low <= accepted <= high


@settings(max_examples=500, deadline=None)
@given(table=st.one_of(st.dictionaries(st.one_of(st.integers(-10, 10**12), st.booleans(), st.sampled_from(["3", "x"])),
                                       anything, max_size=3),
                       st.lists(st.tuples(st.integers(-5, 10**7).map(str), numbers_as_text), max_size=3)
                       .map(lambda pairs: ",".join(f"{e}:{v}" for e, v in pairs)),
                       st.text(max_size=20)))
def test_an_lr_table_is_valid_or_named_in_a_one_line_error(table):
    try:
        config = TrainConfig(schedule="table", lr_table=table)
    except ConfigError as exc:
        check_one_line_error(exc, "lr_table")
        return
    assert config.lr_table and TrainConfig.from_json(config.to_json()) == config
    for epoch, lr in config.lr_table.items():
        assert 1 <= epoch <= 100_000 and 1e-12 <= lr <= 100.0


@settings(max_examples=500, deadline=None)
@given(values=st.dictionaries(st.sampled_from(sorted(TrainConfig.model_fields) + ["bogus", "LR"]), anything,
                              max_size=4))
def test_any_mapping_gives_a_config_that_round_trips_or_a_config_error(values):
    try:
        config = TrainConfig(**values)
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message and len(message) < 1000
        assert any(name in message for name in values) or "schedule 'table'" in message, message
        return
    assert TrainConfig.from_json(config.to_json()) == config


TRICKY = ["..", ".", "/", "\\", "%2e", "%2f", "\u2215", "\uff0f", "\x00", "\n", "C:", "con", "a", "b.txt",
          "....//", "?", "#", ";", "file:", " ", "\u0301", "é"]
names = st.one_of(st.text(max_size=40), st.lists(st.sampled_from(TRICKY), min_size=1, max_size=6).map("".join),
                  st.lists(st.sampled_from(TRICKY + ["x"]), min_size=1, max_size=5).map("/".join))


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=names)
def test_the_path_guard_never_leaves_its_root(tmp_path, name):
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    try:
        target = resolve_inside(root, name)
    except UnsafePath:
        return
    assert root.resolve() in target.parents
    assert safe_relative(name) == name and ".." not in name.split("/")


def test_symlinks_that_point_outside_are_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(UnsafePath, match="outside"):
        resolve_inside(root, "link/secret.txt")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=names)
def test_artifact_names_create_nothing_outside_the_store(tmp_path, name):
    from core.tracker import Store

    home = tmp_path / "lab"
    os.environ["LAB_HOME"] = str(home)
    outside_before = sorted(p.name for p in tmp_path.iterdir())
    source = tmp_path / "src.txt"
    source.write_text("x")
    store = Store(f"sqlite:///{home / 'lab.db'}")
    try:
        artifact = store.log_artifact("a", "data", {name: source})
        store.download_artifact(artifact, home / "out" / uuid.uuid4().hex)
    except UnsafePath:
        pass
    after = sorted(p.name for p in tmp_path.iterdir())
    assert set(after) - set(outside_before) <= {"src.txt", "lab"}
    for path in Path(home).rglob("*"):
        assert home.resolve() in path.resolve().parents or path.resolve() == home.resolve()
