"""Transforms: build a torchvision pipeline step by step and see what each stage does to an image.

Pick an image (the bundled photo, a dataset sample or an upload), add and tune steps, re-roll the
seed of the random ones, and read each stage's shape and value range. Below: the pipeline as Python
code, and what rounding versus truncation does when a float tensor goes back to 8 bits.
"""

import streamlit as st

from core import transforms as tf
from core import transformview as tv
from core import ui_keys as keys
from core.demo import DEMO_DATASETS, demo_limits

SOURCES = ("Sample photo", "Dataset sample", "Upload")
IMAGE_DATASETS = ("digits", "mnist")
UPLOAD_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff"]
STAGES_PER_ROW = 3

st.set_page_config(page_title="Transforms · Torch Lab", layout="wide")
st.session_state.setdefault(keys.TRANSFORMS_PIPELINE, tf.default_pipeline())
st.session_state.setdefault(keys.TRANSFORMS_SEED, 0)
st.session_state.setdefault(keys.TRANSFORMS_REVISION, 0)


def edit(action: str, index: int = 0, arg=None) -> None:
    """Button callback: change the pipeline (or seed) in session state; new widget keys show it."""
    state = st.session_state
    if action == "reroll":
        state[keys.TRANSFORMS_SEED] = tf.new_seed()
    else:
        arg = state[keys.TRANSFORMS_ADD] if action == "add" else arg        # the step picked when pressed
        state[keys.TRANSFORMS_PIPELINE] = tv.edit_steps(state[keys.TRANSFORMS_PIPELINE], action, index, arg)
    state[keys.TRANSFORMS_REVISION] += 1


def pick_image():
    """The chosen PIL image and a caption; (None, "") while nothing is uploaded."""
    source = st.radio("Image", SOURCES, horizontal=True, key=keys.TRANSFORMS_SOURCE)
    if source == "Sample photo":
        return tv.photo_source()
    if source == "Dataset sample":
        left, right = st.columns(2)
        offered = [d for d in IMAGE_DATASETS if demo_limits() is None or d in DEMO_DATASETS]
        name = left.selectbox("Dataset", offered, key=keys.TRANSFORMS_DATASET)
        index = int(right.number_input("Validation sample", 0, 100_000, 0, key=keys.TRANSFORMS_INDEX))
        return tv.dataset_source(index, name)
    upload = st.file_uploader("Image file", type=UPLOAD_TYPES, key=keys.TRANSFORMS_UPLOAD)
    if upload is None:
        st.info("Upload an image to start.")
        return None, ""
    return tv.upload_source(upload.getvalue())


def edit_param(step_name: str, spec: tf.ParamSpec, value, key: str):
    """One widget for one parameter: (new value, None), or (old value, message) for bad typed text."""
    tip = spec.help or None
    if spec.kind == "bool":
        return st.checkbox(spec.name, value, key=key, help=tip), None
    if spec.kind == "choice":
        return st.selectbox(spec.name, spec.choices, spec.choices.index(value), key=key, help=tip), None
    if spec.kind in ("int", "odd_int"):
        step = 2 if spec.kind == "odd_int" else 1
        return int(st.number_input(spec.name, int(spec.low), int(spec.high), value, step, key=key, help=tip)), None
    if spec.kind in ("float", "range"):
        chosen = st.slider(spec.name, float(spec.low), float(spec.high), value if spec.kind == "float"
                           else tuple(value), key=key, help=tip)
        return (chosen if spec.kind == "float" else list(chosen)), None
    text = st.text_input(spec.name, tf.format_param(value), key=key, help=tip)
    try:
        return tf.parse_param(step_name, spec, text), None
    except ValueError as exc:
        return value, f"{exc}; still using {tf.format_param(value)}"


def edit_step(index: int, step: dict, revision: int) -> dict:
    spec = tf.STEP_SPECS[step["name"]]
    key = f"transforms_{revision}_{index}"
    with st.container(border=True):
        title, up, down, drop = st.columns([7, 1, 1, 1])
        title.markdown(tv.step_title(index, spec))
        up.button("↑", key=f"{key}_up", on_click=edit, args=("move", index, -1), help="move up")
        down.button("↓", key=f"{key}_down", on_click=edit, args=("move", index, 1), help="move down")
        drop.button("✕", key=f"{key}_remove", on_click=edit, args=("remove", index), help="remove")
        columns, params, errors = st.columns(3), {}, []
        for i, param in enumerate(spec.params):
            with columns[i % 3]:
                params[param.name], error = edit_param(spec.name, param, step["params"][param.name],
                                                       f"{key}_{param.name}")
            errors += [error] if error else []
        for error in errors:
            st.error(error)
        if spec.name == "Normalize":
            for column, preset in zip(st.columns(len(tf.NORMALIZE_PRESETS)), tf.NORMALIZE_PRESETS):
                column.button(f"{preset} preset", key=f"{key}_{preset}", on_click=edit,
                              args=("preset", index, preset))
        edited = {"name": spec.name, "params": params}
        if note := tf.size_order_note(edited):
            st.caption(note)
    return edited


def show_stages(result: tf.PipelineResult) -> None:
    tiles = tv.stage_tiles(result)
    for start in range(0, len(tiles), STAGES_PER_ROW):
        for column, (array, caption) in zip(st.columns(STAGES_PER_ROW), tiles[start:start + STAGES_PER_ROW]):
            column.image(array, caption=caption)
    st.dataframe(result.stats, hide_index=True)


def show_rounding(result: tf.PipelineResult) -> None:
    st.subheader("Float tensor back to 8 bits: rounding vs truncation")
    summary = tv.rounding_summary(result)
    if summary is None:
        st.info("Add ToTensor to get a float tensor to convert back.")
        return
    st.write(summary.text)
    for column, (array, caption) in zip(st.columns(3), summary.tiles):
        column.image(array, caption=caption)


st.title("Transforms")
st.write("Build a torchvision pipeline and see each stage. Sizes given as two numbers are "
         "(height, width), torchvision's order; PIL's `.size` is (width, height).")
try:
    image, caption = pick_image()
except ValueError as exc:      # a bad upload, a missing dataset: say what to do, never a traceback
    st.error(str(exc))
    st.stop()
if image is None:
    st.stop()
st.caption(f"{caption} {tf.image_size_note(image)}")

editor, view = st.columns([2, 3])
with editor:
    st.subheader("Pipeline")
    revision = st.session_state[keys.TRANSFORMS_REVISION]
    steps = [edit_step(i, s, revision) for i, s in enumerate(st.session_state[keys.TRANSFORMS_PIPELINE])]
    st.session_state[keys.TRANSFORMS_PIPELINE] = steps
    name_column, add_column = st.columns([3, 1], vertical_alignment="bottom")
    name_column.selectbox("Step to add", list(tf.STEP_SPECS), key=keys.TRANSFORMS_ADD)
    add_column.button("Add step", key="transforms_add", on_click=edit, args=("add",))
    seed_column, reroll_column = st.columns([3, 1], vertical_alignment="bottom")
    seed = int(seed_column.number_input("Seed", 0, 2**31 - 1, st.session_state[keys.TRANSFORMS_SEED],
                                        key=f"transforms_seed_{revision}"))
    st.session_state[keys.TRANSFORMS_SEED] = seed
    reroll_column.button("Re-roll", key="transforms_reroll", on_click=edit, args=("reroll",),
                         help="run the random steps with a new seed")
with view:
    st.subheader("Stages")
    try:
        result = tf.run_pipeline(image, steps, seed)
    except (ValueError, TypeError) as exc:
        st.error(f"{exc}")
    else:
        show_stages(result)
        show_rounding(result)
    st.subheader("Code")
    try:
        st.code(tf.render_code(steps, seed), language="python")
    except ValueError:                   # the error is shown above already
        st.info("The code appears once the pipeline is valid.")
