"""Torch Lab home page: what the lab is, a one-click quick start, the latest runs, links to every page."""

import streamlit as st

from core import ui_keys as keys
from core.config import TrainConfig
from core.errors import USER_ERRORS
from core.launch import claim
from core.storecheck import store_problem
from core.tracker import shared_store
from core.worker import ensure_worker, submit

PAGES = [("pages/1_Train.py", "Train", "edit hyperparameters, train, watch live, steer mid-run"),
         ("pages/2_Predict.py", "Predict", "type a number, click a point, draw or upload a digit"),
         ("pages/3_Transforms.py", "Transforms", "torchvision transforms, stage by stage"),
         ("pages/4_Runs.py", "Runs", "find, compare, label and export runs; artifacts, tables, images"),
         ("pages/5_Sweeps.py", "Sweeps", "W&B-style sweeps offline: grid, random, bayes, hyperband"),
         ("pages/6_Tensor_ops.py", "Tensor ops", "scatter, mul/mm/bmm/@, eval() vs no_grad()")]

st.set_page_config(page_title="Torch Lab", layout="wide")
st.title("Torch Lab")
st.write("Train PyTorch models on your own machine and watch them learn, with no account and no network. "
         "Every run is recorded locally, so you can steer it live, compare it, and predict with it afterwards.")
if problem := store_problem():       # a one-line error and nothing more when the store cannot be opened
    st.error(problem)
    st.stop()
store = shared_store()
ensure_worker()                      # warm the training worker while the visitor looks around

st.subheader("Quick start")
st.caption("An MLP on scikit-learn's bundled 8x8 digits, 10 epochs: a few seconds on a laptop.")
if st.button("Train the default model", type="primary"):
    try:
        run_id = submit(TrainConfig(), store=store, name="quick start", source="app")
    except USER_ERRORS as exc:
        st.error(str(exc))
    else:
        st.session_state[keys.ACTIVE_RUN] = claim(st.session_state, run_id)
        st.switch_page("pages/1_Train.py")

st.subheader("Latest runs")
latest = store.list_runs(limit=10)
if latest:
    st.dataframe([{"run": r.run_id, "name": r.name, "status": r.status.value,
                   "dataset": r.config.get("dataset"), "model": r.config.get("model"),
                   "best val acc": r.summary.get("best_val_acc")} for r in latest], hide_index=True,
                 column_config={"best val acc": st.column_config.ProgressColumn(min_value=0, max_value=1,
                                                                               format="percent")})
else:
    st.info("No runs yet. Use the quick start above, the Train page, or a shell: "
            "`python -m core train --dataset digits --epochs 20`.")

st.subheader("Pages")
for path, label, what in PAGES:
    st.page_link(path, label=f"{label}: {what}")
