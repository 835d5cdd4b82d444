"""Train: edit the config, preview the data, start a run, watch it live and steer it."""

import time

import streamlit as st

from core import ui_keys as keys
from core.charts import dataset_preview, lr_figure, metric_figure, progress_text, run_frames, step_figure
from core.config import ConfigError, TrainConfig
from core.control import validate_live_change
from core.errors import USER_ERRORS
from core.demo import demo_limits
from core.demo import describe as describe_demo
from core.formspec import FORM_GROUPS, HIDDEN_IN_DEMO, config_from_form, default_form_values
from core.runs import RESUMABLE, queue_resume
from core.status import RunStatus
from core.tracker import Store, shared_store
from core.worker import ensure_worker, submit

st.set_page_config(page_title="Train · Torch Lab", layout="wide")
DOUBLE_CLICK_S = 3.0


def get_store() -> Store:
    return shared_store()


def config_form(values: dict) -> tuple[bool, str]:
    hidden = HIDDEN_IN_DEMO if demo_limits() else ()
    with st.form("train_form"):
        for group, fields in FORM_GROUPS:
            with st.expander(group, expanded=group in ("Data", "Model", "Optimisation")):
                columns = st.columns(4)
                for i, spec in enumerate(f for f in fields if f.name not in hidden):
                    with columns[i % 4]:
                        values[spec.name] = field_widget(spec, values[spec.name])
        name = st.text_input("Run name (optional)")
        return st.form_submit_button("Start", type="primary"), name


def field_widget(spec, value):
    if spec.kind == "choice":
        return st.selectbox(spec.label, spec.choices, index=spec.choices.index(value), help=spec.help)
    if spec.kind == "flag":
        return st.checkbox(spec.label, value=value, help=spec.help)
    return st.text_input(spec.label, value=value, help=spec.help)


def start(config, name: str, confirmed: bool = False) -> None:
    fingerprint = config.to_json()
    last = st.session_state.get(keys.LAST_START)
    if not confirmed and last and last[0] == fingerprint and time.time() - last[1] < DOUBLE_CLICK_S:
        return                                            # the second click of a double click
    st.session_state[keys.LAST_START] = [fingerprint, time.time()]
    run_id = submit(config, store=get_store(), name=name or None, source="app")
    st.session_state[keys.ACTIVE_RUN] = run_id
    st.query_params["run"] = run_id
    st.toast(f"Run {run_id} queued")


def is_active(run_id) -> bool:
    try:
        return run_id is not None and not get_store().get_run(run_id).status.is_final
    except USER_ERRORS:
        return False


def watched_run():
    """The run this session started, the one in the address (?run=ID), or the latest one running."""
    run_id = st.session_state.get(keys.ACTIVE_RUN) or st.query_params.get("run")
    try:
        return get_store().get_run(run_id).run_id if run_id else None
    except USER_ERRORS:
        st.warning(f"There is no run {run_id!r}; showing the latest running one instead.")
    running = [r for r in get_store().list_runs(limit=20) if not r.status.is_final]
    return running[0].run_id if running else None


def show_preview(values: dict) -> None:
    with st.expander("Dataset preview"):
        try:
            kind, data = dataset_preview(config_from_form(values))
        except USER_ERRORS as exc:
            st.caption(f"No preview: {exc}")
            return
        if kind == "images":
            st.image([img for img, _ in data], caption=[label for _, label in data], width=64)
        else:
            st.scatter_chart(data, x="x", y="y", color="label", height=300)


def live_controls(run_id: str, run) -> None:
    with st.form(f"controls_{run_id}"):
        cols = st.columns(4)
        fields = {"lr": "lr", "momentum": "momentum", "weight_decay": "weight decay", "grad_clip": "grad clip"}
        entered = {f: cols[i].text_input(label, value="", placeholder=str(run.config.get(f)))
                   for i, (f, label) in enumerate(fields.items())}
        apply = st.form_submit_button("Apply changes")
    if apply:
        try:
            changes = validate_live_change({k: v for k, v in entered.items() if v.strip()})
        except (ConfigError, ValueError) as exc:
            st.error(str(exc))
        else:
            get_store().send_control(run_id, "set", changes)
            st.toast(f"Sent {changes}")
    paused = bool((run.progress or {}).get("paused"))
    left, right, _ = st.columns([1, 1, 4])
    if left.button("Resume" if paused else "Pause", key=f"pause_{run_id}"):
        get_store().send_control(run_id, "resume" if paused else "pause")
    if right.button("Stop", key=f"stop_{run_id}"):
        get_store().send_control(run_id, "stop", {"reason": "stopped from the Train page"})


def show_charts(frames) -> None:
    left, right = st.columns(2)
    left.plotly_chart(metric_figure(frames, "loss"), key="loss_chart")
    right.plotly_chart(metric_figure(frames, "acc"), key="acc_chart")
    left.plotly_chart(step_figure(frames), key="step_chart")
    right.plotly_chart(lr_figure(frames), key="lr_chart")


def show_end(run, frames) -> None:
    summary = run.summary
    cols = st.columns(4)
    best = summary.get("best_val_acc")
    cols[0].metric("Status", run.status.value)
    cols[1].metric("Best val acc", "-" if best is None else f"{best:.2%}")
    cols[2].metric("Best epoch", summary.get("best_epoch", "-"))
    cols[3].metric("Epochs", len(frames.epochs))
    (st.success if run.status is RunStatus.FINISHED else st.warning)(f"Why it ended: {run.reason}")
    if summary.get("checkpoint"):
        st.session_state[keys.PREDICT_RUN] = run.run_id
        st.page_link("pages/2_Predict.py", label=f"Predict with run {run.run_id}", icon="🔮")
    if run.status in RESUMABLE and st.button("Resume from the last completed epoch", key=f"resume_{run.run_id}"):
        try:
            queue_resume(get_store(), run.run_id)
        except USER_ERRORS as exc:
            st.error(str(exc))
        else:
            st.rerun(scope="app")


def live_view(run_id: str) -> None:
    active = is_active(run_id)

    @st.fragment(run_every=1.0 if active else None)
    def panel():
        run = get_store().get_run(run_id)
        frames = run_frames(get_store(), run_id)
        st.subheader(f"Run {run.run_id}: {run.name}")
        if not run.status.is_final:
            st.session_state[keys.LIVE_RUN] = run_id
            text, fraction = progress_text(run, frames.epochs)
            st.progress(fraction, text=f"{run.status.value}: {text}")
            live_controls(run_id, run)
        show_charts(frames)
        if run.status.is_final:
            show_end(run, frames)
            if st.session_state.pop(keys.LIVE_RUN, None) == run_id:
                st.rerun(scope="app")          # widgets outside the fragment update once it ends
    panel()


st.title("Train")
if demo_limits():
    st.info(describe_demo(demo_limits()))
ensure_worker()
values = st.session_state.setdefault(keys.FORM_VALUES, default_form_values())
submitted, run_name = config_form(values)
show_preview(values)
if submitted:
    try:
        config = config_from_form(values)
        if is_active(st.session_state.get(keys.ACTIVE_RUN)):
            st.session_state[keys.PENDING_START] = {"config": config.to_dict(), "name": run_name}
        else:
            start(config, run_name)
    except USER_ERRORS as exc:
        st.error(str(exc))
if st.session_state.get(keys.PENDING_START):
    st.warning("A run you started is still training. Start another one beside it?")
    yes, no, _ = st.columns([1, 1, 4])
    if yes.button("Start another"):
        pending = st.session_state.pop(keys.PENDING_START)
        start(TrainConfig.from_dict(pending["config"]), pending["name"], confirmed=True)
    if no.button("Cancel"):
        st.session_state.pop(keys.PENDING_START)
        st.rerun()
current = watched_run()
if current:
    live_view(current)
