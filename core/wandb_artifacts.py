"""Artifacts for `core.wandb`: versioned sets of files a run logs and uses.

    art = wandb.Artifact("cnn", type="model"); art.add_file("best.safetensors")
    run.log_artifact(art, aliases=["best"]); run.use_artifact("cnn:best").download()

Artifact names follow W&B (letters, digits, '-', '_', '.'); file names inside an artifact go through
`core.paths.safe_relative`, so none can leave the folder it is downloaded into. `add_file`/`add_dir`
copy files aside when they are added (W&B's default "mutable" policy), so later edits of the source
do not change what is logged; `policy="immutable"` reads them in place when the artifact is logged.

`Run.log_artifact` stores an `Artifact` through the store and `bind`s it to the stored version;
`_check_aliases` checks its aliases; `_artifact_from_path` makes an Artifact from a file or folder.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

from core.paths import UnsafePath, resolve_inside, safe_relative
from core.wandb_values import json_friendly, refuse_attribute

ARTIFACT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
FILE_POLICIES = ("mutable", "immutable")


def check_artifact_name(name) -> str:
    if not isinstance(name, str) or not ARTIFACT_NAME.fullmatch(name) or set(name) == {"."}:
        raise ValueError(f"artifact name {name!r}: use 1-128 letters, digits, '-', '_' or '.' (as W&B does)")
    return name


def parse_artifact_ref(ref) -> tuple[str, str]:
    """("name", "alias") from "name", "name:alias" or "entity/project/name:alias" (alias 'latest' if none)."""
    if not isinstance(ref, str):
        raise TypeError(f"use_artifact takes an Artifact or a 'name:alias' string, not {type(ref).__name__}")
    name, _, alias = ref.rsplit("/", 1)[-1].partition(":")
    alias = alias or "latest"
    if ":" in alias or not alias:
        raise ValueError(f"{ref!r} is not 'name', 'name:alias' or 'name:v3'")
    return check_artifact_name(name), alias


def _walk_files(root: Path):
    """Files under `root` (sorted), not following links: a linked file counts only if it stays inside."""
    inside = root.resolve()
    for folder, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for d in dirnames:
            if os.path.islink(os.path.join(folder, d)):
                warnings.warn(f"add_dir: not following the linked folder {os.path.join(folder, d)}", stacklevel=3)
        for name in sorted(filenames):
            path = Path(folder) / name
            target = path.resolve()
            if path.is_symlink() and inside not in target.parents:
                warnings.warn(f"add_dir: skipped {path}: it links outside {root}", stacklevel=3)
            elif target.is_file():
                yield path


class Artifact:
    """A versioned set of files: build it with add_file/add_dir/new_file, then `run.log_artifact(it)`.
    From `use_artifact` (or after logging) it names a stored version: `.name` is "cnn:v0", `.version`
    "v0", `.files` its relative paths, and `.download()` copies them into a folder."""

    def __init__(self, name: str, type: str, description: str | None = None, metadata: dict | None = None,
                 incremental: bool = False, use_as: str | None = None):
        self._name = check_artifact_name(name)
        if not isinstance(type, str) or not ARTIFACT_NAME.fullmatch(type):
            raise ValueError(f"artifact type {type!r}: use letters, digits, '-', '_' or '.' (e.g. 'model', 'dataset')")
        self.type = type
        self.description = description or ""
        self.metadata = json_friendly(dict(metadata or {}), "Artifact metadata")
        self._entries: dict[str, Path] = {}          # name inside the artifact -> file to read when logged
        self._staging: tempfile.TemporaryDirectory | None = None
        self._record = None                          # core.tracker.ArtifactRecord once logged or used
        self._store = None
        self._default_root: Path | None = None

    @property
    def name(self) -> str:
        return self._name if self._record is None else self._record.label

    @property
    def version(self) -> str | None:
        return None if self._record is None else f"v{self._record.version}"

    @property
    def aliases(self) -> list[str]:
        return [] if self._record is None else list(self._record.aliases)

    @property
    def digest(self) -> str | None:
        return None if self._record is None else self._record.digest

    @property
    def files(self) -> tuple[str, ...]:
        """Relative paths of the files (those added so far, for an artifact not yet logged)."""
        return tuple(sorted(self._entries)) if self._record is None else tuple(p for p, _, _ in self._record.files)

    def add_file(self, local_path, name: str | None = None, is_tmp: bool = False, skip_cache=None,
                 policy: str = "mutable", overwrite: bool = False) -> str:
        """Add one file as `name` (default: its file name); returns the name inside the artifact."""
        source = Path(local_path)
        if not source.is_file():
            raise ValueError(f"add_file: {local_path} is not a file")
        return self._add(source, name or source.name, policy, overwrite)

    def add_dir(self, local_path, name: str | None = None, skip_cache=None, policy: str = "mutable",
                merge: bool = False) -> None:
        """Add every file under a folder, under the prefix `name` if given; links leaving it are skipped."""
        root = Path(local_path)
        if not root.is_dir():
            raise ValueError(f"add_dir: {local_path} is not a folder")
        prefix = self._checked_name(name) if name else ""
        for path in _walk_files(root):
            relative = path.relative_to(root).as_posix()
            self._add(path, f"{prefix}/{relative}" if prefix else relative, policy, merge)

    @contextmanager
    def new_file(self, name: str, mode: str = "x", encoding: str | None = None):
        """Write a new file straight into the artifact: `with art.new_file("notes.txt") as f: f.write(...)`."""
        name = self._checked_new(name, overwrite=False)
        target = resolve_inside(self._staging_folder(), name)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, mode, encoding=encoding) as handle:
            yield handle
        self._entries[name] = target

    def download(self, root=None, **ignored) -> str:
        """Copy the stored version's files into `root` (default: under the run's folder); the folder."""
        if self._record is None:
            raise ValueError(f"artifact {self._name!r} is not stored yet: log it, or get it with use_artifact")
        folder = Path(root) if root is not None else self._default_root
        return str(self._store.download_artifact(self._record, folder))

    def file(self, root=None) -> str:
        """Download a one-file artifact; the path of that file."""
        if len(self.files) != 1:
            raise ValueError(f"artifact {self.name} holds {len(self.files)} files; use download() instead")
        return str(Path(self.download(root)) / self.files[0])

    def wait(self, timeout=None) -> "Artifact":
        return self

    def bind(self, record, store, default_root: Path) -> "Artifact":
        """Attach a stored version (done by log_artifact/use_artifact); the artifact is then final."""
        self._record, self._store, self._default_root = record, store, default_root
        self.description, self.metadata = record.description, record.metadata
        if self._staging is not None:
            self._staging.cleanup()
            self._staging = None
        return self

    @classmethod
    def from_record(cls, record, store, default_root: Path) -> "Artifact":
        artifact = cls(record.name, "stored")         # the stored type may predate the name rules
        artifact.type = record.type
        return artifact.bind(record, store, default_root)

    def entries(self) -> dict[str, Path]:
        """{name inside the artifact: file to read} for logging."""
        if not self._entries:
            raise ValueError(f"artifact {self._name!r} has no files; add_file/add_dir/new_file before logging it")
        return dict(self._entries)

    def _add(self, source: Path, name: str, policy: str, overwrite: bool) -> str:
        if policy not in FILE_POLICIES:
            raise ValueError(f"unknown policy {policy!r}; choose one of: {', '.join(FILE_POLICIES)}")
        name = self._checked_new(name, overwrite)
        if policy == "mutable":                       # a copy now, as W&B does, so later edits do not leak in
            target = resolve_inside(self._staging_folder(), name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            source = target
        self._entries[name] = source
        return name

    def _checked_new(self, name: str, overwrite: bool) -> str:
        if self._record is not None:
            raise ValueError(f"artifact {self.name} is stored and final; make a new Artifact to change its files")
        name = self._checked_name(name)
        if name in self._entries and not overwrite:
            raise ValueError(f"artifact {self._name!r} already holds {name!r}; pass overwrite=True to replace it")
        return name

    def _checked_name(self, name: str) -> str:
        try:
            return safe_relative(name)
        except UnsafePath as exc:
            raise UnsafePath(f"artifact {self._name!r}: {exc}") from None

    def _staging_folder(self) -> Path:
        if self._staging is None:
            self._staging = tempfile.TemporaryDirectory(prefix="lab-artifact-")
        return Path(self._staging.name)

    def __getattr__(self, name: str):
        refuse_attribute(self, name)

    def __repr__(self) -> str:
        return f"Artifact({self.name!r}, type={self.type!r}, files={len(self.files)})"


# -- log_artifact() arguments ------------------------------------------------------------------------

def _check_aliases(aliases) -> list[str]:
    aliases = [aliases] if isinstance(aliases, str) else list(aliases or ())
    kept = []
    for alias in aliases:
        if not isinstance(alias, str) or not 1 <= len(alias) <= 128 or "/" in alias or ":" in alias:
            raise ValueError(f"alias {alias!r}: use 1-128 characters without '/' or ':'")
        if alias[0] == "v" and alias[1:].isdigit():
            warnings.warn(f"alias {alias!r} is ignored: version names are given by the store (as in W&B)",
                          stacklevel=3)
            continue
        kept.append(alias)
    return kept


def _artifact_from_path(path, name: str | None, type: str | None) -> Artifact:
    source = Path(path)
    artifact = Artifact(name or check_artifact_name(source.name.replace(" ", "_")), type or "unspecified")
    if source.is_dir():
        artifact.add_dir(source)
    else:
        artifact.add_file(source)
    return artifact
