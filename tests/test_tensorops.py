"""Tests for core.tensorops (torch is the oracle) and the Tensor ops page (AppTest)."""

import json
import random

import pytest
import torch
import torch.nn.functional as F
from streamlit.testing.v1 import AppTest

from core import tensorops as T
from tests.conftest import REPO

PAGE = str(REPO / "pages" / "6_Tensor_ops.py")
INPUT_KEYS = ["tensorops_labels", "tensorops_num_classes", "tensorops_dim", "tensorops_self_shape",
              "tensorops_index", "tensorops_src", "tensorops_a_shape", "tensorops_b_shape"]


def torch_outcome(op, a_shape, b_shape):
    try:
        return tuple(T.OPS[op](torch.ones(a_shape), torch.ones(b_shape)).shape), None
    except RuntimeError as exc:
        return None, str(exc).strip().splitlines()[0]


def random_shape(rng, max_dims=4):
    return tuple(rng.randint(1, 3) for _ in range(rng.randint(0, max_dims)))


# ---------------------------------------------------------------- parsing

def test_parsers_read_lists_grids_and_shapes():
    assert T.parse_int_list("2, 0 1", "labels") == [2, 0, 1]
    assert T.parse_grid("0, 1\n2, 0", "index") == [[0, 1], [2, 0]]
    assert T.parse_grid("[[0, 1], [2, 0]]", "index") == [[0, 1], [2, 0]]
    assert T.parse_grid("1.5 2; 3 4", "src", float) == [[1.5, 2.0], [3.0, 4.0]]
    assert [T.parse_shape(t) for t in ["2, 3", "2x3", "3", "3,", "", "(5, 2, 3)"]] == \
        [(2, 3), (2, 3), (3,), (3,), (), (5, 2, 3)]


@pytest.mark.parametrize("call, message", [
    (lambda: T.parse_int_list("1, 1.5", "labels"), "'1.5' is not an integer"),
    (lambda: T.parse_int_list(" , ", "labels"), "labels is empty"),
    (lambda: T.parse_grid("0, 1\n2", "index"), "different lengths [1, 2]"),
    (lambda: T.parse_grid("0, x", "index"), "'x' is not an integer"),
    (lambda: T.parse_grid("1, nan", "src", float), "not a finite number"),
    (lambda: T.parse_shape("2, 0"), "sizes of at least 1"),
    (lambda: T.parse_shape("1000, 1000"), "at most 100,000 elements"),
])
def test_bad_text_raises_a_one_line_value_error(call, message):
    with pytest.raises(ValueError, match=None) as caught:
        call()
    assert isinstance(caught.value, T.TensorOpsError)
    assert message in str(caught.value) and "\n" not in str(caught.value)


# ---------------------------------------------------------------- scatter: one-hot

def test_one_hot_by_scatter_matches_hand_values_and_f_one_hot():
    assert T.scatter_one_hot([2, 0, 1], 4).tolist() == [[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0]]
    rng = random.Random(0)
    for _ in range(50):
        num_classes = rng.randint(1, 10)
        labels = [rng.randrange(num_classes) for _ in range(rng.randint(1, 12))]
        assert T.one_hot_matches(labels, num_classes)
        assert torch.equal(T.scatter_one_hot(labels, num_classes).long(), F.one_hot(torch.tensor(labels), num_classes))
    frame = T.one_hot_frame([3, 1], 4)
    assert list(frame.columns) == ["label", "class 0", "class 1", "class 2", "class 3"]
    assert frame.values.tolist() == [[3, 0, 0, 0, 1], [1, 0, 1, 0, 0]]


def test_one_hot_label_out_of_range_says_which_and_what_is_allowed():
    with pytest.raises(T.TensorOpsError, match=r"label 4 \(position 1\) is out of range for 4 classes; labels must be 0 to 3"):
        T.one_hot_frame([0, 4], 4)


# ---------------------------------------------------------------- scatter: index / src / dim

SRC_1_TO_10 = [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]]


def test_scatter_matches_the_torch_docs_examples():
    dim0 = T.scatter_example(0, [[0, 1, 2, 0]], SRC_1_TO_10, (3, 5))
    assert dim0.result == [[1, 0, 0, 4, 0], [0, 2, 0, 0, 0], [0, 0, 3, 0, 0]] == dim0.reference
    dim1 = T.scatter_example(1, [[0, 1, 2], [0, 1, 4]], SRC_1_TO_10, (3, 5))
    assert dim1.result == [[1, 2, 3, 0, 0], [6, 7, 0, 0, 8], [0, 0, 0, 0, 0]] == dim1.reference
    assert dim0.collisions == dim1.collisions == [] and dim0.agrees() and dim1.agrees()


def random_scatter_case(rng):
    dim = rng.randint(0, 1)
    self_shape = (rng.randint(1, 5), rng.randint(1, 5))
    index_shape = [rng.randint(1, 4), rng.randint(1, 4)]
    index_shape[1 - dim] = rng.randint(1, self_shape[1 - dim])
    src_shape = (index_shape[0] + rng.randint(0, 2), index_shape[1] + rng.randint(0, 2))
    src = [[rng.randint(-9, 9) for _ in range(src_shape[1])] for _ in range(src_shape[0])]
    index = [[rng.randrange(self_shape[dim]) for _ in range(index_shape[1])] for _ in range(index_shape[0])]
    return dim, index, src, self_shape


def test_torch_scatter_and_the_plain_loop_agree_on_random_cases():
    rng, kinds = random.Random(0), {"unique": 0, "collide": 0}
    for _ in range(400):
        dim, index, src, self_shape = random_scatter_case(rng)
        example = T.scatter_example(dim, index, src, self_shape)
        aimed = {}
        for i, row in enumerate(index):
            for j, value in enumerate(row):
                aimed.setdefault((value, j) if dim == 0 else (i, value), []).append(src[i][j])
        assert sorted(cell for cell, values in aimed.items() if len(values) > 1) == example.collisions
        for r in range(self_shape[0]):
            for c in range(self_shape[1]):
                expected = aimed.get((r, c), [0])
                assert example.reference[r][c] == expected[-1]  # the loop: the last write wins
                assert example.result[r][c] in expected  # torch: some write wins where they collide
        if not example.collisions:
            assert example.result == example.reference
        assert example.agrees()
        kinds["collide" if example.collisions else "unique"] += 1
    assert min(kinds.values()) > 50


def test_scatter_input_checks_agree_with_torch_on_random_valid_and_invalid_cases():
    rng, refused = random.Random(1), 0
    for _ in range(300):
        dim, self_shape = rng.randint(0, 1), (rng.randint(1, 3), rng.randint(1, 3))
        index_shape, src_shape = (rng.randint(1, 3), rng.randint(1, 3)), (rng.randint(1, 3), rng.randint(1, 3))
        pick = lambda: rng.randrange(self_shape[dim]) if rng.random() < 0.95 else rng.choice([-1, self_shape[dim]])
        index = [[pick() for _ in range(index_shape[1])] for _ in range(index_shape[0])]
        src = [[1.0] * src_shape[1] for _ in range(src_shape[0])]
        try:
            torch.zeros(self_shape).scatter_(dim, torch.tensor(index), torch.tensor(src))
            torch_ok = True
        except RuntimeError:
            torch_ok = False
        try:
            T.check_scatter_inputs(dim, index, src, self_shape)
            ours_ok = True
        except T.TensorOpsError:
            ours_ok = False
        assert ours_ok == torch_ok, (dim, index, src, self_shape)
        refused += not torch_ok
    assert 30 < refused < 270


@pytest.mark.parametrize("dim, index, self_shape, message", [
    (0, [[0, 1, 9, 0]], (3, 5), "index[0][2] = 9 is out of range: self has size 3 in dim 0, so use 0 to 2"),
    (1, [[0, -1]], (3, 5), "index[0][1] = -1 is out of range"),
    (0, [[0], [1], [2]], (3, 5), "index is (3, 1) but src is (2, 5)"),
    (1, [[0], [0]], (1, 5), "index is (2, 1) but self is (1, 5): outside dim=1"),
    (2, [[0]], (3, 5), "dim 2 is not allowed"),
    (0, [[0]], (3, 5, 2), "must be 2-D"),
])
def test_invalid_scatter_input_raises_one_line(dim, index, self_shape, message):
    with pytest.raises(T.TensorOpsError) as caught:
        T.scatter_example(dim, index, SRC_1_TO_10, self_shape)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_grids_and_moves_show_where_each_src_cell_went():
    example = T.scatter_example(0, [[0, 1, 2, 0]], SRC_1_TO_10, (3, 5))
    before, index, src, result = T.scatter_grids(example)
    assert [g.title for g in (before, index, src, result)] == ["self (before)", "index", "src", "result"]
    assert src.move == [[0, 1, 2, 3, None], [None] * 5] and index.move == [[0, 1, 2, 3]]
    assert result.move[0] == [0, None, None, 3, None] and result.text[0] == ["1", "0", "0", "4", "0"]
    assert src.hover[0][3] == "src[0][3] -> self[0][3]" and before.move == [[None] * 5] * 3
    moves = T.moves_frame(example)
    assert moves["rule"].tolist()[1] == "self[index[0][1]][1] = src[0][1]"
    assert moves["self cell"].tolist() == ["self[0][0]", "self[1][1]", "self[2][2]", "self[0][3]"]


def test_colliding_writes_are_flagged():
    example = T.scatter_example(1, [[0, 1, 2, 0]], SRC_1_TO_10, (3, 5))
    assert example.collisions == [(0, 0)] and example.result[0][0] in (1.0, 4.0)
    assert T.moves_frame(example)["collides"].tolist() == [True, False, False, True]


# ---------------------------------------------------------------- mul vs mm vs bmm vs @

MUL, MM, BMM, MATMUL = T.OPS


@pytest.mark.parametrize("a_shape, b_shape, expected", [
    ((2, 3), (3, 4), {MM: (2, 4), MATMUL: (2, 4), MUL: None, BMM: None}),
    ((5, 2, 3), (5, 3, 4), {BMM: (5, 2, 4), MATMUL: (5, 2, 4), MM: None, MUL: None}),
    ((2, 3), (3,), {MATMUL: (2,), MUL: (2, 3), MM: None}),
    ((4, 1), (1, 3), {MUL: (4, 3), MM: (4, 3), MATMUL: (4, 3), BMM: None}),
    ((2, 1, 3, 4), (4, 4, 5), {MATMUL: (2, 4, 3, 5), MUL: None}),
    ((2, 1, 3), (4, 3, 5), {MATMUL: None, BMM: None}),  # batch dims 2 and 4 do not broadcast
    ((3,), (3,), {MATMUL: (), MUL: (3,)}),
])
def test_ops_table_gives_torch_shapes_and_torch_errors(a_shape, b_shape, expected):
    table = T.ops_table(a_shape, b_shape).set_index("op")
    for op, shape in expected.items():
        assert table.loc[op, "applies"] == (shape is not None)
        assert table.loc[op, "result shape"] == ("" if shape is None else str(shape))
    for op in T.OPS:
        torch_shape, torch_error = torch_outcome(op, a_shape, b_shape)
        assert table.loc[op, "result shape"] == ("" if torch_shape is None else str(torch_shape))
        assert table.loc[op, "torch error"] == (torch_error or "")


def test_errors_are_torchs_own_messages():
    table = T.ops_table((2, 3), (4, 5)).set_index("op")
    assert table.loc[MM, "torch error"] == "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)"
    assert "must match the size of tensor b" in table.loc[MUL, "torch error"]
    assert table.loc[BMM, "torch error"] == "batch1 must be a 3D tensor"


def test_a_huge_broadcast_is_sized_without_being_allocated():
    assert T.run_op(MUL, (100_000, 1), (1, 100_000)) == ((100_000, 100_000), None)
    with pytest.raises(T.TensorOpsError, match="unknown op 'dot'; choose one of A \\* B"):
        T.run_op("dot", (2,), (2,))


def test_shape_rules_predict_what_torch_does_for_random_shapes():
    rng = random.Random(0)
    for _ in range(400):
        a_shape, b_shape = random_shape(rng), random_shape(rng)
        mul_shape, _ = torch_outcome(MUL, a_shape, b_shape)
        try:
            assert T.predict_broadcast_shape(a_shape, b_shape) == mul_shape
        except T.TensorOpsError:
            assert mul_shape is None
        assert T.explain_matmul(a_shape, b_shape)[1] == torch_outcome(MATMUL, a_shape, b_shape)[0], (a_shape, b_shape)


def test_broadcast_table_aligns_shapes_from_the_right():
    table = T.broadcast_table((2, 3), (3,))
    assert table[["dim", "A", "B", "result"]].values.tolist() == [["-2", "2", "-", "2"], ["-1", "3", "3", "3"]]
    clash = T.broadcast_table((4, 1), (2, 3))
    assert clash["result"].tolist() == ["✗", "3"] and "neither is 1" in clash["why"][0]


def test_matmul_steps_name_the_promotion_and_the_batch_broadcast():
    steps, shape = T.explain_matmul((3,), (2, 3, 4))
    assert shape == (2, 4) and steps[0].startswith("A is 1-D (3,): promoted to a row (1, 3)")
    steps, shape = T.explain_matmul((2, 1, 3, 4), (4, 4, 5))
    assert shape == (2, 4, 3, 5) and "batch dims (2, 1) and (4,) broadcast to (2, 4)" in steps
    assert T.explain_matmul((), (3,))[1] is None


# ---------------------------------------------------------------- model.eval() vs torch.no_grad()

@pytest.fixture(scope="module")
def modes():
    return T.inference_modes_table(seed=0).set_index("mode")


def test_eval_changes_layers_but_keeps_autograd(modes):
    train, evaluated = modes.loc["train()"], modes.loc["eval()"]
    assert not train["two calls equal"] and evaluated["two calls equal"]
    assert train["BatchNorm used"] == "batch statistics" and evaluated["BatchNorm used"] == "running statistics"
    assert train["running_mean changed"] and not evaluated["running_mean changed"]
    assert evaluated["requires_grad"] and evaluated["grad_fn"] != "None"
    assert evaluated["backward() works"] and evaluated["param grads filled"]


def test_no_grad_stops_autograd_but_keeps_layer_behaviour(modes):
    train_no_grad, eval_no_grad = modes.loc["train() + no_grad()"], modes.loc["eval() + no_grad()"]
    assert not train_no_grad["requires_grad"] and train_no_grad["grad_fn"] == "None"
    assert not train_no_grad["two calls equal"] and train_no_grad["BatchNorm used"] == "batch statistics"
    assert train_no_grad["running_mean changed"]  # no_grad does not freeze BatchNorm's running stats
    assert not train_no_grad["backward() works"] and "does not require grad" in train_no_grad["backward error"]
    assert eval_no_grad["two calls equal"] and not eval_no_grad["running_mean changed"]
    assert not eval_no_grad["requires_grad"] and not eval_no_grad["param grads filled"]
    assert not modes.loc["eval() + inference_mode()", "backward() works"]


def test_modes_table_is_reproducible(modes):
    assert T.inference_modes_table(seed=0).set_index("mode").equals(modes)


# ---------------------------------------------------------------- the page

def test_page_renders_all_three_tabs():
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception and not at.error
    assert [tab.label for tab in at.tabs] == ["scatter", "* vs mm vs bmm vs @", "eval() vs no_grad()"]
    assert any("Equal to `F.one_hot" in m.value and m.value.endswith("**True**") for m in at.markdown)
    assert any("agrees with a plain-Python loop" in m.value and m.value.endswith("**True**") for m in at.markdown)
    assert any(m.value.endswith("**A @ B -> (2, 4)**") for m in at.markdown)
    modes = next(d.value for d in at.dataframe if "mode" in d.value.columns)
    assert modes["mode"].tolist() == list(T.INFERENCE_MODES) and modes["grad_fn"].iloc[1] != "None"
    ops = next(d.value for d in at.dataframe if "op" in d.value.columns)
    assert ops["result shape"].tolist() == ["", "(2, 4)", "", "(2, 4)"]
    inputs = {key: at.session_state[key] for key in INPUT_KEYS}  # plain values, kept across pages
    assert json.loads(json.dumps(inputs))["tensorops_index"] == "0, 1, 2, 0"


def test_page_shows_one_line_errors_for_bad_input():
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.text_area(key="tensorops_index").set_value("0, 1, 9, 0")
    at.text_input(key="tensorops_labels").set_value("1, x")
    at.text_input(key="tensorops_b_shape").set_value("3, 0").run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("index[0][2] = 9 is out of range" in e for e in errors)
    assert any("'x' is not an integer" in e for e in errors)
    assert any("shape of B '3, 0' is not allowed" in e for e in errors)


def test_page_example_picker_fills_the_shapes():
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.selectbox(key="tensorops_example").set_value("(5,2,3) and (5,3,4): a batch of matrices").run()
    assert not at.exception
    assert at.text_input(key="tensorops_a_shape").value == "5, 2, 3"
    ops = next(d.value for d in at.dataframe if "op" in d.value.columns)
    assert ops.set_index("op").loc[BMM, "result shape"] == "(5, 2, 4)"
