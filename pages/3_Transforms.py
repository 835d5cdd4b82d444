"""Transforms: build a torchvision pipeline step by step and see what each stage does to an image.

Pick an image (the bundled photo, a dataset sample or an upload), add and tune steps, re-roll the
seed of the random ones, and read each stage's shape and value range. Below: the pipeline as Python
code, and what rounding versus truncation does when a float tensor goes back to 8 bits.
"""

import streamlit as st

from core import transforms as tf
from core.uploads import fit_for_preview

KEY_PIPELINE = "transforms_pipeline"      # list of {"name", "params"} dicts: the editable pipeline
KEY_SEED = "transforms_seed"              # int: the seed the random steps run with
KEY_REVISION = "transforms_revision"      # int: bumped when steps change shape, so widgets start afresh
KEY_SOURCE = "transforms_source"          # widget keys from here on
KEY_DATASET = "transforms_dataset"
KEY_INDEX = "transforms_sample_index"
KEY_UPLOAD = "transforms_upload"
KEY_ADD = "transforms_add_name"
SOURCES = ("Sample photo", "Dataset sample", "Upload")
DATASETS = ("digits", "mnist")
UPLOAD_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff"]
STAGES_PER_ROW = 3

st.set_page_config(page_title="Transforms · Torch Lab", layout="wide")
st.session_state.setdefault(KEY_PIPELINE, tf.default_pipeline())
st.session_state.setdefault(KEY_SEED, 0)
st.session_state.setdefault(KEY_REVISION, 0)


def edit(action: str, index: int = 0, arg=None) -> None:
    """Button callback: change the pipeline (or seed) in session state; new widget keys show it."""
    steps = list(st.session_state[KEY_PIPELINE])
    if action == "move":
        steps = tf.move_step(steps, index, arg)
    elif action == "remove":
        del steps[index]
    elif action == "add":
        steps.append(tf.new_step(st.session_state[KEY_ADD]))
    elif action == "preset":
        steps[index] = tf.new_step("Normalize", **dict(zip(("mean", "std"), tf.NORMALIZE_PRESETS[arg])))
    elif action == "reroll":
        st.session_state[KEY_SEED] = tf.new_seed()
    st.session_state[KEY_PIPELINE] = steps
    st.session_state[KEY_REVISION] += 1


def pick_image():
    """The chosen PIL image and a caption; (None, "") while nothing is uploaded."""
    source = st.radio("Image", SOURCES, horizontal=True, key=KEY_SOURCE)
    if source == "Sample photo":
        return tf.load_sample_photo(), "The bundled sample photo (synthetic)."
    if source == "Dataset sample":
        left, right = st.columns(2)
        name = left.selectbox("Dataset", DATASETS, key=KEY_DATASET)
        index = int(right.number_input("Validation sample", 0, 100_000, 0, key=KEY_INDEX))
        image, label = tf.dataset_sample(index, name)
        return image, f"{name} validation sample {index}, class {label}, un-normalised to 0..255."
    upload = st.file_uploader("Image file", type=UPLOAD_TYPES, key=KEY_UPLOAD)
    if upload is None:
        st.info("Upload an image to start.")
        return None, ""
    image, note = fit_for_preview(tf.open_image(upload.getvalue()))
    return image, f"The uploaded image{', ' + note if note else ''}."


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
        title.markdown(f"**{index + 1}. {spec.name}**{' (random)' if spec.random else ''}: {spec.summary}")
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
    rows = result.stats.to_dict("records")
    for start in range(0, len(result.stages), STAGES_PER_ROW):
        for column, stage in zip(st.columns(STAGES_PER_ROW), result.stages[start:start + STAGES_PER_ROW]):
            array, note = tf.display_array(stage.output)
            row = rows[stage.index]
            column.image(array, caption=f"{stage.index}. {stage.name}: {row['type']} {row['shape']} "
                                        f"{row['dtype']}{f' ({note})' if note else ''}")
    st.dataframe(result.stats, hide_index=True)


def show_rounding(result: tf.PipelineResult) -> None:
    st.subheader("Float tensor back to 8 bits: rounding vs truncation")
    source = tf.rounding_source(result)
    if source is None:
        st.info("Add ToTensor to get a float tensor to convert back.")
        return
    x, where = source
    cmp = tf.compare_rounding(x)
    st.write(f"From {where}: rounding, `(x * 255 + 0.5).clamp(0, 255).to(torch.uint8)` as "
             f"`torchvision.utils.save_image` does, and truncation, `(x * 255).to(torch.uint8)` as `ToPILImage` "
             f"does, differ in **{cmp.num_different:,} of {cmp.num_values:,}** values (by at most "
             f"{cmp.max_difference}).")
    for column, (name, t) in zip(st.columns(3), (("rounded", cmp.rounded), ("truncated", cmp.truncated),
                                                 ("pixels that differ (white)", cmp.mask))):
        column.image(tf.display_array(t)[0], caption=name)


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
    revision = st.session_state[KEY_REVISION]
    steps = [edit_step(i, s, revision) for i, s in enumerate(st.session_state[KEY_PIPELINE])]
    st.session_state[KEY_PIPELINE] = steps
    name_column, add_column = st.columns([3, 1], vertical_alignment="bottom")
    name_column.selectbox("Step to add", list(tf.STEP_SPECS), key=KEY_ADD)
    add_column.button("Add step", key="transforms_add", on_click=edit, args=("add",))
    seed_column, reroll_column = st.columns([3, 1], vertical_alignment="bottom")
    seed = int(seed_column.number_input("Seed", 0, 2**31 - 1, st.session_state[KEY_SEED],
                                        key=f"transforms_seed_{revision}"))
    st.session_state[KEY_SEED] = seed
    reroll_column.button("Re-roll", key="transforms_reroll", on_click=edit, args=("reroll",),
                         help="run the random steps with a new seed")
with view:
    st.subheader("Stages")
    try:
        result = tf.run_pipeline(image, steps, seed)
    except (ValueError, TypeError) as exc:
        st.error(f"{exc}")
        result = None
    if result is not None:
        show_stages(result)
        show_rounding(result)
    st.subheader("Code")
    try:
        st.code(tf.render_code(steps, seed), language="python")
    except ValueError:                   # the error is shown above already
        st.info("The code appears once the pipeline is valid.")
