"""Every tracker operation, on a real SQLite file and on a real PostgreSQL server."""

import hashlib
import math
import multiprocessing
import sqlite3

import pytest
from sqlalchemy.exc import IntegrityError

from core.config import TrainConfig
from core.errors import RunNotFound
from core.paths import UnsafePath
from core.runs import train_tracked
from core.status import RunStatus
from core.tracker import SchemaError, Store
from tests.conftest import MNIST_ROOT, needs_mnist
from tests.storeprocs import log_rows, open_store_at


def test_run_lifecycle(store_url):
    store = Store(store_url)
    run_id = store.create_run({"lr": 0.1}, name="a 'quoted' name; DROP TABLE runs", project="p",
                              group="g", tags=["x", "<b>y</b>"], notes="n")
    store.log_metrics(run_id, {"val_acc": 0.5, "val_loss": 1.0}, step=10, epoch=1)
    store.log_metrics(run_id, {"val_acc": 0.7, "val_loss": math.nan}, step=20, epoch=2)
    store.log_event(run_id, "change", {"field": "lr", "value": 0.01}, step=15, epoch=2)
    store.finish_run(run_id, RunStatus.FINISHED, "done", summary={"best_val_acc": 0.7})
    store.finish_run(run_id, RunStatus.CRASHED, "late")                # finished runs are immutable
    run = store.get_run(run_id)
    assert run.name == "a 'quoted' name; DROP TABLE runs" and run.status is RunStatus.FINISHED
    assert (run.group, run.tags, run.notes) == ("g", ("x", "<b>y</b>"), "n")
    assert run.reason == "done" and run.summary == {"best_val_acc": 0.7}
    frame = store.metrics_frame(run_id)
    assert frame["epoch"].tolist() == [1, 2] and frame["val_acc"].tolist() == [0.5, 0.7]
    assert math.isnan(frame["val_loss"].tolist()[1])
    assert store.event_rows(run_id)[0]["data"] == {"field": "lr", "value": 0.01}
    store.update_run(run_id, name="renamed", tags=["z"], config={"batch_size": 8})
    run = store.get_run(run_id)
    assert (run.name, run.tags, run.config) == ("renamed", ("z",), {"lr": 0.1, "batch_size": 8})
    store.delete_run(run_id)
    with pytest.raises(RunNotFound):
        store.get_run(run_id)
    assert store.metric_rows(run_id) == []


def test_one_epoch_is_recorded_whole_or_not_at_all(store_url):
    store = Store(store_url)
    run_id = store.create_run({})
    store.record_epoch(run_id, {"val_acc": 0.5}, step=3, epoch=1, step_losses=[2.0, 1.5, 1.0], first_step=0,
                       epoch_events=[("change", {"field": "lr", "value": 0.1}, 2)], summary={"val_acc": 0.5})
    with pytest.raises(TypeError):                     # an event that cannot be stored fails the whole epoch
        store.record_epoch(run_id, {"val_acc": 0.9}, step=6, epoch=2, step_losses=[0.5, 0.4, 0.3], first_step=3,
                           epoch_events=[("change", {"value": object()}, 5)], summary={"val_acc": 0.9})
    rows = store.metric_rows(run_id)
    assert {(r["key"], r["step"]) for r in rows} == {("val_acc", 3), ("step_loss", 1), ("step_loss", 2),
                                                     ("step_loss", 3)}
    assert [(e["kind"], e["step"], e["epoch"]) for e in store.event_rows(run_id)] == [("change", 2, 1)]
    assert store.get_run(run_id).summary == {"val_acc": 0.5}
    with pytest.raises(RunNotFound):
        store.record_epoch("nope", {"x": 1.0}, step=1, epoch=1, summary={"x": 1.0})


def test_sqlite_is_in_wal_mode_and_intact(lab_home):
    store = Store()
    store.create_run({})
    with sqlite3.connect(lab_home / "lab.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_migration_is_idempotent_and_a_newer_schema_is_refused(lab_home):
    url = f"sqlite:///{lab_home / 'lab.db'}"
    run_id = Store(url).create_run({"a": 1})
    assert Store(url).get_run(run_id).config == {"a": 1}            # second open migrates nothing away
    with sqlite3.connect(lab_home / "lab.db") as conn:
        conn.execute("UPDATE schema_info SET version = 99")
    with pytest.raises(SchemaError, match="newer Torch Lab"):
        Store(url)


def test_processes_opening_a_fresh_store_at_once_create_it_once(store_url):
    import time

    with multiprocessing.get_context("spawn").Pool(8) as pool:
        start_at = time.time() + 3                                   # after every worker has imported
        opened = pool.starmap(open_store_at, [(store_url, start_at)] * 8)
    assert opened == [1] * 8
    store = Store(store_url)
    assert len(store.list_runs()) == 8
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM schema_info").scalar() == 1


SCHEMA_1_RUNS = """CREATE TABLE runs (id VARCHAR(32) PRIMARY KEY, name TEXT NOT NULL, project TEXT NOT NULL,
    status VARCHAR(16) NOT NULL, reason TEXT NOT NULL, config TEXT NOT NULL, summary TEXT NOT NULL,
    source VARCHAR(32) NOT NULL, created_at FLOAT NOT NULL, ended_at FLOAT, heartbeat_at FLOAT, progress TEXT)"""


def test_a_schema_1_store_file_is_upgraded_in_place(lab_home):
    lab_home.mkdir()
    with sqlite3.connect(lab_home / "lab.db") as conn:           # a store as the first Torch Lab wrote it
        conn.execute(SCHEMA_1_RUNS)
        conn.execute("CREATE TABLE schema_info (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_info VALUES (1)")
        conn.execute("INSERT INTO runs VALUES ('old1', 'old run', 'p', 'finished', 'done', '{\"seed\": 3}', "
                     "'{\"best_val_acc\": 0.9}', 'cli', 1.0, 2.0, 2.0, NULL)")
    store = Store()
    old = store.get_run("old1")
    assert (old.name, old.seed, old.source, old.summary) == ("old run", 3, "cli", {"best_val_acc": 0.9})
    assert (old.group, old.tags, old.notes, old.sweep_id, old.environment) == (None, (), "", None, {})
    store.update_run("old1", tags=["kept"], group="g")
    new = store.create_run({}, tags=["t"], notes="n", sweep_id="sw1")
    assert store.get_run("old1").tags == ("kept",) and store.get_run(new).sweep_id == "sw1"
    with sqlite3.connect(lab_home / "lab.db") as conn:
        assert conn.execute("SELECT version FROM schema_info").fetchall() == [(2,)]
        columns = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
    assert {"group_name", "tags", "notes", "sweep_id", "environment", "code"} <= columns
    assert Store().get_run("old1").tags == ("kept",)                  # opening it again changes nothing


def test_runs_expose_their_seed_and_source(store_url):
    store = Store(store_url)
    seeded = store.create_run({"seed": 7, "lr": 0.1}, source="cli")
    record = store.get_run(seeded)
    assert (record.seed, record.source) == (7, "cli")
    assert record.to_dict()["seed"] == 7 and record.to_dict()["source"] == "cli"
    for config in ({}, {"seed": "x"}, {"seed": True}):
        assert store.get_run(store.create_run(config, source="app")).seed is None
    assert [r.source for r in store.list_runs()][-1] == "cli"


def test_unknown_run_and_path_like_ids(store_url):
    store = Store(store_url)
    with pytest.raises(RunNotFound, match="no run 'nope'"):
        store.get_run("nope")
    for bad in ("../x", "", "a/b", "..", "ABC", "x" * 33):
        with pytest.raises(RunNotFound):
            store.run_folder(bad)


def test_an_epoch_of_an_unknown_run_is_refused_and_writes_nothing(store_url):
    store = Store(store_url)
    with pytest.raises(RunNotFound, match="no run 'nope'"):
        store.record_epoch("nope", {"val_acc": 0.5}, step=1, epoch=1, summary={"val_acc": 0.5})
    with pytest.raises(IntegrityError):                              # the metrics' run must exist
        store.record_epoch("nope", {"val_acc": 0.5}, step=1, epoch=1, step_losses=[0.1],
                           epoch_events=[("change", {"field": "lr"}, 1)])
    with store.engine.connect() as conn:
        assert [conn.exec_driver_sql(f"SELECT COUNT(*) FROM {t}").scalar() for t in ("metrics", "events")] == [0, 0]


def test_record_epoch_writes_metrics_step_losses_events_summary_and_heartbeat_at_once(store_url):
    store = Store(store_url)
    run_id = store.create_run({})
    store.update_summary(run_id, {"kept": 1})
    before = store.get_run(run_id).heartbeat_at
    store.record_epoch(run_id, {"val_acc": 0.5, "val_loss": math.inf}, step=4, epoch=2, step_losses=[0.3, 0.2],
                       first_step=2, epoch_events=[("change", {"field": "lr", "value": 0.01}, 3)],
                       summary={"val_acc": 0.5})
    rows = store.metric_rows(run_id)
    assert [(r["key"], r["step"], r["epoch"]) for r in rows] == [("val_acc", 4, 2), ("val_loss", 4, 2),
                                                                 ("step_loss", 3, 2), ("step_loss", 4, 2)]
    assert rows[1]["value"] == math.inf and [r["value"] for r in rows[2:]] == [0.3, 0.2]
    assert [(e["kind"], e["data"], e["step"], e["epoch"]) for e in store.event_rows(run_id)] == \
        [("change", {"field": "lr", "value": 0.01}, 3, 2)]
    run = store.get_run(run_id)
    assert run.summary == {"kept": 1, "val_acc": 0.5} and run.heartbeat_at >= before


def test_queue_claim_controls_progress_and_stale_runs(store_url):
    store = Store(store_url)
    first = store.create_run({}, status=RunStatus.QUEUED)
    second = store.create_run({}, status=RunStatus.QUEUED)
    assert store.claim_queued() == first and store.claim_queued() == second and store.claim_queued() is None
    store.send_control(first, "set", {"lr": 0.01})
    store.send_control(first, "stop")
    assert store.take_controls(first) == [("set", {"lr": 0.01}), ("stop", {})]
    assert store.take_controls(first) == []
    with pytest.raises(ValueError, match="unknown control"):
        store.send_control(first, "explode")
    store.set_progress(first, {"epoch": 2})
    assert store.get_run(first).progress == {"epoch": 2}
    assert sorted(store.mark_stale_as_crashed(-1.0)) == sorted([first, second])
    assert store.get_run(first).status is RunStatus.CRASHED


def test_artifacts_versions_aliases_dedup_and_download(store_url, tmp_path):
    store = Store(store_url)
    run_id = store.create_run({})
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / "b.bin").write_bytes(b"\x00" * 10)
    v0 = store.log_artifact("data", "dataset", {"a.txt": tmp_path / "a.txt", "sub/b.bin": tmp_path / "b.bin"},
                            run_id=run_id, aliases=["best"])
    same = store.log_artifact("data", "dataset", {"a.txt": tmp_path / "a.txt", "sub/b.bin": tmp_path / "b.bin"})
    assert (v0.version, same.version, same.id) == (0, 0, v0.id)
    (tmp_path / "a.txt").write_text("changed")
    v1 = store.log_artifact("data", "dataset", {"a.txt": tmp_path / "a.txt", "copy.bin": tmp_path / "b.bin"})
    assert v1.version == 1 and v1.aliases == ("latest",)
    assert store.get_artifact("data", "best").version == 0
    assert store.get_artifact("data", "v1").files[0][0] == "a.txt"
    blobs = [p for p in (store.home / "artifacts").rglob("*") if p.is_file()]
    assert len(blobs) == 3                                         # b.bin stored once, two a.txt contents
    user = store.create_run({})
    used = store.use_artifact("data", "latest", user)
    assert store.artifact_users(used.id) == [user]
    assert [a.version for a in store.list_artifacts(run_id)] == [0]
    out = store.download_artifact(v0, tmp_path / "out")
    assert (out / "a.txt").read_text() == "hello" and (out / "sub" / "b.bin").read_bytes() == b"\x00" * 10
    with pytest.raises(LookupError):
        store.get_artifact("data", "v7")
    with pytest.raises(UnsafePath):
        store.log_artifact("evil", "x", {"../escape.txt": tmp_path / "a.txt"})


def test_tables_images_and_saved_files(store_url, tmp_path):
    store = Store(store_url)
    run_id = store.create_run({})
    png = b"\x89PNG fake bytes"
    sha = store.log_image(run_id, "samples", png, step=3, caption="c", size=(2, 2))
    assert store.read_blob(sha) == png and store.images(run_id)[0]["step"] == 3
    store.log_table(run_id, "cases", ["img", "label"], [[{"_type": "image", "sha256": sha}, "7"]], step=3)
    assert store.tables(run_id)[0]["rows"][0][1] == "7"
    (tmp_path / "notes.txt").write_text("x")
    store.save_run_file(run_id, "notes.txt", tmp_path / "notes.txt")
    assert store.run_files(run_id)[0]["size"] == 1


def test_training_through_the_store_records_epochs_events_artifact_and_outcome(store_url):
    from core.control import TrainControl

    store = Store(store_url)
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
    assert [e["kind"] for e in store.event_rows(run_id)] == ["start", "change", "end"]
    start = store.event_rows(run_id)[0]["data"]
    assert start["dataset"]["name"] == "digits" and start["num_train"] == 1438
    model = store.get_artifact(f"model-{run_id}", "best")
    assert model.type == "model" and {p for p, _, _ in model.files} == {"best.safetensors", "best.json"}
    assert run.summary["model_artifact"] == f"model-{run_id}:v0"


@pytest.mark.slow
@needs_mnist
def test_the_start_event_carries_the_dataset_file_checksums(lab_home):
    store = Store()
    config = TrainConfig(dataset="mnist", data_root=str(MNIST_ROOT), max_samples=200, model="logreg", epochs=1,
                         batch_size=64)
    run_id = store.create_run(config.to_dict(), source="cli")
    list(train_tracked(config, store, run_id))
    start = next(e["data"] for e in store.event_rows(run_id) if e["kind"] == "start")
    raw = MNIST_ROOT / "MNIST" / "raw"
    expected = [[name, hashlib.sha256((raw / name).read_bytes()).hexdigest()]
                for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")]
    assert start["dataset"]["name"] == "mnist" and start["dataset"]["files"] == expected


@pytest.mark.slow
def test_four_processes_log_4000_rows_into_one_sqlite_store(lab_home):
    url = f"sqlite:///{lab_home / 'lab.db'}"
    run_id = Store(url).create_run({})
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=log_rows, args=(url, run_id, w)) for w in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=300)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    rows = Store(url).metric_rows(run_id)
    assert len(rows) == 4000
    assert sorted({r["key"] for r in rows}) == ["w0", "w1", "w2", "w3"]


def test_runs_record_their_environment(store_url):
    import torch

    from core.runs import environment

    store = Store(store_url)
    run_id = store.create_run({}, environment=environment())
    recorded = store.get_run(run_id).environment
    assert recorded["torch"] == torch.__version__ and recorded["packages"]["numpy"]
    assert recorded["python"].count(".") == 2
