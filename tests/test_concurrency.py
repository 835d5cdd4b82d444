"""Several writers and several browser sessions at once."""

import os
import sqlite3
import threading
import time

import pytest
from streamlit.testing.v1 import AppTest

from core.status import RunStatus
from core.tracker import Store
from tests.conftest import REPO


def test_a_locked_store_delays_writes_instead_of_failing(lab_home):
    store = Store()
    run_id = store.create_run({})
    locked = threading.Event()

    def hold_lock():
        conn = sqlite3.connect(lab_home / "lab.db", isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        locked.set()
        time.sleep(1.5)
        conn.execute("COMMIT")
        conn.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    locked.wait()
    start = time.monotonic()
    store.log_metrics(run_id, {"loss": 1.0}, step=1)           # waits for the lock, then succeeds
    waited = time.monotonic() - start
    holder.join()
    assert waited >= 1.0
    assert [r["value"] for r in store.metric_rows(run_id)] == [1.0]


def train_page() -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    at.switch_page("pages/1_Train.py")
    return at.run()


def wait_final(run_ids, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if all(Store().get_run(r).status.is_final for r in run_ids):
            return
        time.sleep(0.3)
    raise AssertionError("runs did not finish")


def test_two_sessions_training_at_once_each_see_their_own_run():
    from core import ui_keys as keys
    from core.compare import escape_markdown

    first, second = train_page(), train_page()
    first.button[0].click().run()
    second.button[0].click().run()                             # another session's run trains: not held, but said
    assert not second.exception and not second.warning
    assert any(i.value.startswith("2 runs are active: ") for i in second.info)
    ids = {first.session_state[keys.ACTIVE_RUN], second.session_state[keys.ACTIVE_RUN]}
    assert len(ids) == 2 and len(Store().list_runs()) == 2
    wait_final(ids)
    for at in (first, second):
        at.run()
        assert not at.exception
        own = at.session_state[keys.ACTIVE_RUN]
        assert [s.value for s in at.subheader] == [f"Run {own}: {escape_markdown(f'run-{own}')}"]
    assert all(Store().get_run(r).status is RunStatus.FINISHED for r in ids)
    starts = [next(e["data"] for e in Store().event_rows(r) if e["kind"] == "start") for r in ids]
    assert starts[0]["pid"] != starts[1]["pid"]                      # one process per run
    for start in starts:                                             # 2 slots share the cores
        assert start["torch_threads"] * 2 <= max(2, os.cpu_count())


def field(at: AppTest, label: str):
    return next(t for t in at.text_input if t.label == label and t.form_id == "train_form")


def test_a_double_click_on_start_starts_one_run_then_asks():
    at = train_page()
    field(at, "epochs").set_value("5000")                      # long enough to be training throughout
    at.button[0].click().run()
    at.button[0].click().run()                                 # the second click of a double click: ignored
    assert len(Store().list_runs()) == 1 and not at.warning
    run_id = Store().list_runs()[0].run_id
    field(at, "lr").set_value("0.01")
    at.button[0].click().run()                                 # a deliberate start while it trains: asked first
    assert [w.value for w in at.warning] == ["A run you started is still training. Start another one beside it?"]
    next(b for b in at.button if b.label == "Cancel").click().run()
    assert not at.warning and len(Store().list_runs()) == 1
    at.button(key=f"stop_{run_id}").click().run()
    wait_final([run_id])
    at.run()
    field(at, "epochs").set_value("2")
    at.button[0].click().run()                                 # a start after it ended: no question
    assert not at.exception and not at.warning and len(Store().list_runs()) == 2
    wait_final([r.run_id for r in Store().list_runs()])


@pytest.mark.slow
def test_the_job_cap_queues_runs_beyond_it(lab_home):
    """Three runs submitted at once to a real supervisor with one slot: never two training together,
    started in the order they were queued, all finished."""
    import subprocess
    import sys

    from core.config import TrainConfig
    from core.worker import submit

    store = Store()
    ids = [submit(TrainConfig(dataset="threshold", batch_size=6, epochs=120, seed=i), store=store, name=f"r{i}")
           for i in range(3)]
    worker = subprocess.Popen([sys.executable, "-m", "core", "worker", "--slots", "1"], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    most, deadline = 0, time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            runs = [store.get_run(run_id) for run_id in ids]
            most = max(most, sum(run.status is RunStatus.RUNNING for run in runs))
            if all(run.status.is_final for run in runs):
                break
            time.sleep(0.02)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert [store.get_run(run_id).status for run_id in ids] == [RunStatus.FINISHED] * 3
    assert most == 1
    starts = [next(e["wall_time"] for e in store.event_rows(run_id) if e["kind"] == "start") for run_id in ids]
    assert starts == sorted(starts)
