"""Hosted-demo mode (`LAB_DEMO=1`): caps that keep a public instance responsive and safe.

    limits = demo_limits()          # None unless LAB_DEMO=1
    check_demo(config, limits)      # ConfigError naming the field, the value and the cap
    describe(limits)                # lines the pages show, so visitors know the caps

In demo mode only the bundled and generated datasets can be used (no server file paths, no
downloads), and epochs, model size, dataset size, wall time per run and concurrent runs are capped.
Each cap can be changed with an environment variable (LAB_DEMO_MAX_EPOCHS and so on).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

from core.config import ConfigError, TrainConfig

DEMO_DATASETS = ("threshold", "digits", "moons", "circles", "spiral", "xor")


@dataclass(frozen=True)
class DemoLimits:
    max_epochs: int = 30
    max_parameters: int = 300_000
    max_samples: int = 5_000
    max_seconds: int = 120
    max_jobs: int = 2


def demo_limits() -> DemoLimits | None:
    """The caps in force, or None when the lab is not a hosted demo."""
    if os.environ.get("LAB_DEMO", "").strip().lower() not in ("1", "true", "yes"):
        return None
    values = {}
    for f in fields(DemoLimits):
        raw = os.environ.get(f"LAB_DEMO_{f.name.upper()}")
        if raw is not None:
            values[f.name] = int(raw)
    return DemoLimits(**values)


def check_demo(config: TrainConfig, limits: DemoLimits | None, num_parameters: int | None = None) -> None:
    """Raise ConfigError when `config` exceeds a demo cap (no-op without limits)."""
    if limits is None:
        return
    if config.dataset not in DEMO_DATASETS:
        raise ConfigError(f"dataset: {config.dataset!r} is not available in the demo; choose one of: "
                          f"{', '.join(DEMO_DATASETS)}")
    if config.data_root or config.download:
        raise ConfigError("data_root: server folders and downloads are not available in the demo")
    if config.epochs > limits.max_epochs:
        raise ConfigError(f"epochs: {config.epochs} is over the demo's cap of {limits.max_epochs}")
    if config.num_samples > limits.max_samples:
        raise ConfigError(f"num_samples: {config.num_samples} is over the demo's cap of {limits.max_samples}")
    if num_parameters is not None and num_parameters > limits.max_parameters:
        raise ConfigError(f"model: {num_parameters:,} parameters is over the demo's cap of "
                          f"{limits.max_parameters:,}; use smaller hidden sizes or width")


def describe(limits: DemoLimits) -> str:
    return (f"Demo limits: up to {limits.max_epochs} epochs, {limits.max_parameters:,} model parameters, "
            f"{limits.max_samples:,} generated samples, {limits.max_seconds} s per run and {limits.max_jobs} runs "
            f"training at once; datasets {', '.join(DEMO_DATASETS)}.")
