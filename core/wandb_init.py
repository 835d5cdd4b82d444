"""What `core.wandb.init()` does with its arguments before any run exists: W&B arguments that mean
nothing offline (accepted, warned about once each), ones refused here, unknown ones (TypeError, as in
W&B), the `dir=` folder, and the config's include/exclude keys.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from core.wandb_values import Error

# Arguments of W&B's init() that mean nothing offline: accepted, ignored, and warned about once each.
IGNORED_INIT_ARGS = {
    "entity": "there are no W&B teams or users offline",
    "anonymous": "there are no W&B accounts offline",
    "force": "there is nothing to log in to",
    "settings": "W&B's service settings do not apply to the local store",
    "tensorboard": "TensorBoard logs are not synced",
    "sync_tensorboard": "TensorBoard logs are not synced",
    "monitor_gym": "gym videos are not recorded",
    "magic": "W&B's automatic framework logging is not available",
}
# Arguments of W&B's init() whose meaning is not supported here: refused, saying what to do instead.
REFUSED_INIT_ARGS = {
    "resume_from": "rewinding a run to a step is not supported; continue it with id=... and resume='must'",
    "fork_from": "forking a run is not supported; start a new run (and use_artifact() the old run's model)",
}
_warned_args: set[str] = set()


def check_init_args(given: dict, taken: list[str]) -> None:
    """TypeError for an argument W&B's init() does not take (`taken`: the ones it names); Error for one
    refused here; a warning (once per name) for one ignored offline."""
    unknown = sorted(set(given) - set(IGNORED_INIT_ARGS) - set(REFUSED_INIT_ARGS))
    if unknown:
        raise TypeError(f"init() got an unexpected keyword argument {unknown[0]!r}; it takes: "
                        f"{', '.join(sorted([*taken, *IGNORED_INIT_ARGS, *REFUSED_INIT_ARGS]))}")
    for name, value in given.items():
        if value is None or value is False:
            continue
        if name in REFUSED_INIT_ARGS:
            raise Error(f"init({name}={value!r}): {REFUSED_INIT_ARGS[name]}")
        if name not in _warned_args:
            _warned_args.add(name)
            warnings.warn(f"init({name}=...) is ignored offline: {IGNORED_INIT_ARGS[name]}", stacklevel=3)


def check_dir(dir) -> Path | None:
    """The folder `init(dir=...)` names, created if missing; None when none is given."""
    if dir is None:
        return None
    if not isinstance(dir, (str, os.PathLike)) or not os.fspath(dir):
        raise TypeError(f"init(dir={dir!r}): pass a folder path")
    folder = Path(dir).expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"init(dir={dir!r}): {folder} is a file; pass a folder for the lab's files")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"init(dir={dir!r}): cannot create {folder} ({exc.strerror}); pass a folder you can "
                         "write to") from None
    return folder


def filtered(values: dict, include, exclude) -> dict:
    if include:
        values = {k: v for k, v in values.items() if k in set(include)}
    return {k: v for k, v in values.items() if k not in set(exclude or ())}
