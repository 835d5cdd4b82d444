"""Predict: play with a trained model, and see which validation cases it gets right and wrong."""

from functools import partial

import streamlit as st

from core import ui_keys as keys
from core.analysis import (canvas_to_image, case_captions, confusion_matrix, decision_grid, pick_cases,
                           probability_curve, raw_points, sample_images, top_probabilities, validation_cases)
from core.charts import boundary_figure, confusion_figure, picked_points, probability_figure
from core.demo import DEMO_DATASETS, demo_limits, describe
from core.errors import USER_ERRORS, first_line
from core.imports import import_config, import_weights
from core.registry import DATASET_NAMES, MODEL_NAMES
from core.predict import (Predictor, checkpoint_runs, checkpoint_stamp, click_targets, clicked_cell, clicked_point,
                          validation_or_reason)
from core.storecheck import store_problem
from core.tracker import shared_store
from core.uploads import read_upload, to_rgb_or_l

st.set_page_config(page_title="Predict · Torch Lab", layout="wide")


@st.cache_resource(max_entries=8)
def load_predictor(run_id: str, url: str, stamp: tuple) -> Predictor:
    """One model per checkpoint file version (`stamp`), so new weights of the same run are picked up."""
    return Predictor.from_run(run_id, shared_store(url))


def clickable(fig, targets, size: int):
    """`fig` with invisible markers at `targets` (x, y), so a click anywhere on its heat map selects one;
    a selection dims no other marker."""
    fig.update_traces(unselected={"marker": {"opacity": 1}}, selector={"type": "scatter"})
    hidden = {"marker": {"opacity": 0}}
    return fig.add_scatter(x=targets["x"], y=targets["y"], mode="markers", hoverinfo="none", showlegend=False,
                           marker={"size": size, "opacity": 0, "symbol": "square"}, selected=hidden,
                           unselected=hidden, name="click")


def show_probabilities(predictor: Predictor, raw, top_k: int = 5, prepared: bool = False) -> None:
    try:
        prediction = predictor.predict_prepared(raw) if prepared else predictor.predict(raw)
    except USER_ERRORS as exc:
        st.error(str(exc))
        return
    st.metric("Prediction", prediction.label, f"{max(prediction.probabilities):.1%} confident")
    top = top_probabilities(prediction.probabilities, predictor.info.class_names, top_k)
    st.bar_chart(top, horizontal=True, height=40 * len(top) + 60)


def scalar_playground(predictor: Predictor, data) -> None:
    value = st.text_input("A number", "24")
    show_probabilities(predictor, value)
    curve = probability_curve(predictor, -10, 30)
    st.plotly_chart(probability_figure(curve, predictor.info.class_names[1], *raw_points(data)))


def follow_click(slider_keys: tuple[str, str], bounds: tuple) -> None:
    """Chart callback: move the sliders to the clicked point, so cross, sliders and prediction agree."""
    if point := clicked_point(picked_points(st.session_state.get("boundary"))):
        for key, value, (low, high) in zip(slider_keys, point, bounds):
            st.session_state[key] = min(max(value, low), high)


def point_playground(predictor: Predictor, data) -> None:
    xs, ys, grid = decision_grid(predictor, data)
    bounds = ((float(xs[0]), float(xs[-1])), (float(ys[0]), float(ys[-1])))
    slider_keys = tuple(f"point_{axis}:{low:.6g}:{high:.6g}" for axis, (low, high) in zip("xy", bounds))
    for key, (low, high) in zip(slider_keys, bounds):
        st.session_state.setdefault(key, (low + high) / 2)
    x, y = (st.slider(axis, *limits, key=key) for axis, limits, key in zip("xy", bounds, slider_keys))
    fig = clickable(boundary_figure(xs, ys, grid, *raw_points(data), point=(x, y)), click_targets(xs, ys), 8)
    st.plotly_chart(fig, on_select=partial(follow_click, slider_keys, bounds), selection_mode="points",
                    key="boundary")
    st.caption(f"Point ({x:.3f}, {y:.3f})")
    show_probabilities(predictor, (x, y))


def image_playground(predictor: Predictor, data) -> None:
    draw, upload, sample = st.tabs(["Draw", "Upload", "Validation sample"])
    with draw:
        from streamlit_drawable_canvas import st_canvas

        canvas = st_canvas(stroke_width=18, stroke_color="#000000", background_color="#FFFFFF", height=280,
                           width=280, return_image_data=True, drawing_mode="freedraw")
        if canvas.image_data is not None and canvas.image_data[..., 3].any():
            image = canvas_to_image(canvas.image_data)
            show_probabilities(predictor, image)
    with upload:
        file = st.file_uploader("An image", type=None, key="upload")
        if file is not None:
            try:
                image = to_rgb_or_l(read_upload(file.getvalue()))   # 16-bit, CMYK... shown and read alike
            except USER_ERRORS as exc:
                st.error(str(exc))
            else:
                st.image(image, width=140)
                show_probabilities(predictor, image)
    with sample:
        if data is None:
            st.info("Validation samples need the dataset's files; see the note above.")
            return
        index = st.number_input("Validation sample", 0, int(data.val_y.shape[0]) - 1, 0)
        label = data.info.class_names[int(data.val_y[index])]
        st.image(sample_images(data, [index]), width=140, caption=f"label {label}")
        show_probabilities(predictor, data.val_x[index:index + 1], prepared=True)


def case_view(predictor: Predictor, data) -> None:
    st.subheader("Good and bad cases")
    cases = validation_cases(predictor, data)
    matrix = confusion_matrix(cases, predictor.info.class_names)
    st.caption(f"{cases['correct'].mean():.2%} of {len(cases)} validation samples right. "
               "Click a cell to see its cases.")
    names = predictor.info.class_names
    fig = clickable(confusion_figure(matrix), click_targets(names, names), 30)
    event = st.plotly_chart(fig, on_select="rerun", selection_mode="points", key="confusion")
    label = st.selectbox("True label", ["all", *names])
    label, prediction = None if label == "all" else label, None
    if cell := clicked_cell(picked_points(event), names):
        label, prediction = cell
        st.caption(f"Cell: true {label}, predicted {prediction}")
    for title, correct in (("Correct", True), ("Wrong", False)):
        chosen = pick_cases(cases, correct, label, prediction)
        st.markdown(f"**{title}** ({len(chosen)} shown)")
        if data.info.kind == "image" and len(chosen):
            st.image(sample_images(data, chosen["index"]), caption=case_captions(chosen), width=72)
        else:
            st.dataframe(chosen, hide_index=True, height=200)


def import_section(store) -> None:
    with st.expander("Import weights: a safetensors file, or a PyTorch state dict (read weights-only)"):
        if limits := demo_limits():
            st.caption(describe(limits))
        names = DEMO_DATASETS if limits else DATASET_NAMES
        dataset = st.selectbox("Dataset", names, index=names.index("digits"), key="import_dataset")
        model = st.selectbox("Model", MODEL_NAMES, key="import_model")
        extra = st.text_input("Other config fields (JSON)", "{}", help='e.g. {"hidden": [32, 16]}')
        file = st.file_uploader("Weights file", key="import_file")
        if file is not None and st.button("Import"):
            try:
                config = import_config(extra, dataset, model)
                run_id = import_weights(store, file.getvalue(), config, name=file.name)
            except (*USER_ERRORS, ValueError, TypeError) as exc:        # user errors, bad JSON included
                st.error(first_line(exc))
            else:
                st.session_state[keys.PREDICT_RUN] = run_id
                st.success(f"Imported as run {run_id}")


st.title("Predict")
if problem := store_problem():       # one line, not a traceback, when the store cannot be opened
    st.error(problem)
    st.stop()
store = shared_store()
import_section(store)
labels = checkpoint_runs(store)
if not labels:
    st.info("No run has a checkpoint yet. Train one on the Train page first.")
    st.stop()
ids = list(labels)
chosen = st.session_state.get(keys.PREDICT_RUN)
run_id = st.selectbox("Run", ids, index=ids.index(chosen) if chosen in ids else 0, format_func=labels.get)
st.session_state[keys.PREDICT_RUN] = run_id
try:
    predictor = load_predictor(run_id, store.url, checkpoint_stamp(store, run_id))
    data, missing = validation_or_reason(predictor)
except USER_ERRORS as exc:
    st.error(f"Cannot load run {run_id}: {exc}")
    st.stop()
if missing and predictor.info.kind != "image":      # drawing and uploads need no dataset; the others do
    st.error(f"Cannot show run {run_id}: {missing}")
    st.stop()
if missing:
    st.warning(f"Drawing and uploads work; validation samples and good/bad cases need the dataset: {missing}")
playground = {"scalar": scalar_playground, "point": point_playground, "image": image_playground}
playground[predictor.info.kind](predictor, data)
if data is not None:
    case_view(predictor, data)
