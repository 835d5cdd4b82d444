"""Torch Lab home page: what the lab is, the latest runs, and where to go next."""

import streamlit as st

from core.tracker import Store

st.set_page_config(page_title="Torch Lab", layout="wide")
st.title("Torch Lab")
st.write("A local, offline lab for training PyTorch models: pick a dataset and a model, train, "
         "and look at what it learned. Every run is recorded in a local store, no account needed.")
st.subheader("Latest runs")
try:
    latest = Store().list_runs(limit=10)
except Exception as exc:  # the store is unreadable: say so, never a traceback
    st.error(f"Cannot read the run store: {exc}")
    latest = []
if latest:
    st.dataframe([{"run": r.run_id, "name": r.name, "status": r.status.value,
                   "dataset": r.config.get("dataset"), "model": r.config.get("model"),
                   "best val acc": r.summary.get("best_val_acc")} for r in latest], hide_index=True)
else:
    st.info("No runs yet. Train one from a shell: `python -m core train --dataset digits --epochs 20`.")
