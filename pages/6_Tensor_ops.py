"""Tensor ops explainer: `scatter`, `*` vs `mm` vs `bmm` vs `@`, and `model.eval()` vs `torch.no_grad()`,
each worked out by torch on what you type. Open it from the sidebar of `streamlit run app.py`.

The logic lives in core.tensorops; this page holds the widgets and the layout.
"""

import plotly.colors
import plotly.graph_objects as go
import streamlit as st

from core import tensorops as T

LABELS_KEY = "tensorops_labels"
NUM_CLASSES_KEY = "tensorops_num_classes"
DIM_KEY = "tensorops_dim"
SELF_SHAPE_KEY = "tensorops_self_shape"
INDEX_KEY = "tensorops_index"
SRC_KEY = "tensorops_src"
EXAMPLE_KEY = "tensorops_example"
A_SHAPE_KEY = "tensorops_a_shape"
B_SHAPE_KEY = "tensorops_b_shape"
GRID_KEY_PREFIX = "tensorops_grid_"
DEFAULTS = {LABELS_KEY: "2, 0, 1, 3, 2", NUM_CLASSES_KEY: 4, DIM_KEY: 0, SELF_SHAPE_KEY: "3, 5",
            INDEX_KEY: "0, 1, 2, 0", SRC_KEY: "1, 2, 3, 4, 5\n6, 7, 8, 9, 10", A_SHAPE_KEY: "2, 3",
            B_SHAPE_KEY: "3, 4"}
PALETTE = ["#e5e5e5"] + plotly.colors.qualitative.Set3  # grey: a cell no move touches
LESSON = """
- **`model.eval()` changes how layers behave**: Dropout stops dropping, BatchNorm normalises with its
  running statistics and stops updating them. It does **not** stop autograd: the output still has a
  `grad_fn`, `.backward()` still works, and the graph still costs memory.
- **`torch.no_grad()` stops gradient tracking**: no graph, no `grad_fn`, `.backward()` fails. It does
  **not** change layer behaviour: in `train()` mode dropout still drops, and BatchNorm still uses the
  batch's statistics and still updates its running statistics.
- **For inference use both**: `model.eval()` and `with torch.no_grad():` (or `torch.inference_mode()`,
  which is stricter and a little faster).
"""


def keep_inputs() -> None:
    """Fill in defaults, and re-assign the inputs so they survive a visit to another page."""
    for key, default in DEFAULTS.items():
        st.session_state[key] = st.session_state.get(key, default)


def apply_shape_example() -> None:
    name = st.session_state[EXAMPLE_KEY]
    if name is not None:
        a_shape, b_shape = T.SHAPE_EXAMPLES[name]
        st.session_state[A_SHAPE_KEY] = ", ".join(map(str, a_shape))
        st.session_state[B_SHAPE_KEY] = ", ".join(map(str, b_shape))


def draw_grid(grid: T.GridView) -> go.Figure:
    """A grid as a heatmap: values written in the cells, one colour per src -> self move."""
    colour = [[0 if m is None else 1 + m % (len(PALETTE) - 1) for m in row] for row in grid.move]
    figure = go.Figure(go.Heatmap(
        z=colour, text=grid.text, texttemplate="%{text}", customdata=grid.hover, showscale=False,
        hovertemplate="%{customdata}<extra></extra>", zmin=0, zmax=len(PALETTE) - 1, xgap=3, ygap=3,
        colorscale=[[k / (len(PALETTE) - 1), c] for k, c in enumerate(PALETTE)]))
    figure.update_layout(title=grid.title, height=110 + 40 * len(grid.text), margin=dict(l=30, r=10, t=60, b=10))
    figure.update_xaxes(dtick=1, side="top", showgrid=False, zeroline=False)
    figure.update_yaxes(dtick=1, autorange="reversed", showgrid=False, zeroline=False)
    return figure


def one_hot_section() -> None:
    st.subheader("One-hot labels with `scatter_`")
    st.code("one_hot = torch.zeros(n, C).scatter_(1, labels.unsqueeze(1), 1)  # row i: a 1 in column labels[i]")
    left, right = st.columns([1, 2])
    labels_text = left.text_input("labels", key=LABELS_KEY)
    num_classes = int(left.number_input("number of classes C", 1, T.MAX_CLASSES, key=NUM_CLASSES_KEY))
    try:
        labels = T.parse_int_list(labels_text, "labels")
        frame = T.one_hot_frame(labels, num_classes)
    except T.TensorOpsError as exc:
        right.error(str(exc))
        return
    hot = lambda value: "background-color: #80b1d3" if value == 1 else ""
    right.dataframe(frame.style.map(hot, subset=list(frame.columns[1:])), hide_index=True)
    matches = T.one_hot_matches(labels, num_classes)
    right.markdown(f"Equal to `F.one_hot(labels, C)` (after `.long()`; scatter into zeros gives floats): **{matches}**")


def scatter_section() -> None:
    st.subheader("`self.scatter_(dim, index, src)`, cell by cell")
    settings, index_box, src_box = st.columns([1, 1, 2])
    dim = settings.radio("dim", [0, 1], key=DIM_KEY, horizontal=True)
    self_text = settings.text_input("self shape (starts as zeros)", key=SELF_SHAPE_KEY)
    index_text = index_box.text_area("index (one row per line)", key=INDEX_KEY)
    src_text = src_box.text_area("src (one row per line)", key=SRC_KEY)
    st.markdown(f"Rule for `dim={dim}`: for every cell `(i, j)` of **index**, `{T.SCATTER_RULES[dim]}`. "
                "Cells of src outside index's shape are ignored; matching colours show where each value went.")
    try:
        example = T.scatter_example(dim, T.parse_grid(index_text, "index"), T.parse_grid(src_text, "src", float),
                                    T.parse_shape(self_text, "self shape"))
    except T.TensorOpsError as exc:
        st.error(str(exc))
        return
    for number, (column, grid) in enumerate(zip(st.columns(4), T.scatter_grids(example))):
        column.plotly_chart(draw_grid(grid), key=f"{GRID_KEY_PREFIX}{number}")
    if example.collisions:
        st.warning(f"Cells {example.collisions} of self are written more than once: torch leaves which write "
                   "wins undefined (the plain loop keeps the last), so avoid repeated targets.")
    st.markdown(f"torch's result agrees with a plain-Python loop (`core.tensorops.scatter_reference`): "
                f"**{example.agrees()}**")
    st.dataframe(T.moves_frame(example), hide_index=True)


def shapes_tab() -> None:
    st.selectbox("Examples", list(T.SHAPE_EXAMPLES), index=None, key=EXAMPLE_KEY, on_change=apply_shape_example,
                 placeholder="pick an example, or type shapes below")
    left, right = st.columns(2)
    a_text = left.text_input("shape of A (like 2, 3)", key=A_SHAPE_KEY)
    b_text = right.text_input("shape of B (like 3, 4)", key=B_SHAPE_KEY)
    try:
        a_shape, b_shape = T.parse_shape(a_text, "shape of A"), T.parse_shape(b_text, "shape of B")
    except T.TensorOpsError as exc:
        st.error(str(exc))
        return
    st.caption(f"A: {a_shape}, B: {b_shape}. Each op below was run by torch on tensors of these shapes.")
    st.dataframe(T.ops_table(a_shape, b_shape), hide_index=True)
    left, right = st.columns(2)
    left.markdown("**`A * B` broadcasting**: align the shapes from the right; per dim the sizes must be "
                  "equal, or one of them 1 (or missing), which is stretched.")
    left.dataframe(T.broadcast_table(a_shape, b_shape), hide_index=True)
    steps, shape = T.explain_matmul(a_shape, b_shape)
    right.markdown("**`A @ B` step by step**: the last two dims multiply as matrices, the dims before "
                   "them (batch dims) broadcast, a 1-D side is promoted to a matrix.")
    result = "error" if shape is None else shape
    right.markdown("\n".join(f"1. {step}" for step in steps) + f"\n\n**A @ B -> {result}**")


def modes_tab() -> None:
    st.markdown("The same small model and batch, run five ways. Every fact below was measured by "
                "running the model twice and calling `.backward()`:")
    st.code(str(T.build_demo_model()))
    st.dataframe(T.inference_modes_table(), hide_index=True)
    st.markdown(LESSON)


st.set_page_config(page_title="Tensor ops", layout="wide")
keep_inputs()
st.title("Tensor ops explainer")
scatter_tab, mul_tab, eval_tab = st.tabs(["scatter", "* vs mm vs bmm vs @", "eval() vs no_grad()"])
with scatter_tab:
    one_hot_section()
    scatter_section()
with mul_tab:
    shapes_tab()
with eval_tab:
    modes_tab()
