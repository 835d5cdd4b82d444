"""The app's training worker: a real supervisor process, started and stopped as the pages do."""

import multiprocessing
import os
import signal
import time

from core.config import TrainConfig
from core.status import RunStatus
from core.tracker import Store
from core.worker import StoreWatch, default_sigterm, ensure_worker, sigterm_held, stop_workers, submit


def alive(pid: int) -> bool:
    """Whether `pid` is a live process (an exited one waiting to be reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_stopping_the_apps_worker_stops_the_training_it_started(lab_home):
    store = Store()
    worker = ensure_worker(slots=1)
    run_id = submit(TrainConfig(dataset="threshold", batch_size=1, epochs=400), store=store, name="long")
    pid, deadline = None, time.monotonic() + 120
    while time.monotonic() < deadline and not (pid and store.metric_rows(run_id, ["val_acc"])):
        pid = (store.get_run(run_id).progress or {}).get("pid")
        time.sleep(0.1)
    assert pid and alive(pid), "the run never started training"
    try:
        assert stop_workers() == 1
        assert worker.process.poll() is not None
        deadline = time.monotonic() + 10
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(pid), "the training child outlived its supervisor"
        run = store.get_run(run_id)
        assert run.status is RunStatus.CRASHED and "code -15" in run.reason
        assert stop_workers() == 0
    finally:
        if alive(pid):
            os.kill(pid, 9)


def _ignore_then_take_the_default_back() -> None:
    """A child as the supervisor forks it: the supervisor's handler (here one that ignores) is copied,
    and a SIGTERM arrives before the child's first lines."""
    signal.signal(signal.SIGTERM, lambda *_: None)
    os.kill(os.getpid(), signal.SIGTERM)
    default_sigterm()
    time.sleep(10)                               # reached only if the SIGTERM was lost


def test_a_sigterm_sent_while_a_child_starts_still_ends_the_child():
    context = multiprocessing.get_context("fork")
    with sigterm_held():
        child = context.Process(target=_ignore_then_take_the_default_back)
        child.start()
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, [])      # the parent's mask is back
    child.join(timeout=20)
    assert child.exitcode == -signal.SIGTERM


def test_an_idle_supervisor_claims_after_another_connection_commits_and_once_a_second(lab_home, monkeypatch):
    import core.worker

    store = Store()
    watch = StoreWatch(store.url)
    assert watch.may_have_changed()                             # the first look
    assert not watch.may_have_changed()                         # nothing committed since
    store.create_run({}, status=RunStatus.QUEUED)               # a page queues a run
    assert watch.may_have_changed() and not watch.may_have_changed()
    monkeypatch.setattr(core.worker, "FORCE_CLAIM_S", 0.0)
    assert watch.may_have_changed()                             # the periodic look, changes or not
    assert StoreWatch("postgresql://lab@127.0.0.1/lab").may_have_changed()     # no data_version there
