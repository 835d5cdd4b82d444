"""WAL checkpoints of a SQLite store, made by a thread of their own instead of inside a commit.

    WalCheckpoints.of(path, busy_timeout_ms).committed()    # after each commit of the epoch writer

In WAL mode every commit appends pages to the `-wal` file, and SQLite copies them back into the
database file (a checkpoint, fsynced) inside whichever commit takes the log past 1,000 pages. For an
epoch's record, about 15 pages, that is one commit in 60 or so, and that commit took 19-23 ms
instead of 0.2 ms on a 2-core machine, while the training thread waited (bench/README.md has the
figures). Here the epoch writer's connection leaves the checkpoint to a daemon thread of the
process, asked for every `EVERY` commits. It runs SQLite's passive checkpoint on a connection of its
own; SQLite releases the GIL while it copies and syncs, so the training thread goes on meanwhile.

A checkpoint that fails (the database busy or gone) is left to the next request. The epoch writer's
connection keeps SQLite's own automatic checkpoint at `FALLBACK_PAGES` (about 40 MB), so the log stays
bounded even if this thread could never run; the store's other connections keep SQLite's default.
One thread per database file and process: a forked child starts its own on its first request.
"""

from __future__ import annotations

import os
import sqlite3
import threading

EVERY = 32                    # epoch commits between two checkpoint requests
FALLBACK_PAGES = 10_000       # the epoch writer's own automatic checkpoint, should the thread never run


class WalCheckpoints:
    """The checkpoint thread of one database file in this process."""

    _lock = threading.Lock()
    _of: dict[tuple[str, int], "WalCheckpoints"] = {}

    def __init__(self, path: str, busy_timeout_ms: int) -> None:
        self.path, self.busy_timeout_ms = path, busy_timeout_ms
        self.commits = 0
        self.served = 0                                 # checkpoints made, failed ones included
        self._wanted = threading.Event()
        self._thread: threading.Thread | None = None      # started on the first request

    @classmethod
    def of(cls, path: str, busy_timeout_ms: int) -> "WalCheckpoints":
        key = (os.path.abspath(path), os.getpid())
        with cls._lock:
            if key not in cls._of:
                cls._of[key] = cls(path, busy_timeout_ms)
            return cls._of[key]

    def committed(self) -> None:
        """Count one commit; every `EVERY` commits, ask the thread for a checkpoint."""
        self.commits += 1
        if self.commits % EVERY == 0:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="lab-wal-checkpoints", daemon=True)
                    self._thread.start()
            self._wanted.set()

    def _run(self) -> None:
        conn = None
        while True:
            self._wanted.wait()
            self._wanted.clear()
            try:
                if conn is None:
                    conn = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None)
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error:
                pass                                    # the next request tries again (see the docstring)
            self.served += 1
