"""Store operations that resume and revise runs, on a real SQLite file and a real PostgreSQL server
(the `store_url` fixture runs each test on both)."""

import pytest

from core.errors import RunNotFound
from core.status import RunStatus
from core.tracker import Store


def test_reopen_run_makes_an_ended_run_running_again_and_keeps_its_history(store_url):
    store = Store(store_url)
    run_id = store.create_run({"lr": 0.1})
    store.log_metrics(run_id, {"val_acc": 0.5}, step=1, epoch=1)
    store.finish_run(run_id, RunStatus.CRASHED, "no heartbeat")
    assert store.get_run(run_id).ended_at is not None
    store.reopen_run(run_id)
    run = store.get_run(run_id)
    assert (run.status, run.reason, run.ended_at) == (RunStatus.RUNNING, "", None)
    assert [r["value"] for r in store.metric_rows(run_id)] == [0.5]
    store.finish_run(run_id, RunStatus.STOPPED, "stopped")
    store.reopen_run(run_id, RunStatus.QUEUED)
    assert store.get_run(run_id).status is RunStatus.QUEUED and store.claim_queued() == run_id


def test_forget_after_epoch_drops_only_the_later_epochs_of_that_run(store_url):
    store = Store(store_url)
    run_id, other = store.create_run({}), store.create_run({})
    for epoch in (1, 2, 3):
        store.record_epoch(run_id, {"val_acc": epoch / 10}, step=epoch * 2, epoch=epoch, step_losses=[1.0, 0.5],
                           first_step=(epoch - 1) * 2)
        store.log_metrics(other, {"val_acc": epoch / 10}, step=epoch, epoch=epoch)
    store.log_metrics(run_id, {"note": 1.0}, step=9)                    # no epoch: kept
    store.forget_after_epoch(run_id, 1)
    assert sorted((r["key"], r["epoch"]) for r in store.metric_rows(run_id)) == [
        ("note", None), ("step_loss", 1), ("step_loss", 1), ("val_acc", 1)]
    assert store.metrics_frame(other)["epoch"].tolist() == [1, 2, 3]


def test_list_runs_filters_by_project_sweep_source_and_limit(store_url):
    store = Store(store_url)
    a = store.create_run({}, project="mnist", source="cli")
    b = store.create_run({}, project="mnist", source="sweep", sweep_id="sw1")
    c = store.create_run({}, project="toy", source="script")
    ids = lambda **filters: [r.run_id for r in store.list_runs(**filters)]  # noqa: E731
    assert ids() == [c, b, a]                                            # newest first
    assert ids(project="mnist") == [b, a] and ids(project="none") == []
    assert ids(sweep_id="sw1") == [b] and ids(source="script") == [c] and ids(source="cli", project="toy") == []
    assert ids(limit=2) == [c, b] and ids(project="mnist", limit=1) == [b]


def test_update_summary_merges_values_and_refuses_an_unknown_run(store_url):
    store = Store(store_url)
    run_id = store.create_run({})
    store.update_summary(run_id, {"best_val_acc": 0.5, "epochs": 2})
    store.update_summary(run_id, {"best_val_acc": 0.75, "acc": {"max": 0.75}})
    assert store.get_run(run_id).summary == {"best_val_acc": 0.75, "epochs": 2, "acc": {"max": 0.75}}
    with pytest.raises(RunNotFound, match="no run 'nope'"):
        store.update_summary("nope", {"x": 1})


def test_change_config_merges_and_logs_an_event_per_changed_value(store_url):
    store = Store(store_url)
    run_id = store.create_run({"lr": 0.1, "epochs": 3})
    store.change_config(run_id, {"lr": 0.01, "epochs": 3, "batch_size": 8}, step=4)
    assert store.get_run(run_id).config == {"lr": 0.01, "epochs": 3, "batch_size": 8}
    assert [(e["kind"], e["step"], e["data"]) for e in store.event_rows(run_id)] == [
        ("config", 4, {"field": "lr", "value": 0.01, "previous": 0.1}),
        ("config", 4, {"field": "batch_size", "value": 8})]
    with pytest.raises(RunNotFound):
        store.change_config("nope", {"lr": 1.0})


def test_the_summary_merges_into_what_another_writer_stored_meanwhile(store_url):
    store = Store(store_url)
    run_id = store.create_run({})
    store.log_metrics(run_id, {"loss": 1.0}, step=1, summary={"loss": 1.0, "note": "a"})
    other = Store(store_url)                                   # another writer, remembering its own texts
    other.log_metrics(run_id, {"acc": 0.5}, step=1, summary={"acc": 0.5})
    store.update_summary(run_id, {"tag": "x"})                 # and a change through the engine
    store.log_metrics(run_id, {"loss": 0.5}, step=2, summary={"loss": 0.5})
    assert store.get_run(run_id).summary == {"loss": 0.5, "note": "a", "acc": 0.5, "tag": "x"}
    store.log_metrics(run_id, {"loss": 0.25}, step=3, summary={"loss": 0.25})   # unchanged meanwhile
    other.log_metrics(run_id, {"acc": 0.75}, step=3, summary={"acc": 0.75})
    assert store.get_run(run_id).summary == {"loss": 0.25, "note": "a", "acc": 0.75, "tag": "x"}
