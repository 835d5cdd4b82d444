"""Session-state bookkeeping that pages share, over any mutable mapping (Streamlit's session state, a dict).

    if just_ended(state, keys.LIVE_RUN, run_id, live=running):
        st.rerun(scope="app")        # in the page: widgets outside a live fragment update once it ends
    kept, options = kept_selection(selected, known_ids, shown_ids)   # a filter never drops a choice

Keys are constants in `core.ui_keys`; values are plain ids. Nothing here imports streamlit.
"""

from __future__ import annotations

from typing import Iterable, MutableMapping


def just_ended(state: MutableMapping, key: str, item_id: str, live: bool) -> bool:
    """Note under `key` that `item_id` (a run, a sweep) is live. Once it is not, the note is dropped
    and the answer is True exactly once: the first time it is seen ended after being seen live."""
    if live:
        state[key] = item_id
        return False
    return state.pop(key, None) == item_id


def kept_selection(selected: Iterable[str], known: Iterable[str], shown: Iterable[str]) -> tuple[list, list]:
    """The chosen ids that still exist (are in `known`), and the options a picker offers: the `shown`
    ids, then the kept choices a filter hides, so that filtering never drops a choice."""
    known = set(known)
    kept = [i for i in selected if i in known]
    options = list(shown)
    return kept, options + [i for i in kept if i not in options]
