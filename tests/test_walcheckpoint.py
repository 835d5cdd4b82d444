"""WAL checkpoints made by a thread of their own, not inside an epoch's commit."""

import multiprocessing
import sqlite3
import time

from core.tracker import Store
from core.tracker.walcheckpoint import EVERY, FALLBACK_PAGES, WalCheckpoints


def log_epochs(store: Store, run_id: str, epochs: int, first: int = 0) -> None:
    for epoch in range(first, first + epochs):
        store.record_epoch(run_id, {"val_acc": epoch / 1000}, step=epoch, epoch=epoch,
                           step_losses=[0.5] * 20, first_step=epoch * 20, summary={"epoch": epoch})


def wait_for(condition, seconds: float = 30.0) -> bool:
    end = time.monotonic() + seconds
    while not condition() and time.monotonic() < end:
        time.sleep(0.01)
    return condition()


def test_the_thread_moves_the_log_into_the_database_file_and_the_writer_does_not(lab_home):
    store = Store()
    run_id = store.create_run({})
    database, log = lab_home / "lab.db", lab_home / "lab.db-wal"
    log_epochs(store, run_id, 1)
    checkpoints = WalCheckpoints.of(str(database), 5000)
    assert store._epochs._local.checkpoints is checkpoints and checkpoints._thread is None
    size, served = database.stat().st_size, checkpoints.served
    log_epochs(store, run_id, EVERY - 2, first=1)                 # one commit short of a request
    time.sleep(0.2)
    assert checkpoints.served == served and database.stat().st_size == size   # all still in the log
    assert store._epochs._local.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == FALLBACK_PAGES
    log_epochs(store, run_id, 1, first=EVERY - 1)                 # the request
    assert wait_for(lambda: checkpoints.served > served) and checkpoints._thread.daemon
    assert database.stat().st_size > size and log.stat().st_size > 0
    rows = sqlite3.connect(f"file:{database}?immutable=1", uri=True).execute(      # the file alone, no log
        "SELECT COUNT(*) FROM metrics").fetchone()[0]
    assert rows == EVERY * 21


def _log_in_child(store: Store, run_id: str, parent_thread) -> None:
    log_epochs(store, run_id, EVERY, first=1000)
    mine = store._epochs._local.checkpoints
    if mine._thread in (None, parent_thread) or not wait_for(lambda: mine.served > 0):
        raise SystemExit(3)


def test_a_forked_child_starts_its_own_thread(lab_home):
    store = Store()
    run_id = store.create_run({})
    log_epochs(store, run_id, EVERY)
    parent = store._epochs._local.checkpoints
    assert wait_for(lambda: parent.served > 0)
    child = multiprocessing.get_context("fork").Process(target=_log_in_child, args=(store, run_id, parent._thread))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert len(store.metric_rows(run_id)) == 2 * EVERY * 21
