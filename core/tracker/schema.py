"""The store's tables, and an idempotent migration that brings any older store up to date.

    migrate(engine)      # creates what is missing, adds new columns, refuses a newer schema

Every JSON column holds text written by `json.dumps`. Files (artifacts, table images, logged images)
live outside the database, content-addressed under `$LAB_HOME/artifacts/`; rows hold their SHA-256.
"""

from __future__ import annotations

from sqlalchemy import (Column, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text,
                        UniqueConstraint, inspect, insert, select, text)
from sqlalchemy.engine import Engine

SCHEMA_VERSION = 2


class SchemaError(RuntimeError):
    """The store was written by a newer Torch Lab, or cannot be migrated."""


metadata = MetaData()
RUN_ID = String(32)


def run_ref() -> Column:
    return Column("run_id", RUN_ID, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False)


schema_info = Table("schema_info", metadata, Column("version", Integer, nullable=False))
runs = Table(
    "runs", metadata,
    Column("id", RUN_ID, primary_key=True),
    Column("name", Text, nullable=False),
    Column("project", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("config", Text, nullable=False),          # JSON
    Column("summary", Text, nullable=False),         # JSON
    Column("source", String(32), nullable=False),    # cli, app, script, sweep
    Column("created_at", Float, nullable=False),
    Column("ended_at", Float),
    Column("heartbeat_at", Float),
    Column("progress", Text),                        # JSON: where training is inside an epoch
    # added in schema 2
    Column("group_name", Text),
    Column("tags", Text),                            # JSON list
    Column("notes", Text),
    Column("sweep_id", String(32)),
    Column("environment", Text),                     # JSON: python, torch and library versions, host,
                                                     # and the folder a script ran from ("dir")
    Column("code", Text),                            # the launching script's source, when asked
)
ADDED_RUN_COLUMNS = ("group_name", "tags", "notes", "sweep_id", "environment", "code")

metrics = Table(
    "metrics", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    run_ref(),
    Column("key", Text, nullable=False),
    Column("value", Float),
    Column("step", Integer),
    Column("epoch", Integer),
    Column("wall_time", Float, nullable=False),
    Index("ix_metrics_run_key", "run_id", "key"),
)
events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    run_ref(),
    Column("kind", String(32), nullable=False),
    Column("data", Text, nullable=False),            # JSON
    Column("step", Integer),
    Column("epoch", Integer),
    Column("wall_time", Float, nullable=False),
    Index("ix_events_run", "run_id"),
)
controls = Table(
    "controls", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    run_ref(),
    Column("command", String(16), nullable=False),   # stop, pause, resume, set
    Column("data", Text, nullable=False),            # JSON
    Column("created_at", Float, nullable=False),
    Column("consumed_at", Float),
    Index("ix_controls_run", "run_id", "consumed_at"),
)
artifacts = Table(
    "artifacts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(64), nullable=False),    # SHA-256 over the sorted (path, file sha256) list
    Column("description", Text),
    Column("metadata", Text),                        # JSON
    Column("producer_run", RUN_ID, ForeignKey("runs.id", ondelete="SET NULL")),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("name", "version", name="uq_artifact_version"),
)
artifact_files = Table(
    "artifact_files", metadata,
    Column("artifact_id", Integer, ForeignKey("artifacts.id", ondelete="CASCADE"), nullable=False),
    Column("path", Text, nullable=False),            # relative, checked by core.paths.safe_relative
    Column("sha256", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    UniqueConstraint("artifact_id", "path", name="uq_artifact_path"),
)
artifact_aliases = Table(
    "artifact_aliases", metadata,
    Column("name", Text, nullable=False),
    Column("alias", Text, nullable=False),
    Column("artifact_id", Integer, ForeignKey("artifacts.id", ondelete="CASCADE"), nullable=False),
    UniqueConstraint("name", "alias", name="uq_artifact_alias"),
)
artifact_uses = Table(
    "artifact_uses", metadata,
    Column("artifact_id", Integer, ForeignKey("artifacts.id", ondelete="CASCADE"), nullable=False),
    run_ref(),
    Column("created_at", Float, nullable=False),
)
run_tables = Table(
    "run_tables", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    run_ref(),
    Column("key", Text, nullable=False),
    Column("step", Integer),
    Column("columns", Text, nullable=False),         # JSON list
    Column("rows", Text, nullable=False),            # JSON list of lists; images as {"_type": "image", ...}
    Column("wall_time", Float, nullable=False),
)
run_images = Table(
    "run_images", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    run_ref(),
    Column("key", Text, nullable=False),
    Column("step", Integer),
    Column("sha256", String(64), nullable=False),
    Column("caption", Text),
    Column("width", Integer),
    Column("height", Integer),
    Column("wall_time", Float, nullable=False),
)
run_files = Table(
    "run_files", metadata,
    run_ref(),
    Column("path", Text, nullable=False),            # a label for the saved file, never a server path
    Column("sha256", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("wall_time", Float, nullable=False),
)
sweeps = Table(
    "sweeps", metadata,
    Column("id", String(32), primary_key=True),
    Column("name", Text),
    Column("project", Text, nullable=False),
    Column("config", Text, nullable=False),          # JSON: the validated W&B sweep config
    Column("state", String(16), nullable=False),     # running, finished, stopped
    Column("created_at", Float, nullable=False),
)
sweep_trials = Table(
    "sweep_trials", metadata,
    Column("sweep_id", String(32), ForeignKey("sweeps.id", ondelete="CASCADE"), nullable=False),
    Column("run_id", RUN_ID, nullable=False),
    Column("params", Text, nullable=False),          # JSON: the sampled parameters
    Column("point_key", Text, nullable=False),       # grid point identity (the run id otherwise)
    Column("created_at", Float, nullable=False),
    UniqueConstraint("sweep_id", "point_key", name="uq_sweep_point"),
)


MIGRATION_LOCK_KEY = 0x546F7263   # PostgreSQL advisory lock taken while the schema is checked or changed


def migrate(engine: Engine) -> None:
    """Create missing tables and columns; record the schema version; refuse a newer one.

    Runs as one transaction under the database's write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: an
    advisory lock), so processes opening a fresh store at the same moment create it once, not race.
    """
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        metadata.create_all(conn)
        existing = {c["name"] for c in inspect(conn).get_columns("runs")}
        version = conn.execute(select(schema_info.c.version)).scalar()
        if version is not None and version > SCHEMA_VERSION:
            raise SchemaError(f"the store was written by a newer Torch Lab (schema {version}, this one reads "
                              f"up to {SCHEMA_VERSION}); upgrade, or point LAB_HOME elsewhere")
        for name in ADDED_RUN_COLUMNS:
            if name not in existing:
                kind = "VARCHAR(32)" if name == "sweep_id" else "TEXT"
                conn.execute(text(f"ALTER TABLE runs ADD COLUMN {name} {kind}"))
        if version is None:
            conn.execute(insert(schema_info).values(version=SCHEMA_VERSION))
        elif version < SCHEMA_VERSION:
            conn.execute(schema_info.update().values(version=SCHEMA_VERSION))
