"""Bad numbers and unusable folders, end to end: one-line errors naming the field, value and limit,
exit code 2 from `python -m core`, and no run (not even a store) created."""

import os
import subprocess
import sys

import pytest

from core.config import ConfigError, TrainConfig
from core.errors import USER_ERRORS
from core.paths import PathError, data_root, lab_home, user_folder
from tests.conftest import REPO

LONG_PART = "a" * 300                    # one folder name longer than the file system allows
LONG_PATH = "b" * 5000


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


@pytest.mark.parametrize("args,fragment", [
    (["--min-delta", "inf"], "min_delta: 'inf' is not allowed: Input should be a finite number"),
    (["--min-lr", "1e999"], "min_lr: '1e999' is not allowed"),
    (["--grad-clip", "inf"], "grad_clip: 'inf' is not allowed"),
    (["--lr", "nan"], "lr: 'nan' is not allowed: Input should be a finite number"),
    (["--step-size", "1000000000"], "step_size <= 100000"),
    (["--patience", "1000000000"], "patience <= 100000"),
    (["--plateau-patience", "1000000000"], "plateau_patience <= 100000"),
    (["--max-samples", "1000000000000"], "max_samples <= 100000000"),
    (["--schedule", "table", "--lr-table", "1000000000:0.1"], "1 <= epoch <= 100000"),
    (["--data-root", "~nobodyxyz/x"], "data_root '~nobodyxyz/x': cannot expand '~'"),
    (["--data-root", LONG_PATH], "at most 4096"),
    (["--dataset", "mnist", "--data-root", "/tmp/" + LONG_PART], "at most 255 bytes"),
])
def test_cli_refuses_bad_values_with_one_line_and_creates_no_run(args, fragment, tmp_path):
    db = tmp_path / "store" / "lab.db"
    db.parent.mkdir()
    done = cli("train", "--epochs", "1", *args, env={"LAB_STORE": f"sqlite:///{db}"})
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], done.stderr[-2000:]
    assert len(lines[0]) < 400
    assert not db.exists()                                       # no store was opened, so no run exists


def test_cli_refuses_an_unusable_lab_home_with_one_line(tmp_path):
    done = cli("runs", env={"LAB_HOME": "~nobodyxyz/lab"})
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: LAB_HOME '~nobodyxyz/lab': cannot expand '~' (no such user or no home "
                                   "folder); give the full path")


@pytest.mark.parametrize("text,fragment", [
    ("~nobodyxyz/x", "cannot expand '~'"), ("a\x00b", "NUL byte"), (LONG_PATH, "5000 characters long"),
    (LONG_PART, "at most 255 bytes"), ("x/" * 2100, "characters long"),
])
def test_unusable_folders_raise_a_user_error_naming_the_folder(text, fragment):
    with pytest.raises(PathError) as info:
        data_root(text)
    message = str(info.value)
    assert message.startswith("data_root ") and fragment in message and "\n" not in message and len(message) < 300
    assert isinstance(info.value, USER_ERRORS)


def test_usable_folders_resolve(tmp_path, monkeypatch):
    assert user_folder(str(tmp_path / "x" / ".." / "y"), "data_root") == tmp_path / "y"
    assert data_root(None) == lab_home() / "data"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert data_root("~/data") == tmp_path / "data"


def test_config_refuses_a_nul_byte_in_data_root_before_any_file_is_touched():
    with pytest.raises(ConfigError, match=r"^data_root: 'a\\x00b' is not allowed: contains a NUL byte"):
        TrainConfig(data_root="a\x00b")
