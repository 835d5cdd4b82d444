"""core.pagestate: session-state bookkeeping the pages share, on a plain dict."""

from core.pagestate import just_ended, kept_selection


def test_just_ended_is_true_once_after_the_item_was_seen_live():
    state = {}
    assert not just_ended(state, "live", "r1", live=True) and state == {"live": "r1"}
    assert just_ended(state, "live", "r1", live=False) and state == {}
    assert not just_ended(state, "live", "r1", live=False)                # only once
    assert not just_ended({}, "live", "r1", live=False)                   # never seen live: it ended before


def test_just_ended_drops_a_note_about_another_item():
    state = {"live": "r2"}
    assert not just_ended(state, "live", "r1", live=False) and state == {}


def test_kept_selection_drops_deleted_ids_and_keeps_hidden_choices_as_options():
    kept, options = kept_selection(["a", "gone", "c"], known={"a": "A", "b": "B", "c": "C"}, shown=["b", "c"])
    assert kept == ["a", "c"]
    assert options == ["b", "c", "a"]
