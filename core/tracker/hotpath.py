"""The write that every epoch and every `log()` call makes: metrics rows, events, the summary and the
heartbeat of one run, in one transaction.

    writer = EpochWriter(engine, url)
    writer.write(run_id, now, rows, event_rows, summary)    # all of it or none

On a SQLite file it goes straight through the `sqlite3` module on a connection of its own (one per
thread and process, opened on first use, with the store's pragmas) in a `BEGIN IMMEDIATE`
transaction. SQLAlchemy's connection checkout, implicit transaction and result wrapping cost about as
much again as the statements themselves. Errors come out as SQLAlchemy's exception classes, like
every other store call. Other databases (PostgreSQL) take the same statements through the engine.

A connection is never used in a process other than the one that opened it: after a fork, the child
opens its own and leaves the inherited one untouched (closing it could disturb the parent's locks).

The write's connection leaves WAL checkpoints to a thread of their own (`core.tracker.walcheckpoint`),
so that no epoch's commit waits for one.

The summary is merged without reading it back: the writer remembers the text it last stored for a
run and updates the row only where it still holds that text. When another writer changed it meanwhile
(a page, another process, another thread), nothing is updated, and the write reads the stored summary
and merges into that instead, in the same transaction.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from core.errors import RunNotFound
from core.tracker.walcheckpoint import FALLBACK_PAGES, WalCheckpoints

SQLITE_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA foreign_keys=ON", "PRAGMA synchronous=NORMAL")
_SCALARS = {int, float, str, bool, type(None)}
_INHERITED: list[sqlite3.Connection] = []        # connections a forked child must neither use nor close


def set_sqlite_pragmas(dbapi_connection, busy_timeout_ms: int) -> None:
    """The store's settings on a new SQLite connection: WAL, a busy timeout, foreign keys, NORMAL sync."""
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def hot_statements(paramstyle: str) -> dict[str, str]:
    """The statements of an epoch's write as driver SQL, placeholders in the driver's `paramstyle`."""
    mark = "?" if paramstyle == "qmark" else "%s"
    marks = ", ".join([mark] * 6)
    return {"summary": f"SELECT summary FROM runs WHERE id = {mark}",
            "beat_and_summary": f"UPDATE runs SET heartbeat_at = {mark}, summary = {mark} WHERE id = {mark}",
            "beat_and_summary_if": f"UPDATE runs SET heartbeat_at = {mark}, summary = {mark} "
                                   f"WHERE id = {mark} AND summary = {mark}",
            "beat": f"UPDATE runs SET heartbeat_at = {mark} WHERE id = {mark}",
            "metrics": f"INSERT INTO metrics (run_id, key, value, step, epoch, wall_time) VALUES ({marks})",
            "events": f"INSERT INTO events (run_id, kind, data, step, epoch, wall_time) VALUES ({marks})"}


def sqlite_file(url: str) -> str | None:
    """The database file of a `sqlite:///file` URL; None for other databases and in-memory ones."""
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///")
    return None if not path or path == ":memory:" or "?" in path or path.startswith("file:") else path


class EpochWriter:
    """One run's epoch record in one transaction (see the module's docstring)."""

    def __init__(self, engine: Engine, url: str, busy_timeout_ms: int) -> None:
        self.engine = engine
        self.sql = hot_statements(engine.dialect.paramstyle)
        self.path = sqlite_file(url)
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._stored: dict[str, tuple[str, dict]] = {}    # run id -> (summary text, its values) as last stored

    def write(self, run_id: str, now: float, rows: list[tuple], event_rows: list[tuple],
              summary: dict[str, Any] | None) -> None:
        if self.path is None:
            with self.engine.begin() as conn:
                stored = self._statements(conn.exec_driver_sql, run_id, now, rows, event_rows, summary)
            self._remember(run_id, stored)
            return
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")           # waits (busy timeout) for another writer
            try:
                stored = self._statements(conn.execute, run_id, now, rows, event_rows, summary, conn.executemany)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise DBAPIError.instance("epoch record", None, exc, sqlite3.Error) from exc
        self._local.checkpoints.committed()
        self._remember(run_id, stored)

    def _statements(self, execute, run_id, now, rows, event_rows, summary, executemany=None):
        """The transaction's statements; (summary text, values) when the summary was written."""
        sql, many, stored = self.sql, executemany or execute, None   # exec_driver_sql takes a list as many
        if summary:
            stored = self._merge_summary(execute, run_id, now, summary)
        else:
            execute(sql["beat"], (now, run_id))
        if rows:
            many(sql["metrics"], rows)
        if event_rows:
            many(sql["events"], event_rows)
        return stored

    def _merge_summary(self, execute, run_id: str, now: float, summary: dict) -> tuple[str, dict]:
        remembered = self._stored.get(run_id)
        if remembered is not None:
            values = {**remembered[1], **summary}
            text = json.dumps(values)
            if execute(self.sql["beat_and_summary_if"], (now, text, run_id, remembered[0])).rowcount == 1:
                return text, values
        found = execute(self.sql["summary"], (run_id,)).fetchone()    # an unknown run fails with RunNotFound
        if found is None:
            raise RunNotFound(f"no run {run_id!r} in the store")
        values = {**json.loads(found[0]), **summary}
        text = json.dumps(values)
        execute(self.sql["beat_and_summary"], (now, text, run_id))
        return text, values

    def _remember(self, run_id: str, stored: tuple[str, dict] | None) -> None:
        """Keep what was stored, unless it holds a caller's list or dict (which the caller may change)."""
        if stored is not None and all(type(v) in _SCALARS for v in stored[1].values()):
            if len(self._stored) >= 64 and run_id not in self._stored:
                self._stored.clear()
            self._stored[run_id] = stored

    def _connection(self) -> sqlite3.Connection:
        local, pid = self._local, os.getpid()
        conn = getattr(local, "conn", None)
        if conn is not None and local.pid == pid:
            return conn
        if conn is not None:                            # opened by the parent of this forked process
            _INHERITED.append(conn)
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None)
        set_sqlite_pragmas(conn, self.busy_timeout_ms)
        conn.execute(f"PRAGMA wal_autocheckpoint={FALLBACK_PAGES}")    # checkpoints: see the docstring
        local.conn, local.pid = conn, pid
        local.checkpoints = WalCheckpoints.of(self.path, self.busy_timeout_ms)
        return conn
