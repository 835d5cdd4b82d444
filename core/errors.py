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


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """An exception's message as one line: its first non-blank line, stripped (the exception's type
    name when the message is blank), cut to `limit` characters and marked with '…' when longer."""
    line = next((text.strip() for text in str(exc).splitlines() if text.strip()), type(exc).__name__)
    return line if limit is None or len(line) <= limit else line[:limit] + "…"
