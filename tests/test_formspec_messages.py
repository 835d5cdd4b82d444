"""core.formspec: messages in the Train form's words, the preview's config, and the live field groups;
core.errors.first_line, the one-line form of any exception."""

import errno

import pytest

from core.config import ConfigError
from core.errors import DataError, first_line
from core.formspec import (FORM_ERRORS, PREVIEW_FIELDS, default_form_values, error_text, form_message,
                           preview_config, visible_groups)


def test_command_line_advice_becomes_the_form_fields_name():
    mnist = ("mnist files not found: put t10k-images-idx3-ubyte.gz in /lab/data/MNIST/raw, pass --data-root, "
             "or use --download where the network allows")
    assert form_message(mnist) == ('mnist files not found: put t10k-images-idx3-ubyte.gz in /lab/data/MNIST/raw, '
                                   'or fill in the "data root" field')
    assert form_message("image-folder needs --data-root: a folder") == 'image-folder needs the "data root" field: a folder'
    assert form_message("cifar10 files not found in /x; put them there, or use --download") == \
        "cifar10 files not found in /x; put them there"
    assert form_message("dataset name, see `python -m core datasets`") == "dataset name"
    assert form_message("lr: 'abc' is not a number") == "lr: 'abc' is not a number"     # nothing to reword


def test_an_os_or_value_error_names_the_data_root_its_value_and_the_reason():
    root = "/tmp/" + "a" * 300
    text = error_text(OSError(errno.ENAMETOOLONG, "File name too long", root), {"data_root": root})
    assert text == ("data root: '/tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'... (305 characters) "
                    "cannot be used (File name too long); type an existing folder, or leave the field empty "
                    "for the lab's data folder")
    assert error_text(ValueError("embedded null byte"), {"data_root": "a\x00b"}) == (
        "data root: 'a\\x00b' cannot be used (embedded null byte); type an existing folder, or leave the field "
        "empty for the lab's data folder")
    assert error_text(OSError("disk gone\nmore"), {"data_root": ""}) == \
        "The dataset's files cannot be read (disk gone); check the data fields"
    user = DataError("image-folder needs --data-root: a folder")
    assert error_text(user, {}) == 'image-folder needs the "data root" field: a folder'
    assert {OSError, ValueError} <= set(FORM_ERRORS)


def test_the_preview_reads_only_the_data_fields():
    values = {**default_form_values(), "dataset": "moons", "num_samples": "300", "lr": "abc", "epochs": "0"}
    config = preview_config(values)                                 # a bad lr elsewhere does not hide it
    assert (config.dataset, config.num_samples, config.lr) == ("moons", 300, 1e-3)
    assert set(PREVIEW_FIELDS) == {"dataset", "num_samples", "noise", "val_fraction", "max_samples", "data_root",
                                   "image_size", "seed"}
    with pytest.raises(ConfigError, match="num_samples"):
        preview_config({**values, "num_samples": "many"})


def test_the_data_group_is_drawn_live_and_the_rest_in_the_form():
    assert [g for g, _, _ in visible_groups(live=True)] == ["Data"]
    assert [g for g, _, _ in visible_groups(live=False)] == ["Model", "Optimisation", "Schedule", "Early stopping",
                                                             "Runtime"]
    assert len(visible_groups()) == 6
    live_fields = [f.name for _, _, fields in visible_groups(demo=True, live=True) for f in fields]
    assert "data_root" not in live_fields and "dataset" in live_fields
    assert {f.key for _, _, fields in visible_groups() for f in fields} >= {"train_field.dataset", "train_field.lr"}


def test_first_line_gives_one_line_for_any_exception():
    assert first_line(ValueError("\n  bad value  \nsecond line")) == "bad value"
    assert first_line(RuntimeError()) == "RuntimeError"              # a blank message names the type
    assert first_line(KeyError("")) == "''"
    assert first_line(OSError("x" * 50), limit=10) == "x" * 10 + "…"
    assert first_line(OSError("short"), limit=10) == "short"
