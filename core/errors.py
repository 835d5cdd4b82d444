"""Errors a user can cause. Each carries a one-line message saying what was wrong and what to do.

The CLI turns them into exit code 2, pages into `st.error`. `PathError` (a folder that cannot be
used) and `UnsafePath` (a name that would leave its root) come from `core.paths`.
"""

from core.config import ConfigError
from core.paths import PathError, UnsafePath


class DataError(ValueError):
    """A dataset cannot be loaded or is unusable (missing files, one class, bad labels)."""


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or does not match the model it is loaded into."""


class InputError(ValueError):
    """A prediction input (number, point, image) cannot be understood."""


class RunNotFound(LookupError):
    """No run with the given id exists in the store."""


USER_ERRORS = (ConfigError, DataError, CheckpointError, InputError, RunNotFound, PathError, UnsafePath)
