"""Training through the store (core.runs): each epoch's record and checkpoints are written by a
writer process forked from the training process, the record first, while the next epoch trains."""

import os

import pytest

import core.epochfile
import core.runs
from core.config import TrainConfig
from core.resume import read_last
from core.runs import train_tracked
from core.status import RunStatus
from core.tracker import Store
from core.writer import can_fork

FAST = dict(dataset="digits", epochs=4, batch_size=256)


def record_writes(monkeypatch, log, fail_record_at=None):
    """Wrap the epoch record and the file writes so that each notes, in `log`, what it wrote and in
    which process. A writer process forks after the wrappers are in place, so it runs them too."""
    real_record, real_write = core.runs.log_epoch, core.epochfile.write_in_turn

    def record(store, run_id, m):
        if m.epoch == fail_record_at:
            raise OSError(28, "No space left on device")
        real_record(store, run_id, m)
        with open(log, "a") as handle:
            handle.write(f"record{m.epoch} {os.getpid()}\n")

    def write(path, *parts, **options):
        real_write(path, *parts, **options)
        with open(log, "a") as handle:
            handle.write(f"{path.stem} {os.getpid()}\n")
    monkeypatch.setattr(core.runs, "log_epoch", record)
    monkeypatch.setattr(core.epochfile, "write_in_turn", write)


def written(log) -> list[tuple[str, int]]:
    return [(what, int(pid)) for what, pid in (line.split() for line in log.read_text().splitlines())]


def test_each_epoch_is_recorded_then_checkpointed_by_a_writer_process(tmp_path, monkeypatch):
    if not can_fork():
        pytest.skip("the writer process needs Linux")
    log = tmp_path / "writes"
    record_writes(monkeypatch, log)
    store = Store()
    run_id = store.create_run(TrainConfig(**FAST).to_dict(), source="test")
    metrics = list(train_tracked(TrainConfig(**FAST), store, run_id))
    expected = [what for m in metrics for what in [f"record{m.epoch}", *(["best"] if m.is_best else []), "last"]]
    assert [what for what, _ in written(log)] == expected
    assert len({pid for _, pid in written(log)}) == 1 and os.getpid() not in {pid for _, pid in written(log)}
    assert store.metrics_frame(run_id)["epoch"].tolist() == [1, 2, 3, 4]
    assert store.get_run(run_id).status is RunStatus.FINISHED and read_last(store.run_folder(run_id)).epoch == 4


def test_with_wait_for_record_each_epoch_is_in_the_store_when_it_is_yielded():
    store = Store()
    run_id = store.create_run(TrainConfig(**FAST).to_dict(), source="test")
    for m in train_tracked(TrainConfig(**FAST), store, run_id, wait_for_record=True):
        frame = store.metrics_frame(run_id)
        assert frame["epoch"].tolist() == list(range(1, m.epoch + 1)) and frame["val_loss"].iloc[-1] == m.val_loss


def test_a_record_that_fails_in_the_writer_fails_the_run_and_nothing_after_it_is_written(tmp_path, monkeypatch):
    log = tmp_path / "writes"
    record_writes(monkeypatch, log, fail_record_at=2)
    store = Store()
    run_id = store.create_run(TrainConfig(**FAST).to_dict(), source="test")
    with pytest.raises(OSError, match="No space left"):
        list(train_tracked(TrainConfig(**FAST), store, run_id))
    run = store.get_run(run_id)
    assert run.status is RunStatus.FAILED and "No space left" in run.reason
    assert [what for what, _ in written(log)] == ["record1", "best", "last"]     # epoch 2's files never followed
    assert store.metrics_frame(run_id)["epoch"].tolist() == [1] and read_last(store.run_folder(run_id)).epoch == 1
    assert not list(store.run_folder(run_id).glob(".*.tmp"))


def test_closing_the_run_commits_the_record_it_was_handed_before_the_run_is_stopped():
    store = Store()
    run_id = store.create_run(TrainConfig(**FAST).to_dict(), source="test")
    epochs = train_tracked(TrainConfig(**FAST), store, run_id)
    first = next(epochs)                     # its record is handed over, not yet sent
    epochs.close()
    run = store.get_run(run_id)
    assert run.status is RunStatus.STOPPED and store.metrics_frame(run_id)["epoch"].tolist() == [first.epoch]
    assert run.summary["val_loss"] == first.val_loss
    assert max(row["wall_time"] for row in store.metric_rows(run_id)) <= run.ended_at    # recorded, then stopped
