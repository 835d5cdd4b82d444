"""core.control: live changes typed on the Train page, checked like the config."""

import pytest

from core.config import ConfigError
from core.control import LIVE_FIELDS, LIVE_LABELS, live_changes


def test_live_labels_name_every_live_field_in_words():
    assert list(LIVE_LABELS) == list(LIVE_FIELDS)
    assert LIVE_LABELS == {"lr": "lr", "momentum": "momentum", "weight_decay": "weight decay",
                           "grad_clip": "grad clip"}


def test_blank_boxes_are_left_out_and_text_becomes_numbers():
    assert live_changes({"lr": " 1e-4 ", "momentum": "", "weight_decay": "  ", "grad_clip": "2"}) == \
        {"lr": 0.0001, "grad_clip": 2.0}
    assert live_changes({"lr": ""}) == {}


def test_a_bad_value_or_field_names_it():
    with pytest.raises(ConfigError, match="lr"):
        live_changes({"lr": "abc"})
    with pytest.raises(ValueError, match="cannot change \\['epochs'\\]"):
        live_changes({"epochs": "3"})
