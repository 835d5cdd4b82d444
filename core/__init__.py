"""Torch Lab's engine: datasets, models, the training loop, checkpoints, prediction and the store.

    import core
    for m in core.train(core.TrainConfig(dataset="digits", epochs=5)):
        print(m.epoch, m.val_acc)

Attributes are imported lazily so `python -m core --help` and config validation stay quick.
"""

from importlib import import_module

_EXPORTS = {
    "TrainConfig": "core.config", "ConfigError": "core.config",
    "train": "core.training", "EpochMetrics": "core.training", "Outcome": "core.training",
    "TrainControl": "core.control", "RunStatus": "core.status",
    "load_dataset": "core.datasets", "build_model": "core.models",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'core' has no attribute {name!r}")
