"""Sweep rows in the store: sweeps, their trials, and the metric histories a controller needs.

    store.create_sweep(sweep_id, config, project, name)
    run_id = store.add_trial(sweep_id, params, point_key, config)   # None when another agent took it
    store.sweep_trials(sweep_id)       # [{run_id, params, status, ...}]
    store.metric_histories(sweep_id, "val_loss")   # {run_id: [values in logging order]}
    store.finish_sweep(sweep_id)       # running -> finished (a stopped sweep stays stopped)

A trial and its run are inserted in one transaction that holds the sweep's write lock, so the run
cap holds however many agents claim at once; the unique (sweep, point) constraint makes sure two
agents never get the same grid point. Mixed into `Store`.
"""

from __future__ import annotations

import json
import time

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from core.status import RunStatus
from core.tracker.schema import metrics, runs, sweep_trials, sweeps


class SweepMixin:
    def create_sweep(self, sweep_id: str, config: dict, project: str, name: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(sweeps).values(id=sweep_id, name=name, project=project, config=json.dumps(config),
                                               state="running", created_at=time.time()))

    def get_sweep(self, sweep_id: str) -> dict:
        with self.engine.connect() as conn:
            row = conn.execute(select(sweeps).where(sweeps.c.id == sweep_id)).first()
        if row is None:
            raise LookupError(f"no sweep {sweep_id!r} in the store ({self.url})")
        return {"sweep_id": row.id, "name": row.name, "project": row.project, "config": json.loads(row.config),
                "state": row.state, "created_at": row.created_at}

    def list_sweeps(self) -> list[dict]:
        with self.engine.connect() as conn:
            ids = conn.execute(select(sweeps.c.id).order_by(sweeps.c.created_at.desc())).scalars().all()
        return [self.get_sweep(i) for i in ids]

    def set_sweep_state(self, sweep_id: str, state: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(sweeps).where(sweeps.c.id == sweep_id).values(state=state))

    def finish_sweep(self, sweep_id: str) -> None:
        """Mark a sweep `finished`, unless it is no longer running (a stopped sweep stays stopped)."""
        with self.engine.begin() as conn:
            conn.execute(update(sweeps).where(sweeps.c.id == sweep_id, sweeps.c.state == "running")
                         .values(state="finished"))

    def add_trial(self, sweep_id: str, params: dict, point_key: str | None, config: dict, *, project: str,
                  run_cap: int | None, name: str | None = None, environment: dict | None = None,
                  progress: dict | None = None) -> str | None:
        """Create the run of a new trial; None when the point is taken or the sweep's run cap is reached.

        The count and the inserts happen under the sweep's write lock (SQLite: BEGIN IMMEDIATE;
        PostgreSQL: the sweep's row locked FOR UPDATE), so agents claiming at once never pass the cap.
        """
        from core.tracker.store import new_run_id

        run_id = new_run_id()
        now = time.time()
        try:
            with self.engine.begin() as conn:
                count = self._lock_sweep(conn, sweep_id)
                if run_cap is not None and count >= run_cap:
                    return None
                conn.execute(insert(sweep_trials).values(sweep_id=sweep_id, run_id=run_id, params=json.dumps(params),
                                                         point_key=point_key or run_id, created_at=now))
                conn.execute(insert(runs).values(
                    id=run_id, name=name or f"{sweep_id}-{count + 1}", project=project, status=RunStatus.RUNNING.value,
                    reason="", config=json.dumps(config), summary="{}", source="sweep", created_at=now,
                    heartbeat_at=now, tags=json.dumps([]), notes="", sweep_id=sweep_id,
                    environment=json.dumps(environment or {}), progress=json.dumps(progress or {})))
        except IntegrityError:
            return None
        return run_id

    def _lock_sweep(self, conn, sweep_id: str) -> int:
        """Take the sweep's write lock for the rest of the transaction; its number of trials."""
        if self.engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")       # the database's write lock, taken before reading
        conn.execute(select(sweeps.c.id).where(sweeps.c.id == sweep_id).with_for_update())
        return conn.execute(select(func.count()).select_from(sweep_trials)
                            .where(sweep_trials.c.sweep_id == sweep_id)).scalar()

    def sweep_trials(self, sweep_id: str) -> list[dict]:
        query = (select(sweep_trials.c.run_id, sweep_trials.c.params, sweep_trials.c.point_key, runs.c.status,
                        runs.c.reason, runs.c.summary, runs.c.created_at)
                 .join(runs, runs.c.id == sweep_trials.c.run_id, isouter=True)
                 .where(sweep_trials.c.sweep_id == sweep_id).order_by(sweep_trials.c.created_at))
        with self.engine.connect() as conn:
            rows = conn.execute(query).fetchall()
        return [{"run_id": r.run_id, "params": json.loads(r.params), "point_key": r.point_key,
                 "status": RunStatus(r.status) if r.status else RunStatus.CRASHED, "reason": r.reason or "",
                 "summary": json.loads(r.summary or "{}"), "created_at": r.created_at} for r in rows]

    def metric_histories(self, sweep_id: str, key: str, statuses=None) -> dict[str, list[float]]:
        """Every trial's logged values of `key`, in logging order (runs with none are absent); only
        the runs in one of `statuses` (RunStatus values) where given."""
        query = (select(metrics.c.run_id, metrics.c.value)
                 .join(sweep_trials, sweep_trials.c.run_id == metrics.c.run_id)
                 .where(sweep_trials.c.sweep_id == sweep_id, metrics.c.key == key).order_by(metrics.c.id))
        if statuses is not None:
            query = (query.join(runs, runs.c.id == metrics.c.run_id)
                     .where(runs.c.status.in_([RunStatus(s).value for s in statuses])))
        histories: dict[str, list[float]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                histories.setdefault(row.run_id, []).append(row.value if row.value is not None else float("nan"))
        return histories
