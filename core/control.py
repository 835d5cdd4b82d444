"""The live handle of a training run: stop, pause/resume, and hyperparameter changes between steps.

    control = TrainControl()
    for metrics in train(config, control=control):
        if metrics.val_acc > 0.99:
            control.stop("good enough")
        control.set(lr=1e-4)            # applied before the next optimizer step
    control.outcome                     # how the run ended (core.training.Outcome)
    live_changes({"lr": "1e-4", "momentum": ""})    # {"lr": 0.0001}: typed text checked like the config

Thread-safe: a UI thread or a store poller may call it while training runs. Subclasses override
`poll()` to pull commands from elsewhere (the tracker's control rows); training calls it every step.
"""

from __future__ import annotations

import threading
from typing import Any

from core.config import TrainConfig

LIVE_FIELDS = ("lr", "momentum", "weight_decay", "grad_clip")
LIVE_LABELS = {name: name.replace("_", " ") for name in LIVE_FIELDS}     # as the Train page labels them


def validate_live_change(changes: dict[str, Any]) -> dict[str, Any]:
    """Check live changes with the same rules as the config; returns them normalised."""
    unknown = sorted(set(changes) - set(LIVE_FIELDS))
    if unknown:
        raise ValueError(f"cannot change {unknown} during training; live fields: {', '.join(LIVE_FIELDS)}")
    checked = TrainConfig(**changes)
    return {name: getattr(checked, name) for name in changes}


def live_changes(entered: dict[str, str]) -> dict[str, Any]:
    """The live changes typed in a form (field -> text); blank boxes mean "leave as it is".
    Raises ConfigError or ValueError, naming the field, for a bad value or field."""
    return validate_live_change({name: text for name, text in entered.items() if text.strip()})


class TrainControl:
    """Stop flag, pause flag and a queue of pending hyperparameter changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop_reason: str | None = None
        self.stop_status = None
        self._paused = threading.Event()
        self._pending: dict[str, Any] = {}
        self.outcome = None
        self.position: dict[str, int] = {}

    def stop(self, reason: str = "stopped by request", status=None) -> None:
        """Stop before the next step; `status` (default stopped) is how the run will end, e.g. pruned."""
        from core.status import RunStatus

        with self._lock:
            if self._stop_reason is None:
                self._stop_reason, self.stop_status = reason, status or RunStatus.STOPPED

    @property
    def stop_reason(self) -> str | None:
        return self._stop_reason

    def pause(self) -> None:
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def set(self, **changes: Any) -> None:
        """Queue changes of lr, momentum, weight_decay, grad_clip (grad_clip None/0 turns it off)."""
        checked = validate_live_change(changes)
        with self._lock:
            self._pending.update(checked)

    def take_changes(self) -> dict[str, Any]:
        """The changes queued since the last call (empty when none)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        return pending

    def at_step(self, epoch: int, step_in_epoch: int, steps_per_epoch: int, step: int) -> None:
        """Called by training before every optimizer step: note the position, then `poll()`."""
        self.position = {"epoch": epoch, "step_in_epoch": step_in_epoch, "steps_per_epoch": steps_per_epoch,
                         "step": step}
        self.poll()

    def poll(self) -> None:
        """Called by training between steps; override to read commands from another source."""
