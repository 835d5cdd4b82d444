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
           "batch_size": (1, 1 << 20), "epochs": (1, 100_000), "noise": (0.0, 10.0), "val_fraction": (0.0, 1.0)}
anything = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**12, 10**12),
                     st.text(max_size=12), st.booleans(), st.none(), st.lists(st.integers(), max_size=2))


@settings(max_examples=1500, deadline=None)
@given(field=st.sampled_from(sorted(NUMERIC)), value=anything)
def test_a_numeric_field_is_valid_or_named_in_a_one_line_error(field, value):
    try:
        config = TrainConfig(**{field: value})
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(f"{field}:") and "\n" not in message and "allowed" in message
        return
    accepted = getattr(config, field)
    low, high = NUMERIC[field]
    assert isinstance(accepted, (int, float)) and math.isfinite(accepted) and low <= accepted <= high


@settings(max_examples=300, deadline=None)
@given(values=st.dictionaries(st.sampled_from(sorted(TrainConfig.model_fields) + ["bogus", "LR"]), anything,
                              max_size=4))
def test_any_mapping_gives_a_config_that_round_trips_or_a_config_error(values):
    try:
        config = TrainConfig(**values)
    except ConfigError as exc:
        assert "\n" not in str(exc)
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
