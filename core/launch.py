"""Starting runs from the Train page and choosing which one it watches, over a session-state mapping.

    run_id = request_start(state, store, config, "baseline")   # run id, or None: held or ignored
    config, name = take_pending(state)                          # the start held for "start another?"
    run_id, warning = watched_run(store, wanted)                # which run the live view follows
    run = latest_active(store)                                  # what to offer a page that watches nothing
    activity_text(store)                                        # "2 runs are active: 1 training, 1 queued..."
    run_id = train_again(state, store, best_run)                # its config queued again, then watched

`state` is any mutable mapping: Streamlit's session state in the app, a plain dict in tests. The keys
are those of `core.ui_keys`, and the values stay plain data (ids, dicts, lists). Nothing here imports
streamlit; the page shows the toasts and warnings.
"""

from __future__ import annotations

import time
from typing import MutableMapping

from core import ui_keys as keys
from core.config import TrainConfig
from core.errors import USER_ERRORS
from core.status import RunStatus
from core.tracker import RunRecord, Store
from core.worker import job_slots, submit

DOUBLE_CLICK_S = 3.0          # a second Start with the same config within this time is the same click


def is_active(store: Store, run_id: str | None) -> bool:
    """Whether `run_id` names a run that has not ended yet (queued, running); False for no or unknown run."""
    try:
        return run_id is not None and not store.get_run(run_id).status.is_final
    except USER_ERRORS:
        return False


def is_double_click(last: list | None, fingerprint: str, now: float, window_s: float = DOUBLE_CLICK_S) -> bool:
    """Whether a start of `fingerprint` at `now` repeats the last start ([fingerprint, time]) too soon."""
    return bool(last) and last[0] == fingerprint and now - last[1] < window_s


NOT_YOURS = ("In the demo you can steer, stop, resume, label and delete only the runs and sweeps you "
             "started in this browser tab.")


def claim(state: MutableMapping, run_id: str) -> str:
    """Note that this browser session started `run_id` (a run or a sweep); returns it."""
    state[keys.OWN_RUNS] = [*state.get(keys.OWN_RUNS, []), run_id]
    return run_id


def may_change(state: MutableMapping, run_id: str) -> bool:
    """Whether this session may steer, stop, resume, label or delete `run_id`: anyone at a local lab
    may; in a hosted demo (LAB_DEMO=1) a visitor may only touch what their own session started."""
    from core.demo import demo_limits

    return demo_limits() is None or run_id in state.get(keys.OWN_RUNS, ())


def request_start(state: MutableMapping, store: Store, config: TrainConfig, name: str, *,
                  confirmed: bool = False, now: float | None = None) -> str | None:
    """Queue `config` as a new run and return its id, or return None: the second click of a double
    click is ignored, and while this session's own run still trains the start is held under
    PENDING_START for confirmation. Runs of other sessions never hold a start (the job slots queue
    it; see `activity_text`). `confirmed` skips both checks. User errors (bad config) propagate."""
    fingerprint, now = config.to_json(), time.time() if now is None else now
    if not confirmed and is_double_click(state.get(keys.LAST_START), fingerprint, now):
        return None
    if not confirmed and is_active(store, state.get(keys.ACTIVE_RUN)):
        state[keys.PENDING_START] = {"config": config.to_dict(), "name": name}
        return None
    state[keys.LAST_START] = [fingerprint, now]
    run_id = claim(state, submit(config, store=store, name=name or None, source="app"))
    state[keys.ACTIVE_RUN] = run_id
    return run_id


def train_again(state: MutableMapping, store: Store, run) -> str:
    """Queue a new run with `run`'s config (a RunRecord's), named "<its name> again", and make it the
    run the Train page watches; returns its id. A config TrainConfig refuses raises ConfigError."""
    run_id = claim(state, submit(TrainConfig(**run.config), store=store, name=f"{run.name} again", source="app"))
    state[keys.ACTIVE_RUN] = run_id
    return run_id


def take_pending(state: MutableMapping) -> tuple[TrainConfig, str]:
    """The start held for confirmation, removed from `state`: (config, run name)."""
    pending = state.pop(keys.PENDING_START)
    return TrainConfig.from_dict(pending["config"]), pending["name"]


def active_runs(store: Store) -> list[RunRecord]:
    """The runs that have not ended (queued or running), newest first; from any session, the CLI or a sweep."""
    return [run for run in store.list_runs() if not run.status.is_final]


def latest_active(store: Store) -> RunRecord | None:
    """The newest run still training, else the newest queued one; None when no run is active."""
    active = active_runs(store)
    running = [run for run in active if run.status is RunStatus.RUNNING]
    return (running or active or [None])[0]


def activity_text(store: Store, slots: int | None = None) -> str | None:
    """How busy the lab is when more than one run is active ("2 runs are active: 1 training, 1 queued;
    the lab trains 2 at a time, ..."), so that a start beside other runs says where it stands; else None."""
    active = active_runs(store)
    if len(active) < 2:
        return None
    queued = sum(run.status is RunStatus.QUEUED for run in active)
    slots = slots or job_slots()
    return (f"{len(active)} runs are active: {len(active) - queued} training, {queued} queued; the lab trains "
            f"{slots} at a time, and queued runs start as running ones end.")


def watched_run(store: Store, wanted: str | None) -> tuple[str | None, str | None]:
    """The run the live view follows, and a warning: `wanted` (this session's run, or ?run=ID) when it
    exists; when it names no run, the latest active one (or None) with a warning; no run wanted, None."""
    if not wanted:
        return None, None
    try:
        return store.get_run(wanted).run_id, None
    except USER_ERRORS:
        warning = f"There is no run {wanted!r}; showing the latest running one instead."
    latest = latest_active(store)
    return (latest.run_id if latest else None), warning
