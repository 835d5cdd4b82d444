"""Runs: filter and sort every run, compare their curves and configs, and look after one run's records."""

from functools import partial

import streamlit as st

from core import ui_keys as keys
from core.compare import (SPREAD_CHOICES, X_AXES, CompareError, artifact_zip, artifacts_frame, comparison_figure,
                          config_diff, config_json, delete_problem, escape_markdown, events_frame, file_name,
                          image_steps, images_at, label_changes, metric_keys, metrics_csv, run_labels, runs_frame,
                          sort_frame, table_frame)
from core.errors import USER_ERRORS
from core.launch import NOT_YOURS, may_change
from core.pagestate import kept_selection
from core.runfilter import FILTER_HELP, QUERY_EXAMPLE, FilterError, filter_frame
from core.storecheck import store_problem
from core.tracker import shared_store

st.set_page_config(page_title="Runs · Torch Lab", layout="wide")
COLUMNS = {"best_val_acc": st.column_config.ProgressColumn(min_value=0, max_value=1, format="percent"),
           "duration_s": st.column_config.NumberColumn(format="%.1f s")}


def notify(message: str) -> None:
    st.session_state[keys.RUNS_NOTICE] = message
    st.rerun()


def filtered(frame, box, label: str, **options):
    """The rows of `frame` matching the query typed in a text box; all rows, with an error, if it is bad."""
    try:
        return filter_frame(frame, box.text_input(label, **{"placeholder": QUERY_EXAMPLE, "help": FILTER_HELP,
                                                             **options}))
    except FilterError as exc:
        st.error(str(exc))
        return frame


def show_table(frame):
    left, middle, right = st.columns([4, 2, 1], vertical_alignment="bottom")
    shown = filtered(frame, left, "Filter (pandas query)", key=keys.RUNS_FILTER, persist_state="session")
    column = middle.selectbox("Sort by", list(frame.columns), index=list(frame.columns).index("created"))
    shown = sort_frame(shown, column, descending=right.toggle("Descending", value=True))
    st.dataframe(shown, hide_index=True, column_config=COLUMNS)
    st.caption(f"{len(shown)} of {len(frame)} runs")
    return shown


def show_comparison(store, run_ids, labels):
    if not (found := metric_keys(store, run_ids)):
        return st.info("The chosen runs have logged no metrics yet.")
    cols = st.columns(5, vertical_alignment="bottom")
    key = cols[0].selectbox("Metric", found)
    x_axis = cols[1].selectbox("x-axis", X_AXES)
    weight = cols[2].slider("Smoothing", 0.0, 0.99, 0.0, 0.01)
    spread = SPREAD_CHOICES[cols[3].selectbox("Lines", list(SPREAD_CHOICES))]
    log_y = cols[4].checkbox("Log scale")
    fig, note = comparison_figure(store, run_ids, key, labels, x_axis=x_axis, smoothing=weight, spread=spread,
                                  log_y=log_y)
    if note:
        st.info(note)
    st.plotly_chart(fig, key="compare_chart")
    if len(run_ids) > 1:
        diff = config_diff({labels[run_id]: store.get_run(run_id).config for run_id in run_ids})
        st.markdown("**Config differences**")
        if diff.empty:
            st.caption("Their configs are identical.")
        else:
            st.dataframe(diff)


def edit_run(store, run):
    if not may_change(st.session_state, run.run_id):
        return st.caption(NOT_YOURS)
    with st.form(f"labels_{run.run_id}"):
        name = st.text_input("Name", run.name)
        tags = st.text_input("Tags (comma-separated)", ", ".join(run.tags))
        notes = st.text_area("Notes", run.notes)
        saved = st.form_submit_button("Save")
    if saved:
        try:
            changes = label_changes(run, name, tags, notes)
        except CompareError as exc:
            return st.error(str(exc))
        if not changes:
            return st.info("Nothing changed.")
        store.update_run(run.run_id, **changes)
        notify(f"Saved the {', '.join(changes)} of run {run.run_id}.")
    confirmed = st.checkbox(f"Yes, delete run {run.run_id} with its metrics, events and files",
                            key=f"confirm_delete_{run.run_id}")
    if st.button("Delete run", key=f"delete_{run.run_id}"):
        if problem := delete_problem(run, confirmed):
            st.error(problem)
        else:
            store.delete_run(run.run_id)
            notify(f"Deleted run {run.run_id}.")


def show_artifacts(store, run):
    if not (records := store.list_artifacts(run.run_id)):
        return st.info("This run logged or used no artifacts.")
    st.dataframe(artifacts_frame(records), hide_index=True)
    record = st.selectbox("Artifact", records, format_func=lambda r: r.label)
    st.download_button("Download as zip", partial(artifact_zip, store, record), on_click="ignore",
                       file_name=file_name(record.name, f"v{record.version}", suffix=".zip"), mime="application/zip")


def show_tables(store, run):
    if not (tables := store.tables(run.run_id)):
        return st.info("This run logged no tables.")
    index = st.selectbox("Table", range(len(tables)),
                         format_func=lambda i: f"{tables[i]['key']} (step {tables[i]['step']})")
    frame, image_columns = table_frame(store, tables[index])
    frame = filtered(frame, st, "Filter rows (pandas query)", key=keys.RUNS_TABLE_FILTER,
                     placeholder="`my column` > 0.5")
    st.dataframe(frame, hide_index=True, column_config={c: st.column_config.ImageColumn(c) for c in image_columns})


def show_images(store, run):
    if not (rows := store.images(run.run_id)):
        return st.info("This run logged no images.")
    key = st.selectbox("Images", sorted({row["key"] for row in rows}))
    steps = image_steps(rows, key)
    step = st.select_slider("Step", steps) if len(steps) > 1 else steps[0]
    shown = images_at(rows, key, step)
    st.image([store.read_blob(row["sha256"]) for row in shown], width=160,
             caption=[escape_markdown(row["caption"]) for row in shown])


def show_details(store, run_ids, labels) -> None:
    run = store.get_run(st.selectbox("Run", run_ids, format_func=labels.get, key=keys.RUNS_DETAIL))
    tabs = st.tabs(["Labels", "Events", "Artifacts", "Tables", "Images", "Export"])
    with tabs[0]:
        edit_run(store, run)
    with tabs[1]:
        st.dataframe(events_frame(store.event_rows(run.run_id)), hide_index=True)
    with tabs[2]:
        show_artifacts(store, run)
    with tabs[3]:
        show_tables(store, run)
    with tabs[4]:
        show_images(store, run)
    with tabs[5]:
        st.download_button("Metrics (CSV)", partial(metrics_csv, store, run.run_id), on_click="ignore",
                           file_name=f"metrics-{run.run_id}.csv", mime="text/csv")
        st.download_button("Config (JSON)", config_json(run), file_name=f"config-{run.run_id}.json",
                           mime="application/json", on_click="ignore")


st.title("Runs")
if notice := st.session_state.pop(keys.RUNS_NOTICE, None):
    st.success(notice)
if problem := store_problem():
    st.error(problem)
    st.stop()
store = shared_store()
frame = runs_frame(store)
if frame.empty:
    st.info("No runs yet: train one on the Train page or with `python -m core train --dataset digits`.")
    st.stop()
labels = run_labels(frame)
shown = show_table(frame)
kept, options = kept_selection(st.session_state.get(keys.RUNS_SELECTED, []), labels, shown["run_id"].tolist())
st.session_state[keys.RUNS_SELECTED] = kept
selected = st.multiselect("Compare runs", options, format_func=labels.get, key=keys.RUNS_SELECTED,
                          persist_state="session", placeholder="Choose runs to overlay their curves")
st.subheader("Compare")
if selected:
    show_comparison(store, selected, labels)
else:
    st.info("Choose runs above to overlay their curves and see how their configs differ.")
st.subheader("Details")
try:
    if detail_ids := selected or shown["run_id"].tolist():
        show_details(store, detail_ids, labels)
    else:
        st.info("No run matches the filter: change it, or clear it to see every run.")
except USER_ERRORS as exc:
    st.error(str(exc))
