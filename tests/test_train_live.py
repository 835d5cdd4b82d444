"""Live controls end to end: the Train page's controls reach a run the real worker process trains."""

import json
import time

from streamlit.testing.v1 import AppTest

from core import ui_keys as keys
from core.status import RunStatus
from core.tracker import Store
from tests.conftest import REPO

NEW_LR = 0.0123


def train_page() -> AppTest:
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    at.switch_page("pages/1_Train.py")
    return at.run()


def poll(at: AppTest, done, seconds: float = 120.0) -> None:
    """Rerun the page (AppTest does not fire run_every by itself) until `done()`."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        at.run()
        assert not at.exception, at.exception
        if done():
            return
        time.sleep(0.3)
    raise AssertionError("the run did not get there in time")


def epoch_lrs(run_id: str) -> list[float]:
    return [row["value"] for row in Store().metric_rows(run_id) if row["key"] == "lr"]


def lr_chart_notes(at: AppTest) -> list[str]:
    chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith("-lr_chart"))    # ids end with the key
    return [note["text"] for note in json.loads(chart.proto.spec)["layout"].get("annotations", [])]


def test_a_live_lr_change_from_the_page_reaches_the_training_run():
    at = train_page()
    next(s for s in at.selectbox if s.label == "dataset").set_value("threshold")
    for label, value in (("epochs", "20000"), ("batch size", "6")):      # long: it trains until stopped
        next(t for t in at.text_input if t.label == label and t.form_id == "train_form").set_value(value)
    at.button[0].click().run()                                           # Start
    run_id = at.session_state[keys.ACTIVE_RUN]
    poll(at, lambda: len(epoch_lrs(run_id)) >= 2)
    at.button(key=f"pause_{run_id}").click().run()
    poll(at, lambda: (Store().get_run(run_id).progress or {}).get("paused"))
    paused_at = len(epoch_lrs(run_id))
    live_lr = next(t for t in at.text_input if t.label == "lr" and t.form_id == f"controls_{run_id}")
    live_lr.set_value(str(NEW_LR))
    next(b for b in at.button if b.label == "Apply changes").click().run()
    assert not at.exception and not at.error
    at.button(key=f"pause_{run_id}").click().run()                       # now labelled Resume
    poll(at, lambda: NEW_LR in epoch_lrs(run_id))
    at.button(key=f"stop_{run_id}").click().run()
    poll(at, lambda: Store().get_run(run_id).status.is_final)
    assert Store().get_run(run_id).status is RunStatus.STOPPED
    lrs = epoch_lrs(run_id)
    changed = lrs.index(NEW_LR)
    assert changed >= paused_at >= 2                                     # epochs before the change kept the old lr
    assert set(lrs[:changed]) == {1e-3} and set(lrs[changed:]) == {NEW_LR}
    changes = [e for e in Store().event_rows(run_id) if e["kind"] == "change"]
    assert [e["data"] for e in changes] == [{"field": "lr", "value": NEW_LR}]
    assert f"lr -> {NEW_LR}" in lr_chart_notes(at)                      # the lr chart marks where it happened
