"""Sweeps: define a W&B-style sweep, run agents on it, watch its runs live and see which settings mattered."""

import streamlit as st

from core import ui_keys as keys
from core.compare import escape_markdown
from core.demo import demo_limits
from core.demo import describe as describe_demo
from core.errors import USER_ERRORS
from core.launch import NOT_YOURS, claim, may_change, train_again
from core.pagestate import just_ended
from core.registry import DATASET_NAMES, MODEL_NAMES
from core.storecheck import store_problem
from core.sweepjobs import (EXAMPLE_YAML, FORM_FIELDS, agents_alive, check_sweep, default_key_text, distribution_keys,
                            form_config, free_agent_slots, is_live, key_label, launch_sweep, start_agents, stop_sweep,
                            sweep_choices)
from core.sweepparams import DISTRIBUTIONS
from core.sweepspec import GOALS, METHODS, SweepConfigError, describe
from core.sweeptrainer import TRAINER_METRICS
from core.sweepviz import (best_run, curves_figure, display_table, importance_frame, parcoords_figure, scatter_figure,
                           scored, sweep_view, too_few_runs, top_k, varying_params)
from core.tracker import shared_store

st.set_page_config(page_title="Sweeps · Torch Lab", layout="wide")
SHARE = st.column_config.ProgressColumn(min_value=0, max_value=1, format="%.2f")
IMPORTANCE_COLUMNS = {"importance": SHARE, "fanova": SHARE,
                      "correlation": st.column_config.NumberColumn(format="%+.2f")}
LIMITS = demo_limits()


def kept(name: str) -> dict:
    """Options that keep a form widget's value for the whole session, across page switches."""
    return {"key": f"{keys.SWEEP_FORM}.{name}", "persist_state": "session"}


def field_picker(name: str) -> tuple[str, dict]:
    cols, dists = st.columns(4), list(DISTRIBUTIONS)
    dist = cols[0].selectbox(name, dists, index=dists.index(FORM_FIELDS[name][0]), **kept(f"{name}.dist"))
    return dist, {key: cols[i + 1].text_input(key_label(name, key), default_key_text(name, dist, key),
                                              **kept(f"{name}.{dist}.{key}"))
                  for i, key in enumerate(distribution_keys(dist))}


def form_source() -> dict:
    c = st.columns(4)
    method = c[0].selectbox("Method", METHODS, index=1, **kept("method"))
    metric = c[1].selectbox("Metric", TRAINER_METRICS, **kept("metric"))
    goal = c[2].selectbox("Goal", GOALS, **kept("goal"))
    run_cap = c[3].number_input("Run cap (0: none)", 0, 10_000, 8, **kept("run_cap"))
    h = st.columns(3)
    hyperband = h[0].checkbox("Hyperband early termination", True, **kept("hyperband"))
    min_iter = h[1].number_input("min_iter", 1, 1000, 2, disabled=not hyperband, **kept("min_iter"))
    eta = h[2].number_input("eta", 2, 10, 3, disabled=not hyperband, **kept("eta"))   # W&B's default
    chosen = st.multiselect("Parameters to sweep", list(FORM_FIELDS), default=["lr", "batch_size"], **kept("fields"))
    return form_config(method, metric, goal, {name: field_picker(name) for name in chosen},
                       {"min_iter": min_iter, "eta": eta} if hyperband else None, run_cap or None)


def create_section(store) -> None:
    mode = st.radio("Define the sweep with", ["form", "YAML"], horizontal=True, **kept("mode"))
    c = st.columns(4)
    dataset = c[0].selectbox("Dataset", DATASET_NAMES, index=DATASET_NAMES.index("digits"), **kept("dataset"))
    model = c[1].selectbox("Model", MODEL_NAMES, **kept("model"))
    free = free_agent_slots(store)
    agents = c[2].number_input("Agents (processes)", 1, max(free, 1), 1, **kept("agents"),
                               help="Each trial runs the built-in trainer on this dataset and model, unless the "
                                    "sweep's parameters set them." + (f" The demo runs at most {LIMITS.max_jobs} "
                                                                      "agent processes at once." if LIMITS else ""))
    count = c[3].number_input("Trials per agent (0: until the sweep ends)", 0, 10_000, 0, **kept("count"))
    source = form_source() if mode == "form" else st.text_area(
        "Sweep config (W&B YAML)", EXAMPLE_YAML, height=260, key=keys.SWEEP_YAML, persist_state="session")
    checked = check_sweep(source, dataset, model)
    if error := checked.error:
        st.error(error)
    for warning in checked.warnings:
        st.warning(warning)
    if free < 1:
        st.info(f"The demo runs at most {LIMITS.max_jobs} agent processes at once; stop a sweep to start another.")
    if st.button("Start", type="primary", disabled=bool(error) or free < 1):
        sweep_id = claim(st.session_state, launch_sweep(checked.config, processes=agents, count=count, store=store))
        st.session_state[keys.SWEEP_SELECTED] = st.query_params["sweep"] = sweep_id
        st.rerun()


def chosen_sweep(store) -> dict | None:
    sweeps = {s["sweep_id"]: s for s in store.list_sweeps()}
    wanted = st.query_params.get("sweep") or st.session_state.get(keys.SWEEP_SELECTED)
    labels, index, error = sweep_choices(list(sweeps.values()), wanted)
    if error:
        st.error(error)
    if not sweeps:
        st.info("No sweeps yet. Define one above and press Start, or `python -m core sweep create FILE.yaml`.")
        return None
    sweep_id = st.selectbox("Sweep", list(labels), index=index, format_func=labels.get)
    st.session_state[keys.SWEEP_SELECTED] = st.query_params["sweep"] = sweep_id
    return sweeps[sweep_id]


def live_section(store, sweep_id: str, view) -> None:
    @st.fragment(run_every=2.0 if is_live(sweep_id, view.table) else None)
    def panel():
        now = sweep_view(store, sweep_id)
        st.caption(f"{len(now.table)} runs · {agents_alive(sweep_id)} agent process(es) started here still running")
        st.dataframe(display_table(now.table), hide_index=True)
        st.plotly_chart(curves_figure(now), key="sweep_curves")
        if just_ended(st.session_state, keys.SWEEP_LIVE, sweep_id, live=is_live(sweep_id, now.table)):
            st.rerun(scope="app")                  # the analysis below updates once the sweep ends
    panel()


@st.cache_data(max_entries=16, show_spinner="Scoring parameter importance...")
def importance(done, params: list[str]):
    return importance_frame(done, params)


def analysis_section(view) -> None:
    metric, goal = view.spec.metric.name, view.spec.metric.goal
    done = scored(view.table)
    if note := too_few_runs(done, metric):
        return st.info(note)
    params = varying_params(done)
    k = st.slider("Show the best K runs", 1, len(done), len(done))
    st.plotly_chart(parcoords_figure(top_k(done, k, goal), params, metric, goal), key="sweep_parcoords")
    left, right = st.columns(2)
    left.markdown(f"**Parameter importance for {escape_markdown(metric)}** (random forest, Pearson correlation, "
                  "fANOVA)")
    left.dataframe(importance(done, params), hide_index=True, column_config=IMPORTANCE_COLUMNS)
    param = right.selectbox("Parameter", params)
    right.plotly_chart(scatter_figure(view.table, param, metric), key="sweep_scatter")


def best_section(store, view) -> None:
    if (best := best_run(view.table, view.spec.metric.goal)) is None:
        return
    run = store.get_run(best["run_id"])
    st.subheader("Best run")
    st.markdown(f"Best run **{run.run_id}** ({escape_markdown(run.name)}): "
                f"{escape_markdown(view.spec.metric.name)} = {best['value']:.4g}")
    st.json(run.config, expanded=False)
    left, right, _ = st.columns([1, 1, 3])
    if left.button("Train it again"):
        try:
            train_again(st.session_state, store, run)
        except USER_ERRORS as exc:
            return st.error(str(exc))
        st.switch_page("pages/1_Train.py")
    if right.button("Open in Predict", disabled=not run.summary.get("checkpoint")):
        st.session_state[keys.PREDICT_RUN] = run.run_id
        st.switch_page("pages/2_Predict.py")


def sweep_buttons(store, sweep: dict) -> None:
    if not may_change(st.session_state, sweep["sweep_id"]):
        return st.caption(NOT_YOURS)
    left, right, _ = st.columns([1, 1, 4])
    if left.button("Stop sweep"):
        with st.spinner("Stopping its runs and agents..."):
            stop_sweep(store, sweep["sweep_id"])
        st.rerun()
    cap = f"; the demo runs at most {LIMITS.max_jobs} at once" if LIMITS else ""
    if right.button("Add an agent", help=f"one more agent process on this sweep{cap}",
                    disabled=free_agent_slots(store) < 1):
        start_agents(sweep["sweep_id"], store=store)
        st.rerun()


st.title("Sweeps")
if problem := store_problem():       # one line, not a traceback, when the store cannot be opened
    st.error(problem)
    st.stop()
store = shared_store()
if LIMITS:
    st.info(describe_demo(LIMITS) + f" Sweeps run at most {LIMITS.max_jobs} agent processes at once.")
with st.expander("New sweep", expanded=not store.list_sweeps()):
    create_section(store)
if (sweep := chosen_sweep(store)) is not None:
    try:
        view = sweep_view(store, sweep["sweep_id"])
    except (SweepConfigError, LookupError) as exc:
        st.error(f"Cannot show sweep {sweep['sweep_id']}: {exc}")
        st.stop()
    st.caption(escape_markdown(describe(view.spec)))
    if sweep["state"] == "running":
        sweep_buttons(store, sweep)
    live_section(store, sweep["sweep_id"], view)
    if view.spec.metric is None:
        st.info("This sweep has no metric, so its runs cannot be ranked.")
    else:
        analysis_section(view)
        best_section(store, view)
