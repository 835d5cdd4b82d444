"""Where the lab keeps its files: `$LAB_HOME` (default `./.lab`), its store, runs and data.

    lab_home() / "lab.db"    data_root(config)    run_folder(run_id)

A folder a user names (`--data-root`, `$LAB_HOME`) that cannot be used (an unknown `~user`, a NUL
byte, a path or a part of it too long for the file system) raises `PathError`, a user error with
a one-line message, before anything is read or written.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


MAX_FOLDER_CHARS = 4096      # Linux's PATH_MAX
MAX_PART_BYTES = 255         # the longest file or folder name (NAME_MAX)


class PathError(ValueError):
    """A folder a user named cannot be used; the message says which and why, on one line."""


def lab_home() -> Path:
    """The lab's folder: `$LAB_HOME`, or `.lab` in the working directory."""
    return user_folder(os.environ.get("LAB_HOME") or ".lab", "LAB_HOME")


def default_data_root() -> Path:
    return lab_home() / "data"


def data_root(configured: str | None) -> Path:
    """The folder dataset files are read from: the configured one, else `$LAB_HOME/data`."""
    return user_folder(configured, "data_root") if configured else default_data_root()


def check_folder_text(text: str) -> None:
    """PathError unless `text` could name a folder: at most MAX_FOLDER_CHARS, no NUL or control characters."""
    if len(text) > MAX_FOLDER_CHARS:
        raise PathError(f"is {len(text)} characters long; a folder path has at most {MAX_FOLDER_CHARS}")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise PathError("contains a NUL byte or another control character; give a plain folder path")


def user_folder(text: str, what: str) -> Path:
    """`text` (a folder a user gave, `~` allowed) as an absolute path; PathError naming `what` when the
    path cannot be used. Nothing is created."""
    shown = repr(text) if len(text) <= 60 else f"{text[:40]!r}... ({len(text)} characters)"
    try:
        check_folder_text(text)
        path = Path(text).expanduser().resolve()
    except PathError as exc:
        raise PathError(f"{what} {shown} {exc}") from None
    except (RuntimeError, KeyError):             # `~name` of an unknown user, or no home folder
        raise PathError(f"{what} {shown}: cannot expand '~' (no such user or no home folder); "
                        "give the full path") from None
    except (OSError, ValueError) as exc:
        raise PathError(f"{what} {shown} cannot be used: {exc}") from None
    longest = max((len(part.encode("utf-8", "surrogateescape")) for part in path.parts), default=0)
    if longest > MAX_PART_BYTES or len(str(path)) > MAX_FOLDER_CHARS:
        raise PathError(f"{what} {shown} is too long: each folder name may have at most {MAX_PART_BYTES} "
                        f"bytes and the whole path {MAX_FOLDER_CHARS} characters")
    return path


class UnsafePath(ValueError):
    """A relative path from a user or a file would leave its root, or is not a plain relative path."""


MAX_PATH_CHARS = 1024
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


def safe_relative(name: str) -> str:
    """`name` as a clean relative POSIX path ('a/b.txt'), or UnsafePath. Refuses absolute and drive
    paths, backslashes, '..' and '.' parts, empty parts, NUL and control characters, percent-encoding,
    Windows reserved names and overlong names: the caller never has to guess what a name means."""
    if not isinstance(name, str) or not name or len(name) > MAX_PATH_CHARS:
        raise UnsafePath(f"{name!r} is not a usable relative path (1 to {MAX_PATH_CHARS} characters)")
    if any(ord(c) < 32 or c in '\\:*?"<>|%' or ord(c) == 127 for c in name) or name.startswith("/"):
        raise UnsafePath(f"{name!r} is not a plain relative path (no absolute paths, drives, backslashes, "
                         "control or special characters)")
    parts = name.split("/")
    for part in parts:
        if part in ("", ".", "..") or part.strip() != part or part.rstrip(".") != part:
            raise UnsafePath(f"{name!r} has an empty, '.', '..' or padded part")
        if part.split(".")[0].lower() in _WINDOWS_RESERVED:
            raise UnsafePath(f"{name!r} uses a reserved device name")
    return "/".join(parts)


def resolve_inside(root: Path, name: str) -> Path:
    """root / name, after `safe_relative`, checked again after resolving symlinks."""
    root = Path(root).resolve()
    target = (root / safe_relative(name)).resolve()
    if target != root and root not in target.parents:
        raise UnsafePath(f"{name!r} resolves outside {root}")
    return target


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's content, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
