"""Names of the datasets and models the lab knows, and lookups that list the valid names.

Kept free of torch so that validating a config stays cheap; `core.datasets` and `core.models` hold
the builders under exactly these names (a test checks they agree).
"""

from __future__ import annotations

from typing import Mapping, TypeVar

DATASET_NAMES = ("threshold", "digits", "moons", "circles", "spiral", "xor",
                 "mnist", "fashion-mnist", "cifar10", "image-folder")
MODEL_NAMES = ("mlp", "cnn", "logreg")

_KNOWN = {"dataset": DATASET_NAMES, "model": MODEL_NAMES}
T = TypeVar("T")


def check_name(kind: str, name: str) -> None:
    """Raise ValueError naming the valid choices when `name` is not a known `kind`."""
    valid = _KNOWN[kind]
    if name not in valid:
        raise ValueError(f"unknown {kind} {name!r}; choose one of: {', '.join(valid)}")


def choose(table: Mapping[str, T], kind: str, name: str) -> T:
    """`table[name]`, or a ValueError listing the valid names."""
    if name not in table:
        raise ValueError(f"unknown {kind} {name!r}; choose one of: {', '.join(table)}")
    return table[name]
