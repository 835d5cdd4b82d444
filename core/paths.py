"""Where the lab keeps its files: `$LAB_HOME` (default `./.lab`), its store, runs and data.

    lab_home() / "lab.db"    data_root(config)    run_folder(run_id)
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def lab_home() -> Path:
    """The lab's folder: `$LAB_HOME`, or `.lab` in the working directory."""
    return Path(os.environ.get("LAB_HOME") or ".lab").expanduser().resolve()


def default_data_root() -> Path:
    return lab_home() / "data"


def data_root(configured: str | None) -> Path:
    """The folder dataset files are read from: the configured one, else `$LAB_HOME/data`."""
    return Path(configured).expanduser().resolve() if configured else default_data_root()


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
