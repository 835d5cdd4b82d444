"""core.launch: starting runs from the Train page (double clicks, held starts) and which run it watches."""

from core import ui_keys as keys
from core.config import TrainConfig
from core.launch import (DOUBLE_CLICK_S, activity_text, is_active, is_double_click, latest_active, request_start,
                         take_pending, train_again, watched_run)
from core.status import RunStatus
from core.tracker import Store

CONFIG = TrainConfig(dataset="threshold", epochs=2, batch_size=6)


def test_a_double_click_is_the_same_config_again_within_the_window():
    last = ['{"lr": 0.1}', 100.0]
    assert is_double_click(last, '{"lr": 0.1}', 100.0 + DOUBLE_CLICK_S - 0.1)
    assert not is_double_click(last, '{"lr": 0.1}', 100.0 + DOUBLE_CLICK_S)        # too late
    assert not is_double_click(last, '{"lr": 0.2}', 100.5)                           # another config
    assert not is_double_click(None, '{"lr": 0.1}', 100.5)                           # no start yet


def test_a_start_is_queued_then_a_double_click_ignored_then_held_while_it_trains():
    store, state = Store(), {}
    run_id = request_start(state, store, CONFIG, "", now=10.0)
    run = store.get_run(run_id)
    assert run.status is RunStatus.QUEUED and run.source == "app" and run.config == CONFIG.to_dict()
    assert state[keys.ACTIVE_RUN] == run_id and state[keys.LAST_START] == [CONFIG.to_json(), 10.0]
    assert request_start(state, store, CONFIG, "", now=11.0) is None                 # the second click: ignored
    assert keys.PENDING_START not in state
    later = 10.0 + DOUBLE_CLICK_S + 1
    assert request_start(state, store, CONFIG, "again", now=later) is None           # held: the run still trains
    assert state[keys.PENDING_START] == {"config": CONFIG.to_dict(), "name": "again"}
    assert take_pending(state) == (CONFIG, "again") and keys.PENDING_START not in state
    store.finish_run(run_id, RunStatus.FINISHED, "done")
    assert request_start(state, store, CONFIG, "", now=12.0) is None                 # the second click
    assert len(store.list_runs()) == 1
    second = request_start(state, store, CONFIG, "named", confirmed=True, now=12.5)
    assert second != run_id and store.get_run(second).name == "named" and state[keys.ACTIVE_RUN] == second


def test_another_sessions_run_does_not_hold_a_start_and_the_lab_says_how_busy_it_is():
    store, mine, theirs = Store(), {}, {}
    assert activity_text(store, slots=1) is None
    other = request_start(theirs, store, CONFIG, "theirs", now=10.0)
    assert activity_text(store, slots=1) is None                                     # one run: nothing to say
    store.claim_queued()                                                             # it trains now
    own = request_start(mine, store, CONFIG, "mine", now=10.5)                       # not held, not a double click
    assert own not in (None, other) and keys.PENDING_START not in mine
    assert activity_text(store, slots=1) == ("2 runs are active: 1 training, 1 queued; the lab trains 1 at a time, "
                                             "and queued runs start as running ones end.")
    store.finish_run(other, RunStatus.FINISHED, "done")
    assert activity_text(store, slots=1) is None


def test_the_run_offered_is_the_newest_training_one_else_the_newest_queued():
    store = Store()
    assert latest_active(store) is None
    ended = store.create_run({})
    store.finish_run(ended, RunStatus.FINISHED, "done")
    assert latest_active(store) is None
    running = store.create_run({}, name="cli run")
    queued = store.create_run({}, status=RunStatus.QUEUED)
    assert latest_active(store).run_id == running
    store.finish_run(running, RunStatus.STOPPED, "stopped")
    assert latest_active(store).run_id == queued


def test_is_active_for_queued_and_running_runs_only():
    store = Store()
    running = store.create_run({})
    ended = store.create_run({})
    store.finish_run(ended, RunStatus.STOPPED, "stopped")
    assert is_active(store, running) and not is_active(store, ended)
    assert not is_active(store, None) and not is_active(store, "nosuchrun")


def test_the_watched_run_is_the_wanted_one_or_the_latest_running_with_a_warning():
    store = Store()
    ended = store.create_run({})
    store.finish_run(ended, RunStatus.FINISHED, "done")
    running = store.create_run({})
    assert watched_run(store, ended) == (ended, None)
    assert watched_run(store, None) == (None, None)
    run_id, warning = watched_run(store, "nosuchrun")
    assert run_id == running and warning == "There is no run 'nosuchrun'; showing the latest running one instead."
    store.finish_run(running, RunStatus.FINISHED, "done")
    assert watched_run(store, "nosuchrun")[0] is None


def test_train_again_queues_the_same_config_and_watches_it():
    store, state = Store(), {}
    best = store.create_run(CONFIG.to_dict(), name="trial-3")
    run_id = train_again(state, store, store.get_run(best))
    again = store.get_run(run_id)
    assert run_id != best and state == {keys.ACTIVE_RUN: run_id, keys.OWN_RUNS: [run_id]}
    assert (again.name, again.status, again.config, again.source) == ("trial-3 again", RunStatus.QUEUED,
                                                                      CONFIG.to_dict(), "app")
