"""Train: edit the config, preview the data, start a run, watch it live and steer it."""

import streamlit as st

from core import ui_keys as keys
from core.charts import dataset_preview, end_metrics, progress_text, run_frames, train_figures
from core.compare import escape_markdown
from core.config import ConfigError
from core.control import LIVE_LABELS, live_changes
from core.errors import USER_ERRORS
from core.demo import demo_limits
from core.demo import describe as describe_demo
from core.formspec import (FORM_ERRORS, config_from_form, default_form_values, error_text, form_message,
                           preview_config, visible_groups)
from core.launch import (NOT_YOURS, activity_text, is_active, latest_active, may_change, request_start, take_pending,
                         watched_run)
from core.pagestate import just_ended
from core.runs import RESUMABLE, queue_resume
from core.status import RunStatus
from core.storecheck import store_problem
from core.tracker import shared_store
from core.worker import ensure_worker

st.set_page_config(page_title="Train · Torch Lab", layout="wide")


def config_form(values: dict) -> tuple[bool, str]:
    demo = bool(demo_limits())
    field_groups(visible_groups(demo, live=True), values)     # outside the form: the preview follows them
    show_preview(values)
    with st.form("train_form"):
        field_groups(visible_groups(demo, live=False), values)
        name = st.text_input("Run name (optional)")
        return st.form_submit_button("Start", type="primary"), name


def field_groups(groups, values: dict) -> None:
    for group, expanded, fields in groups:
        with st.expander(group, expanded=expanded):
            columns = st.columns(4)
            for i, spec in enumerate(fields):
                with columns[i % 4]:
                    values[spec.name] = field_widget(spec, values[spec.name])


def field_widget(spec, value):
    if spec.kind == "choice":
        return st.selectbox(spec.label, spec.choices, index=spec.choices.index(value), help=spec.help, key=spec.key)
    if spec.kind == "flag":
        return st.checkbox(spec.label, value=value, help=spec.help, key=spec.key)
    return st.text_input(spec.label, value=value, help=spec.help, key=spec.key)


def start(values: dict, name: str, held: bool = False) -> None:
    """Queue the form's run (or, `held`, the one held for "start another?"); see core.launch.request_start."""
    try:
        config, name = take_pending(st.session_state) if held else (config_from_form(values), name)
        run_id = request_start(st.session_state, shared_store(), config, name, confirmed=held)
    except FORM_ERRORS as exc:
        st.error(error_text(exc, values))
        return
    if run_id:
        st.query_params["run"] = run_id
        st.toast(f"Run {run_id} queued")


def show_preview(values: dict) -> None:
    try:
        kind, data = dataset_preview(preview_config(values))
    except FORM_ERRORS as exc:
        st.error(f"No dataset preview: {error_text(exc, values)}")
        return
    with st.expander("Dataset preview"):
        if kind == "images":
            st.image([img for img, _ in data], caption=[label for _, label in data], width=64)
        else:
            st.scatter_chart(data, x="x", y="y", color="label", height=300)


def live_controls(run_id: str, run) -> None:
    if not may_change(st.session_state, run_id):
        st.caption(NOT_YOURS)
        return
    with st.form(f"controls_{run_id}"):
        cols = st.columns(4)
        entered = {f: cols[i].text_input(label, value="", placeholder=str(run.config.get(f)))
                   for i, (f, label) in enumerate(LIVE_LABELS.items())}
        apply = st.form_submit_button("Apply changes")
    if apply:
        try:
            changes = live_changes(entered)
        except (ConfigError, ValueError) as exc:
            st.error(str(exc))
        else:
            shared_store().send_control(run_id, "set", changes)
            st.toast(f"Sent {changes}")
    paused = bool((run.progress or {}).get("paused"))
    left, right, _ = st.columns([1, 1, 4])
    if left.button("Resume" if paused else "Pause", key=f"pause_{run_id}"):
        shared_store().send_control(run_id, "resume" if paused else "pause")
    if right.button("Stop", key=f"stop_{run_id}"):
        shared_store().send_control(run_id, "stop", {"reason": "stopped from the Train page"})


def show_charts(frames) -> None:
    columns = st.columns(2)
    for i, (key, figure) in enumerate(train_figures(frames).items()):
        columns[i % 2].plotly_chart(figure, key=key)


def show_end(run, frames) -> None:
    for column, (label, value) in zip(st.columns(4), end_metrics(run, len(frames.epochs))):
        column.metric(label, value)
    (st.success if run.status is RunStatus.FINISHED else st.warning)(f"Why it ended: {form_message(run.reason or '')}")
    if run.summary.get("checkpoint"):
        st.session_state[keys.PREDICT_RUN] = run.run_id
        st.page_link("pages/2_Predict.py", label=f"Predict with run {run.run_id}", icon="🔮")
    resumable = run.status in RESUMABLE and may_change(st.session_state, run.run_id)
    if resumable and st.button("Resume from the last completed epoch", key=f"resume_{run.run_id}"):
        try:
            queue_resume(shared_store(), run.run_id)
        except USER_ERRORS as exc:
            st.error(form_message(str(exc)))
        else:
            st.rerun(scope="app")


def live_view(run_id: str) -> None:
    @st.fragment(run_every=1.0 if is_active(shared_store(), run_id) else None)
    def panel():
        run = shared_store().get_run(run_id)
        frames = run_frames(shared_store(), run_id)
        st.subheader(f"Run {run.run_id}: {escape_markdown(run.name)}")
        if not run.status.is_final:
            text, fraction = progress_text(run, frames.epochs, started_at=frames.started_at)
            st.progress(fraction, text=f"{run.status.value}: {text}")
            live_controls(run_id, run)
        show_charts(frames)
        if run.status.is_final:
            show_end(run, frames)
        if just_ended(st.session_state, keys.LIVE_RUN, run_id, live=not run.status.is_final):
            st.rerun(scope="app")              # widgets outside the fragment update once it ends
    panel()


def offer_active() -> None:
    """With no run chosen, the run the lab is training (another tab's, the CLI's), one click away."""
    run = latest_active(shared_store())
    if run is None:
        return
    doing = "training" if run.status is RunStatus.RUNNING else "queued"
    st.info(f"A run is {doing}: {escape_markdown(run.name)} ({run.run_id})")
    if st.button("Open it"):
        st.query_params["run"] = run.run_id
        st.rerun()


st.title("Train")
if demo_limits():
    st.info(describe_demo(demo_limits()))
if problem := store_problem():       # one line, not a traceback, when the store cannot be opened
    st.error(problem)
    st.stop()
ensure_worker()
values = st.session_state.setdefault(keys.FORM_VALUES, default_form_values())
submitted, run_name = config_form(values)
if submitted:
    start(values, run_name)
if st.session_state.get(keys.PENDING_START):
    st.warning("A run you started is still training. Start another one beside it?")
    yes, no, _ = st.columns([1, 1, 4])
    if yes.button("Start another"):
        start(values, run_name, held=True)
    if no.button("Cancel"):
        st.session_state.pop(keys.PENDING_START)
        st.rerun()
if busy := activity_text(shared_store()):
    st.info(busy)
wanted = st.session_state.get(keys.ACTIVE_RUN) or st.query_params.get("run")     # this session's run, ?run=ID
current, warning = watched_run(shared_store(), wanted)
if warning:
    st.warning(warning)
if current:
    if st.query_params.get("run") != current:
        st.query_params["run"] = current          # a reload, or the address shared, comes back to this run
    live_view(current)
else:
    offer_active()
