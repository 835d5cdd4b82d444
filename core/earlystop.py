"""Early stopping: watches one metric and decides, once per epoch, whether training should stop.

    stopper = EarlyStopping(patience=3, mode="min", min_delta=0.0)
    decision = stopper.update(val_loss)      # decision.improved, decision.stop_reason
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    improved: bool
    counter: int                 # epochs since the last improvement
    stop_reason: str | None      # set when training should stop


class EarlyStopping:
    """Tracks the best value of a metric; `patience=None` never stops but still tracks the best."""

    def __init__(self, patience: int | None, mode: str = "min", min_delta: float = 0.0,
                 metric: str = "val_loss") -> None:
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {patience}")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if not (min_delta >= 0 and math.isfinite(min_delta)):
            raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta}")
        self.patience, self.mode, self.min_delta, self.metric = patience, mode, min_delta, metric
        self.best: float | None = None
        self.counter = 0

    def is_improvement(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, value: float) -> Decision:
        """Record one epoch's value and decide."""
        if self.is_improvement(value):
            self.best, self.counter = value, 0
            return Decision(True, 0, None)
        self.counter += 1
        if self.patience is not None and self.counter >= self.patience:
            reason = f"{self.metric} did not improve by more than {self.min_delta} for {self.counter} epochs"
            return Decision(False, self.counter, reason)
        return Decision(False, self.counter, None)
