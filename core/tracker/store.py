"""The run store: runs, their per-epoch metrics and events, in SQLite or any SQLAlchemy database.

    store = Store()                                 # $LAB_STORE, else sqlite:///$LAB_HOME/lab.db
    run_id = store.create_run(config_dict, name="baseline", project="digits")
    store.log_metrics(run_id, {"val_acc": 0.91, "val_loss": 0.3}, step=120, epoch=3)   # atomic
    store.finish_run(run_id, RunStatus.FINISHED, "completed all 10 epochs", summary={...})
    store.get_run(run_id).summary, store.metrics_frame(run_id)

This package is the only place that writes SQL; the write of each epoch and `log()` call is in
`core.tracker.hotpath`. SQLite runs in WAL mode with a busy timeout so that
several processes (a worker, the CLI, a script) can log at once while pages read. The schema is
created idempotently on first use. Finished runs are immutable: their status does not change again.
"""

from __future__ import annotations

import json
import os
import secrets
import string
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import create_engine, delete, event, insert, select, update
from sqlalchemy.engine import Engine

from core.errors import RunNotFound
from core.paths import lab_home
from core.status import RunStatus
from core.tracker.files import FileMixin
from core.tracker.hotpath import EpochWriter, set_sqlite_pragmas
from core.tracker.sweeprows import SweepMixin
from core.tracker.schema import controls, events, metrics, migrate, runs

BUSY_TIMEOUT_MS = 30_000
ID_ALPHABET = string.ascii_lowercase + string.digits

CONTROL_COMMANDS = ("stop", "pause", "resume", "set")


@dataclass(frozen=True)
class RunRecord:
    """A run as stored, at the moment it was read."""

    run_id: str
    name: str
    project: str
    status: RunStatus
    reason: str
    config: dict
    summary: dict
    source: str
    created_at: float
    ended_at: float | None
    heartbeat_at: float | None = None
    progress: dict | None = None
    group: str | None = None
    tags: tuple[str, ...] = ()
    notes: str = ""
    sweep_id: str | None = None
    environment: dict | None = None

    @property
    def seed(self) -> int | None:
        """The random seed the run's config names (None when it names none, or not as a whole number)."""
        seed = self.config.get("seed")
        return seed if isinstance(seed, int) and not isinstance(seed, bool) else None

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "name": self.name, "project": self.project,
                "status": self.status.value, "reason": self.reason, "config": self.config,
                "summary": self.summary, "source": self.source, "seed": self.seed, "created_at": self.created_at,
                "ended_at": self.ended_at, "group": self.group, "tags": list(self.tags), "notes": self.notes,
                "sweep_id": self.sweep_id}


def default_url(home: Path | None = None) -> str:
    """`$LAB_STORE`, else the SQLite file in `home` (default: `$LAB_HOME`)."""
    return os.environ.get("LAB_STORE") or f"sqlite:///{(home or lab_home()) / 'lab.db'}"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    set_sqlite_pragmas(dbapi_connection, BUSY_TIMEOUT_MS)


def _with_installed_driver(url: str) -> str:
    """A bare `postgresql://` (or Heroku-style `postgres://`) URL through psycopg2, the driver the lab
    installs (SQLAlchemy's default for bare URLs is psycopg 3, which it does not)."""
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+psycopg2://" + url.removeprefix(bare)
    return url


def shared_store(url: str | None = None, home: Path | None = None) -> "Store":
    """One Store per URL (and lab folder) for the whole process (pages call this on every rerun)."""
    home = None if home is None else Path(home).expanduser().resolve()
    return _store_for(url or default_url(home), home)


@lru_cache(maxsize=8)
def _store_for(url: str, home: Path | None) -> "Store":
    return Store(url, home=home)


def new_run_id() -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(8))


def check_run_id(run_id: str) -> None:
    """Run ids are 1-32 characters of a-z and 0-9, so they are safe as folder names."""
    if not isinstance(run_id, str) or not 1 <= len(run_id) <= 32 or any(c not in ID_ALPHABET for c in run_id):
        raise RunNotFound(f"{run_id!r} is not a run id (1-32 characters of a-z, 0-9)")


class Store(FileMixin, SweepMixin):
    """A handle on the run store; safe to share between threads (see `shared_store`). Files (artifacts,
    run folders) live under `home`, by default `$LAB_HOME` read at each use."""

    def __init__(self, url: str | None = None, *, home: Path | None = None) -> None:
        self._home = None if home is None else Path(home)
        self.url = url or default_url(self._home)
        self.engine = self._connect(self.url)
        migrate(self.engine)
        self._epochs = EpochWriter(self.engine, self.url, BUSY_TIMEOUT_MS)

    @staticmethod
    def _connect(url: str) -> Engine:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        return create_engine(_with_installed_driver(url), pool_pre_ping=True)

    def after_fork(self) -> None:
        """In a forked child (a writer process): leave the parent's pooled connections to the parent;
        the child opens its own (SQLite's epoch writer does so by itself)."""
        self.engine.dispose(close=False)

    @property
    def home(self) -> Path:
        return self._home or lab_home()

    def run_folder(self, run_id: str) -> Path:
        """Where a run's files (checkpoints) live; named by the generated id, never by the run name."""
        check_run_id(run_id)
        return self.home / "runs" / run_id

    # -- writing ---------------------------------------------------------------------------------

    def create_run(self, config: dict, *, name: str | None = None, project: str = "default",
                   source: str = "script", status: RunStatus = RunStatus.RUNNING, run_id: str | None = None,
                   group: str | None = None, tags=(), notes: str = "", sweep_id: str | None = None,
                   environment: dict | None = None, code: str | None = None) -> str:
        """Record a new run; names, projects, tags are labels stored as given (never paths)."""
        run_id = run_id or new_run_id()
        check_run_id(run_id)
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(insert(runs).values(
                id=run_id, name=name or f"run-{run_id}", project=project or "default", status=status.value,
                reason="", config=json.dumps(config), summary="{}", source=source, created_at=now,
                heartbeat_at=now, group_name=group, tags=json.dumps(list(tags)), notes=notes, sweep_id=sweep_id,
                environment=json.dumps(environment or {}), code=code))
        return run_id

    def update_run(self, run_id: str, **fields) -> None:
        """Change a run's labels: name, tags, notes, group, config (config merges, as W&B's does)."""
        allowed = {"name", "tags", "notes", "group", "config"}
        unknown = sorted(set(fields) - allowed)
        if unknown:
            raise ValueError(f"cannot update {unknown}; allowed: {', '.join(sorted(allowed))}")
        values = {("group_name" if k == "group" else k): v for k, v in fields.items()}
        if "tags" in values:
            values["tags"] = json.dumps(list(values["tags"]))
        if "config" in values:
            values["config"] = json.dumps({**self.get_run(run_id).config, **values["config"]})
        with self.engine.begin() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id).values(**values))

    def change_config(self, run_id: str, changes: dict, *, step: int | None = None) -> None:
        """Merge `changes` into a run's config and log a "config" event for each value that changed
        ({"field", "value"}, plus "previous" where the key was set before), in one transaction."""
        with self.engine.begin() as conn:
            row = conn.execute(select(runs.c.config).where(runs.c.id == run_id)).first()
            if row is None:
                raise RunNotFound(f"no run {run_id!r} in the store")
            config, now = json.loads(row.config), time.time()
            rows = [{"run_id": run_id, "kind": "config", "step": step, "epoch": None, "wall_time": now,
                     "data": json.dumps({"field": k, "value": v, **({"previous": config[k]} if k in config else {})})}
                    for k, v in changes.items() if k not in config or config[k] != v]
            if rows:
                conn.execute(update(runs).where(runs.c.id == run_id).values(config=json.dumps({**config, **changes})))
                conn.execute(insert(events), rows)

    def reopen_run(self, run_id: str, status: RunStatus = RunStatus.RUNNING) -> None:
        """Mark an ended run running (or queued) again to resume it; its history is kept."""
        with self.engine.begin() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id).values(
                status=status.value, reason="", ended_at=None, heartbeat_at=time.time()))

    def forget_after_epoch(self, run_id: str, epoch: int) -> None:
        """Drop metrics logged for epochs after `epoch` (the epoch in progress when a run died, which a
        resume trains again)."""
        with self.engine.begin() as conn:
            conn.execute(delete(metrics).where(metrics.c.run_id == run_id, metrics.c.epoch > epoch))

    def delete_run(self, run_id: str) -> None:
        """Delete a run, its rows and its folder (artifact files stay: other runs may share them)."""
        import shutil

        folder = self.run_folder(run_id)
        with self.engine.begin() as conn:
            for table in (metrics, events, controls):
                conn.execute(delete(table).where(table.c.run_id == run_id))
            self.delete_run_files(conn, run_id)
            conn.execute(delete(runs).where(runs.c.id == run_id))
        shutil.rmtree(folder, ignore_errors=True)

    def log_metrics(self, run_id: str, values: dict[str, float], *, step: int | None = None,
                    epoch: int | None = None, summary: dict[str, Any] | None = None) -> None:
        """Write one row per key in a single transaction, and refresh the run's heartbeat; `summary`
        values are merged into the run's summary in the same transaction."""
        self.record_epoch(run_id, values, step=step, epoch=epoch, summary=summary)

    def record_epoch(self, run_id: str, values: dict[str, float], *, step: int | None, epoch: int | None,
                     step_losses: Iterable[float] = (), first_step: int = 0,
                     epoch_events: Iterable[tuple[str, dict, int | None]] = (),
                     summary: dict[str, Any] | None = None) -> None:
        """One epoch's record in one transaction: its metrics at `step`, per-step losses (key `step_loss`,
        steps numbered from `first_step` + 1), events (kind, data, step) and summary values; the
        heartbeat is refreshed. Either all of it is stored or none."""
        now = time.time()
        rows = [(run_id, k, _number(v), step, epoch, now) for k, v in values.items()]
        rows += [(run_id, "step_loss", _number(v), first_step + i + 1, epoch, now)
                 for i, v in enumerate(step_losses)]
        event_rows = [(run_id, kind, json.dumps(data), at_step, epoch, now) for kind, data, at_step in epoch_events]
        self._epochs.write(run_id, now, rows, event_rows, summary)

    def log_event(self, run_id: str, kind: str, data: dict | None = None, *, step: int | None = None,
                  epoch: int | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(events).values(run_id=run_id, kind=kind, data=json.dumps(data or {}),
                                               step=step, epoch=epoch, wall_time=time.time()))

    def update_summary(self, run_id: str, values: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            summary = {**self._summary(conn, run_id), **values}
            conn.execute(update(runs).where(runs.c.id == run_id).values(summary=json.dumps(summary)))

    def _summary(self, conn, run_id: str) -> dict:
        row = conn.exec_driver_sql(self._epochs.sql["summary"], (run_id,)).first()
        if row is None:
            raise RunNotFound(f"no run {run_id!r} in the store")
        return json.loads(row[0])

    def finish_run(self, run_id: str, status: RunStatus, reason: str, summary: dict | None = None) -> None:
        """Record how a run ended; a run that already ended keeps its first final status."""
        if summary:
            self.update_summary(run_id, summary)
        final = [s.value for s in RunStatus if s.is_final]
        with self.engine.begin() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id, runs.c.status.not_in(final))
                         .values(status=status.value, reason=reason, ended_at=time.time()))

    def claim_queued(self) -> str | None:
        """Atomically move the oldest queued run to running; its id, or None when none is queued."""
        with self.engine.begin() as conn:
            for row in conn.execute(select(runs.c.id).where(runs.c.status == RunStatus.QUEUED.value)
                                    .order_by(runs.c.created_at).limit(5)):
                claimed = conn.execute(update(runs).where(runs.c.id == row.id,
                                                          runs.c.status == RunStatus.QUEUED.value)
                                       .values(status=RunStatus.RUNNING.value, heartbeat_at=time.time()))
                if claimed.rowcount == 1:
                    return row.id
        return None

    def set_progress(self, run_id: str, progress: dict) -> None:
        """Where training is (epoch, step of the epoch...); also refreshes the heartbeat."""
        with self.engine.begin() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id)
                         .values(progress=json.dumps(progress), heartbeat_at=time.time()))

    def send_control(self, run_id: str, command: str, data: dict | None = None) -> None:
        """Ask a running run to stop, pause, resume, or `set` hyperparameters (read between steps)."""
        if command not in CONTROL_COMMANDS:
            raise ValueError(f"unknown control {command!r}; choose one of: {', '.join(CONTROL_COMMANDS)}")
        with self.engine.begin() as conn:
            conn.execute(insert(controls).values(run_id=run_id, command=command, data=json.dumps(data or {}),
                                                 created_at=time.time()))

    def take_controls(self, run_id: str) -> list[tuple[str, dict]]:
        """The run's unread control rows, oldest first, marked as read in the same transaction."""
        pending = (controls.c.run_id == run_id) & controls.c.consumed_at.is_(None)
        with self.engine.begin() as conn:
            rows = conn.execute(select(controls).where(pending).order_by(controls.c.id)).fetchall()
            if rows:
                conn.execute(update(controls).where(controls.c.id.in_([r.id for r in rows]))
                             .values(consumed_at=time.time()))
        return [(r.command, json.loads(r.data)) for r in rows]

    def mark_stale_as_crashed(self, max_silence_s: float) -> list[str]:
        """Runs still 'running' whose heartbeat is older than `max_silence_s`: mark them crashed."""
        cutoff = time.time() - max_silence_s
        stale = (runs.c.status == RunStatus.RUNNING.value) & (runs.c.heartbeat_at < cutoff)
        with self.engine.begin() as conn:
            ids = [r.id for r in conn.execute(select(runs.c.id).where(stale))]
            if ids:
                conn.execute(update(runs).where(runs.c.id.in_(ids), stale).values(
                    status=RunStatus.CRASHED.value, ended_at=time.time(),
                    reason=f"no heartbeat for {max_silence_s:.0f} s: the training process died"))
        return ids

    # -- reading ---------------------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRecord:
        with self.engine.connect() as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
        if row is None:
            raise RunNotFound(f"no run {run_id!r} in the store ({self.url}); `python -m core runs` lists them")
        return _record(row)

    def list_runs(self, project: str | None = None, limit: int | None = None,
                  sweep_id: str | None = None, source: str | None = None) -> list[RunRecord]:
        """Runs, newest first; only those of `project`, `sweep_id` or `source` where given."""
        query = select(runs).order_by(runs.c.created_at.desc(), runs.c.id)
        for column, wanted in ((runs.c.project, project), (runs.c.sweep_id, sweep_id), (runs.c.source, source)):
            if wanted is not None:
                query = query.where(column == wanted)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [_record(row) for row in conn.execute(query)]

    def metric_rows(self, run_id: str, keys: Iterable[str] | None = None) -> list[dict]:
        query = select(metrics).where(metrics.c.run_id == run_id).order_by(metrics.c.id)
        if keys is not None:
            query = query.where(metrics.c.key.in_(list(keys)))
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def event_rows(self, run_id: str) -> list[dict]:
        query = select(events).where(events.c.run_id == run_id).order_by(events.c.id)
        with self.engine.connect() as conn:
            return [{**dict(row._mapping), "data": json.loads(row.data)} for row in conn.execute(query)]

    def metrics_frame(self, run_id: str):
        """Per-epoch metrics as a wide DataFrame: one row per epoch, one column per key."""
        import pandas as pd

        rows = [r for r in self.metric_rows(run_id)
                if r["epoch"] is not None and r["key"] not in ("step_loss", "epoch")]
        if not rows:
            return pd.DataFrame(columns=["epoch"])
        frame = pd.DataFrame(rows).pivot_table(index="epoch", columns="key", values="value", aggfunc="last")
        return frame.reset_index().rename_axis(columns=None)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _record(row) -> RunRecord:
    return RunRecord(row.id, row.name, row.project, RunStatus(row.status), row.reason,
                     json.loads(row.config), json.loads(row.summary), row.source, row.created_at, row.ended_at,
                     row.heartbeat_at, json.loads(row.progress) if row.progress else None, row.group_name,
                     tuple(json.loads(row.tags or "[]")), row.notes or "", row.sweep_id,
                     json.loads(row.environment or "{}"))
