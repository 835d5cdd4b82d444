"""The epoch write's own SQLite connections: per thread, per process, errors as SQLAlchemy's."""

import multiprocessing
import os
import sqlite3
import threading

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from core.tracker import Store
from core.tracker.hotpath import sqlite_file


def _log_from_child(store: Store, run_id: str) -> None:
    from core.tracker import hotpath

    inherited = store._epochs._local.conn
    store.log_metrics(run_id, {"loss": 2.0}, step=2)          # the parent's Store object, in the child
    if store._epochs._local.conn is inherited or hotpath._INHERITED != [inherited]:
        raise SystemExit(3)                                    # it wrote through the parent's connection


def test_a_forked_child_writes_through_its_own_connection_and_the_parent_keeps_its_own(lab_home):
    store = Store()
    run_id = store.create_run({})
    store.log_metrics(run_id, {"loss": 1.0}, step=1)          # the parent opens its connection
    parent_conn = store._epochs._local.conn
    child = multiprocessing.get_context("fork").Process(target=_log_from_child, args=(store, run_id))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    store.log_metrics(run_id, {"loss": 3.0}, step=3)
    assert store._epochs._local.conn is parent_conn
    assert [r["value"] for r in store.metric_rows(run_id)] == [1.0, 2.0, 3.0]
    with sqlite3.connect(lab_home / "lab.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_threads_sharing_a_store_each_get_a_connection_and_lose_no_row(lab_home):
    store = Store()
    run_id = store.create_run({})
    connections = []

    def log(offset):
        for i in range(200):
            store.record_epoch(run_id, {"loss": float(i)}, step=offset + i, epoch=None, step_losses=[0.5],
                               summary={f"last_{offset}": i})
        connections.append(store._epochs._local.conn)

    threads = [threading.Thread(target=log, args=(k * 1000,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(c) for c in connections}) == 4
    assert len(store.metric_rows(run_id)) == 4 * 200 * 2
    assert store.get_run(run_id).summary == {"last_0": 199, "last_1000": 199, "last_2000": 199, "last_3000": 199}


def test_a_failed_epoch_write_stores_nothing_and_raises_sqlalchemys_error(lab_home):
    store = Store()
    run_id = store.create_run({})
    with pytest.raises(IntegrityError):                        # the second event's run does not exist
        store._epochs.write(run_id, 1.0, [(run_id, "loss", 1.0, 1, 1, 1.0)],
                            [(run_id, "change", "{}", 1, 1, 1.0), ("nope", "change", "{}", 1, 1, 1.0)], None)
    assert store.metric_rows(run_id) == []
    store.log_metrics(run_id, {"loss": 1.0}, step=1)          # the connection is usable afterwards
    assert len(store.metric_rows(run_id)) == 1


def test_a_read_only_store_file_fails_with_an_operational_error(lab_home):
    store = Store()
    run_id = store.create_run({})
    store._epochs._local.conn = sqlite3.connect(f"file:{lab_home / 'lab.db'}?mode=ro", uri=True,
                                                isolation_level=None)
    store._epochs._local.pid = os.getpid()
    with pytest.raises(OperationalError):
        store.log_metrics(run_id, {"loss": 1.0}, step=1)


@pytest.mark.parametrize("url, expected", [
    ("sqlite:////tmp/lab.db", "/tmp/lab.db"), ("sqlite:///lab.db", "lab.db"), ("sqlite://", None),
    ("sqlite:///:memory:", None), ("sqlite:///file:x?mode=ro&uri=true", None),
    ("postgresql://u@h/db", None)])
def test_only_plain_sqlite_files_take_the_direct_path(url, expected):
    assert sqlite_file(url) == expected


def test_a_list_in_the_summary_is_stored_as_it_was_logged(lab_home):
    store = Store()
    run_id = store.create_run({})
    history = [1, 2]
    store.log_metrics(run_id, {}, summary={"history": history})
    history.append(3)                                          # the caller changes its own list afterwards
    store.log_metrics(run_id, {}, summary={"loss": 1.0})
    assert store.get_run(run_id).summary == {"history": [1, 2], "loss": 1.0}


def test_an_epoch_of_a_thousand_step_losses_is_stored_whole_and_in_order(store_url):
    store = Store(store_url)
    run_id = store.create_run({})
    losses = [i / 1000 for i in range(1007)]                                  # a full MNIST epoch at batch 64
    store.record_epoch(run_id, {"val_loss": 0.5}, step=len(losses), epoch=1, step_losses=losses,
                       epoch_events=[("change", {"field": "lr", "value": 0.1}, 3)])
    rows = store.metric_rows(run_id, ["step_loss"])
    assert [r["value"] for r in rows] == losses and [r["step"] for r in rows] == list(range(1, len(losses) + 1))
    assert [r["value"] for r in store.metric_rows(run_id, ["val_loss"])] == [0.5]
    assert [(e["kind"], e["data"], e["step"]) for e in store.event_rows(run_id)] == [("change", {"field": "lr", "value": 0.1}, 3)]
