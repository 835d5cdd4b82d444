import math
import sqlite3

import pytest

from core.config import TrainConfig
from core.errors import RunNotFound
from core.runs import train_tracked
from core.status import RunStatus
from core.tracker import Store


def test_run_lifecycle_in_a_real_sqlite_file(lab_home):
    store = Store()
    run_id = store.create_run({"lr": 0.1}, name="a 'quoted' name; DROP TABLE runs", project="p")
    store.log_metrics(run_id, {"val_acc": 0.5, "val_loss": 1.0}, step=10, epoch=1)
    store.log_metrics(run_id, {"val_acc": 0.7, "val_loss": math.nan}, step=20, epoch=2)
    store.log_event(run_id, "change", {"field": "lr", "value": 0.01}, step=15, epoch=2)
    store.finish_run(run_id, RunStatus.FINISHED, "done", summary={"best_val_acc": 0.7})
    store.finish_run(run_id, RunStatus.CRASHED, "late")                # finished runs are immutable
    run = store.get_run(run_id)
    assert run.name == "a 'quoted' name; DROP TABLE runs" and run.status is RunStatus.FINISHED
    assert run.reason == "done" and run.summary == {"best_val_acc": 0.7}
    frame = store.metrics_frame(run_id)
    assert frame["epoch"].tolist() == [1, 2] and frame["val_acc"].tolist() == [0.5, 0.7]
    assert store.event_rows(run_id)[0]["data"] == {"field": "lr", "value": 0.01}
    with sqlite3.connect(lab_home / "lab.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_unknown_run_and_path_like_ids():
    store = Store()
    with pytest.raises(RunNotFound, match="no run 'nope'"):
        store.get_run("nope")
    for bad in ("../x", "", "a/b", "..", "ABC"):
        with pytest.raises(RunNotFound):
            store.run_folder(bad)


def test_training_through_the_store_records_epochs_events_and_outcome():
    from core.control import TrainControl

    store = Store()
    config = TrainConfig(dataset="digits", epochs=3, batch_size=256)
    run_id = store.create_run(config.to_dict(), source="test")
    control = TrainControl()
    for m in train_tracked(config, store, run_id, control=control):
        if m.epoch == 1:
            control.set(lr=0.01)
    run = store.get_run(run_id)
    assert run.status is RunStatus.FINISHED and run.summary["epochs_completed"] == 3
    frame = store.metrics_frame(run_id)
    assert frame["epoch"].tolist() == [1, 2, 3] and frame["lr"].tolist() == [1e-3, 0.01, 0.01]
    steps = store.metric_rows(run_id, ["step_loss"])
    assert [r["step"] for r in steps] == list(range(1, 3 * 6 + 1))
    kinds = [e["kind"] for e in store.event_rows(run_id)]
    assert kinds == ["start", "change", "end"]
    assert (store.run_folder(run_id) / "best.safetensors").is_file()
    assert store.list_runs()[0].run_id == run_id
