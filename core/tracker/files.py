"""Files in the store: content-addressed blobs, versioned artifacts, tables, images, saved files.

    sha = store.put_blob(b"...")                                     # stored once per content
    art = store.log_artifact("cnn", "model", {"best.safetensors": path}, run_id=rid, aliases=["best"])
    store.get_artifact("cnn", "latest").files                        # ((path, sha256, size), ...)
    store.download_artifact(art, into=Path("out"))
    store.log_table(rid, "cases", columns, rows, step=3); store.log_image(rid, "samples", png, step=3)

Blobs live at `$LAB_HOME/artifacts/<sha[:2]>/<sha>`, written through a temporary file and a rename;
identical files are stored once. Paths inside artifacts are checked with `core.paths.safe_relative`
and downloads with `resolve_inside`, so no name can reach outside its folder. Mixed into `Store`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, insert, select, update

from core.paths import resolve_inside, safe_relative, sha256_file
from core.tracker.schema import (artifact_aliases, artifact_files, artifact_uses, artifacts, run_files,
                                 run_images, run_tables)

AUTO_ALIASES = ("latest",)


@dataclass(frozen=True)
class ArtifactRecord:
    id: int
    name: str
    type: str
    version: int
    digest: str
    description: str
    metadata: dict
    producer_run: str | None
    created_at: float
    files: tuple[tuple[str, str, int], ...]     # (path, sha256, size)
    aliases: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.name}:v{self.version}"


def check_no_prefix_clash(paths: list[str]) -> None:
    """Refuse a file that is also used as a folder ("a" and "a/b"), which no folder can hold."""
    from core.paths import UnsafePath

    names = set(paths)
    for path in paths:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in names:
                raise UnsafePath(f"{'/'.join(parts[:depth])!r} is both a file and a folder in this artifact")


class FileMixin:
    """Blob, artifact, table and image operations of `Store` (needs `self.engine` and `self.home`)."""

    def blob_path(self, sha: str) -> Path:
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise ValueError(f"{sha!r} is not a SHA-256 digest")
        return self.home / "artifacts" / sha[:2] / sha

    def put_blob(self, data: bytes) -> str:
        from core.savefile import atomic_write

        sha = hashlib.sha256(data).hexdigest()
        target = self.blob_path(sha)
        if not target.exists():
            atomic_write(target, data)
        return sha

    def put_file(self, source: Path) -> tuple[str, int]:
        """Store a file's content (streamed); (sha256, size)."""
        from core.savefile import atomic_write

        sha = sha256_file(source)
        target = self.blob_path(sha)
        if not target.exists():
            atomic_write(target, Path(source).read_bytes())
        return sha, Path(source).stat().st_size

    def read_blob(self, sha: str) -> bytes:
        return self.blob_path(sha).read_bytes()

    # -- artifacts ---------------------------------------------------------------------------------

    def log_artifact(self, name: str, type: str, files: dict[str, Path], *, run_id: str | None = None,
                     aliases=(), description: str = "", metadata: dict | None = None) -> ArtifactRecord:
        """A new version of artifact `name` holding `files` ({relative path: source file}); when its
        content equals the latest version, that version is returned (and re-aliased) instead."""
        if not name or not type:
            raise ValueError("an artifact needs a name and a type")
        entries = sorted((safe_relative(rel), *self.put_file(Path(src))) for rel, src in files.items())
        check_no_prefix_clash([path for path, _, _ in entries])
        digest = hashlib.sha256(json.dumps(entries).encode()).hexdigest()
        with self.engine.begin() as conn:
            latest = conn.execute(select(artifacts).where(artifacts.c.name == name)
                                  .order_by(artifacts.c.version.desc()).limit(1)).first()
            if latest is not None and latest.digest == digest:
                artifact_id = latest.id
            else:
                version = 0 if latest is None else latest.version + 1
                artifact_id = conn.execute(insert(artifacts).values(
                    name=name, type=type, version=version, digest=digest, description=description,
                    metadata=json.dumps(metadata or {}), producer_run=run_id, created_at=time.time())
                ).inserted_primary_key[0]
                conn.execute(insert(artifact_files), [{"artifact_id": artifact_id, "path": p, "sha256": h, "size": n}
                                                      for p, h, n in entries])
            for alias in {*AUTO_ALIASES, *aliases}:
                self._point_alias(conn, name, alias, artifact_id)
        return self.get_artifact(name, artifact_id=artifact_id)

    @staticmethod
    def _point_alias(conn, name: str, alias: str, artifact_id: int) -> None:
        conn.execute(delete(artifact_aliases).where(artifact_aliases.c.name == name,
                                                    artifact_aliases.c.alias == alias))
        conn.execute(insert(artifact_aliases).values(name=name, alias=alias, artifact_id=artifact_id))

    def get_artifact(self, name: str, alias: str = "latest", *, artifact_id: int | None = None) -> ArtifactRecord:
        """An artifact by alias ('latest', 'best', ...) or version ('v3'); LookupError when absent."""
        with self.engine.connect() as conn:
            if artifact_id is None:
                artifact_id = self._resolve(conn, name, alias)
            row = conn.execute(select(artifacts).where(artifacts.c.id == artifact_id)).first()
            files = conn.execute(select(artifact_files).where(artifact_files.c.artifact_id == artifact_id)
                                 .order_by(artifact_files.c.path)).fetchall()
            names = conn.execute(select(artifact_aliases.c.alias).where(
                artifact_aliases.c.artifact_id == artifact_id).order_by(artifact_aliases.c.alias)).scalars().all()
        return ArtifactRecord(row.id, row.name, row.type, row.version, row.digest, row.description or "",
                              json.loads(row.metadata or "{}"), row.producer_run, row.created_at,
                              tuple((f.path, f.sha256, f.size) for f in files), tuple(names))

    @staticmethod
    def _resolve(conn, name: str, alias: str) -> int:
        if alias.startswith("v") and alias[1:].isdigit():
            found = conn.execute(select(artifacts.c.id).where(artifacts.c.name == name,
                                                              artifacts.c.version == int(alias[1:]))).scalar()
        else:
            found = conn.execute(select(artifact_aliases.c.artifact_id).where(
                artifact_aliases.c.name == name, artifact_aliases.c.alias == alias)).scalar()
        if found is None:
            raise LookupError(f"no artifact {name}:{alias}")
        return found

    def list_artifacts(self, run_id: str | None = None) -> list[ArtifactRecord]:
        """All artifact versions (newest first), or those a run produced or used."""
        query = select(artifacts.c.id).order_by(artifacts.c.created_at.desc(), artifacts.c.id.desc())
        if run_id is not None:
            used = select(artifact_uses.c.artifact_id).where(artifact_uses.c.run_id == run_id)
            query = query.where((artifacts.c.producer_run == run_id) | artifacts.c.id.in_(used))
        with self.engine.connect() as conn:
            ids = conn.execute(query).scalars().all()
        return [self.get_artifact("", artifact_id=i) for i in ids]

    def use_artifact(self, name: str, alias: str, run_id: str) -> ArtifactRecord:
        record = self.get_artifact(name, alias)
        with self.engine.begin() as conn:
            conn.execute(insert(artifact_uses).values(artifact_id=record.id, run_id=run_id, created_at=time.time()))
        return record

    def artifact_users(self, artifact_id: int) -> list[str]:
        with self.engine.connect() as conn:
            return conn.execute(select(artifact_uses.c.run_id).where(
                artifact_uses.c.artifact_id == artifact_id).distinct()).scalars().all()

    def download_artifact(self, record: ArtifactRecord, into: Path) -> Path:
        """Copy an artifact's files into folder `into` (created); each path is checked to stay inside."""
        into = Path(into)
        into.mkdir(parents=True, exist_ok=True)
        for path, sha, _ in record.files:
            target = resolve_inside(into, path)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.blob_path(sha), target)
        return into

    # -- tables, images, saved files ----------------------------------------------------------------

    def log_table(self, run_id: str, key: str, columns: list[str], rows: list[list], step: int | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(run_tables).values(run_id=run_id, key=key, step=step, columns=json.dumps(columns),
                                                   rows=json.dumps(rows), wall_time=time.time()))

    def tables(self, run_id: str) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(run_tables).where(run_tables.c.run_id == run_id).order_by(run_tables.c.id))
            return [{"key": r.key, "step": r.step, "columns": json.loads(r.columns), "rows": json.loads(r.rows)}
                    for r in rows]

    def log_image(self, run_id: str, key: str, png: bytes, *, step: int | None = None, caption: str = "",
                  size: tuple[int, int] = (0, 0)) -> str:
        sha = self.put_blob(png)
        with self.engine.begin() as conn:
            conn.execute(insert(run_images).values(run_id=run_id, key=key, step=step, sha256=sha, caption=caption,
                                                   width=size[0], height=size[1], wall_time=time.time()))
        return sha

    def images(self, run_id: str) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(run_images).where(run_images.c.run_id == run_id).order_by(run_images.c.id))
            return [{"key": r.key, "step": r.step, "sha256": r.sha256, "caption": r.caption} for r in rows]

    def save_run_file(self, run_id: str, label: str, source: Path) -> str:
        sha, size = self.put_file(source)
        with self.engine.begin() as conn:
            conn.execute(insert(run_files).values(run_id=run_id, path=label, sha256=sha, size=size,
                                                  wall_time=time.time()))
        return sha

    def run_files(self, run_id: str) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(run_files).where(run_files.c.run_id == run_id))
            return [{"path": r.path, "sha256": r.sha256, "size": r.size} for r in rows]

    @staticmethod
    def delete_run_files(conn, run_id: str) -> None:
        for table in (run_tables, run_images, run_files, artifact_uses):
            conn.execute(delete(table).where(table.c.run_id == run_id))
        conn.execute(update(artifacts).where(artifacts.c.producer_run == run_id).values(producer_run=None))


