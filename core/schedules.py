"""Learning-rate schedules as small pure functions of where training is.

Epochs are 1-based; `step` counts optimizer steps from 0 over the whole run. Each function matches
the PyTorch scheduler of the same idea (tests compare them): `step_lr` ~ StepLR, `cosine_lr` ~
CosineAnnealingLR(T_max=epochs), `onecycle_lr` ~ OneCycleLR(cycle_momentum=False), `plateau_lr` ~
ReduceLROnPlateau(threshold_mode="abs"). `table_lr` is the template's `{epoch: lr}` table (see
core.config for when an entry takes effect).
"""

from __future__ import annotations

import math
from typing import Sequence

from core.config import TrainConfig


def table_lr(base_lr: float, table: dict[int, float], epoch: int) -> float:
    """The lr of the last entry whose epoch is <= `epoch`, or `base_lr` before the first entry."""
    lr = base_lr
    for start_epoch, value in sorted(table.items()):
        if start_epoch <= epoch:
            lr = value
    return lr


def step_lr(base_lr: float, epoch: int, step_size: int, gamma: float) -> float:
    """Multiply by `gamma` every `step_size` epochs."""
    return base_lr * gamma ** ((epoch - 1) // step_size)


def cosine_lr(base_lr: float, epoch: int, num_epochs: int, min_lr: float) -> float:
    """Half a cosine from `base_lr` at epoch 1 down towards `min_lr` at epoch num_epochs + 1."""
    return min_lr + (base_lr - min_lr) * (1 + math.cos(math.pi * (epoch - 1) / num_epochs)) / 2


def onecycle_lr(max_lr: float, step: int, total_steps: int, pct_start: float = 0.3,
                div_factor: float = 25.0, final_div_factor: float = 1e4) -> float:
    """Warm up from max_lr/div_factor to max_lr over pct_start of the steps, then anneal (cosine)."""
    initial = max_lr / div_factor
    final = initial / final_div_factor
    warm_end = float(pct_start * total_steps) - 1
    if step <= warm_end:
        return _cos_anneal(initial, max_lr, step / warm_end if warm_end > 0 else 1.0)
    return _cos_anneal(max_lr, final, (step - warm_end) / (total_steps - 1 - warm_end))


def _cos_anneal(start: float, end: float, fraction: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * min(fraction, 1.0)) + 1)


def plateau_lr(base_lr: float, history: Sequence[float], mode: str, patience: int, factor: float,
               min_lr: float, min_delta: float) -> float:
    """The lr after seeing the monitored values `history`: cut by `factor` after more than
    `patience` epochs without an improvement larger than `min_delta` (mode "min" or "max")."""
    lr, best, bad_epochs = base_lr, None, 0
    for value in history:
        better = best is None or (value < best - min_delta if mode == "min" else value > best + min_delta)
        if better:
            best, bad_epochs = value, 0
        else:
            bad_epochs += 1
        if bad_epochs > patience:
            lr, bad_epochs = max(lr * factor, min_lr), 0
    return lr


def scheduled_lr(config: TrainConfig, epoch: int, step: int, steps_per_epoch: int,
                 monitor_history: Sequence[float]) -> float:
    """The lr `config.schedule` gives for this epoch and step (`monitor_history`: past epochs)."""
    kind = config.schedule
    if kind == "table":
        return table_lr(config.lr, config.lr_table, epoch)
    if kind == "step":
        return step_lr(config.lr, epoch, config.step_size, config.gamma)
    if kind == "cosine":
        return cosine_lr(config.lr, epoch, config.epochs, config.min_lr)
    if kind == "onecycle":
        return onecycle_lr(config.lr, step, config.epochs * steps_per_epoch)
    if kind == "plateau":
        mode = "min" if config.monitor == "val_loss" else "max"
        return plateau_lr(config.lr, monitor_history, mode, config.plateau_patience, config.gamma,
                          config.min_lr, config.min_delta)
    return config.lr
