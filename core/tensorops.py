"""Tensor ops explainer: the logic behind the Tensor ops page, as plain data, all computed by torch.

- `scatter`: `one_hot_frame` shows `torch.zeros(n, C).scatter_(1, labels.unsqueeze(1), 1)`, checked against
  `F.one_hot` by `one_hot_matches`; `scatter_example` runs `scatter_` with torch and with a plain loop
  (`scatter_reference`), and `scatter_grids` / `moves_frame` show which src cell went where.
- `*` / `mm` / `bmm` / `@`: `ops_table` runs each op, giving the result shape or torch's own error;
  `broadcast_table` and `explain_matmul` spell out the shape rules.
- `model.eval()` vs `torch.no_grad()`: `inference_modes_table` runs a Dropout + BatchNorm model five ways.

    from core import tensorops as T
    T.ops_table(T.parse_shape("2,3"), T.parse_shape("3,4"))

Input a user can get wrong raises `TensorOpsError`, a `ValueError` with a one-line message.
"""

from __future__ import annotations

import math
import re
from contextlib import nullcontext
from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from core.errors import first_line

MAX_GRID_SIDE = 8
MAX_LABELS = 32
MAX_CLASSES = 16
MAX_SHAPE_DIMS = 5
MAX_INPUT_ELEMENTS = 100_000
MAX_RESULT_ELEMENTS = 1_000_000

Shape = tuple[int, ...]


class TensorOpsError(ValueError):
    """Input the explainer cannot use; the message says what was wrong and what to do."""


# ---------------------------------------------------------------- parsing the page's text boxes

def parse_number(text: str, what: str, kind: type = int) -> int | float:
    """One integer (or, with `kind=float`, one finite number) typed by the user."""
    try:
        value = kind(text)
        assert math.isfinite(value)
    except (ValueError, AssertionError):
        wanted = "an integer, like 0, 1, 2" if kind is int else "a finite number, like 1, 2.5, -3"
        raise TensorOpsError(f"{what}: {text!r} is not {wanted}") from None
    return value


def parse_int_list(text: str, what: str) -> list[int]:
    """'2, 0, 1' (commas and/or spaces, brackets allowed) -> [2, 0, 1]."""
    items = [t for t in re.split(r"[,\s\[\]]+", text) if t]
    if not items:
        raise TensorOpsError(f"{what} is empty; type comma-separated integers like 2, 0, 1")
    return [parse_number(t, what) for t in items]


def parse_grid(text: str, what: str, kind: type = int) -> list[list]:
    """A small 2-D grid: rows on separate lines or split by ';', values by commas or spaces.
    '[[0, 1], [2, 0]]' works too."""
    text = re.sub(r"\]\s*,", ";", text).replace("[", "").replace("]", "")
    rows = [row for row in re.split(r"[;\n]", text) if row.strip(" ,\t")]
    if not rows:
        raise TensorOpsError(f"{what} is empty; type rows like '0, 1, 2' on separate lines")
    grid = [[parse_number(t, what, kind) for t in re.split(r"[,\s]+", row) if t] for row in rows]
    widths = sorted({len(row) for row in grid})
    if len(widths) > 1:
        raise TensorOpsError(f"{what} rows have different lengths {widths}; give every row as many values")
    if len(grid) > MAX_GRID_SIDE or widths[0] > MAX_GRID_SIDE:
        raise TensorOpsError(f"{what} is {len(grid)}x{widths[0]}; keep it within {MAX_GRID_SIDE}x{MAX_GRID_SIDE}")
    return grid


def parse_shape(text: str, what: str = "shape") -> Shape:
    """'2, 3' or '2x3' -> (2, 3); '3' or '3,' -> (3,); '' or '()' -> () (a 0-d scalar)."""
    dims = tuple(parse_number(t, what) for t in re.split(r"[,x×\s()\[\]]+", text) if t)
    if any(d < 1 for d in dims) or len(dims) > MAX_SHAPE_DIMS or math.prod(dims) > MAX_INPUT_ELEMENTS:
        raise TensorOpsError(f"{what} {text!r} is not allowed here: use sizes of at least 1, at most "
                             f"{MAX_SHAPE_DIMS} dims and at most {MAX_INPUT_ELEMENTS:,} elements")
    return dims


def format_number(value: float) -> str:
    """1.0 -> '1', 2.5 -> '2.5' (grids show numbers without noise)."""
    return f"{value:g}"


# ---------------------------------------------------------------- scatter: one-hot from labels

def scatter_one_hot(labels: list[int], num_classes: int) -> torch.Tensor:
    """One-hot rows by scatter: row i gets a 1 in column labels[i]. Shape (n, num_classes), float."""
    if not 1 <= num_classes <= MAX_CLASSES:
        raise TensorOpsError(f"number of classes {num_classes} is out of range; use 1 to {MAX_CLASSES}")
    if not 1 <= len(labels) <= MAX_LABELS:
        raise TensorOpsError(f"{len(labels)} labels given; use 1 to {MAX_LABELS}")
    for position, label in enumerate(labels):
        if not 0 <= label < num_classes:
            raise TensorOpsError(f"label {label} (position {position}) is out of range for {num_classes} "
                                 f"classes; labels must be 0 to {num_classes - 1}")
    labels_t = torch.tensor(labels)
    return torch.zeros(len(labels), num_classes).scatter_(1, labels_t.unsqueeze(1), 1)


def one_hot_matches(labels: list[int], num_classes: int) -> bool:
    """Whether the scatter version equals `F.one_hot` (which returns int64, hence `.long()`)."""
    reference = F.one_hot(torch.tensor(labels), num_classes)
    return torch.equal(scatter_one_hot(labels, num_classes).long(), reference)


def one_hot_frame(labels: list[int], num_classes: int) -> pd.DataFrame:
    """The labels next to their one-hot rows: columns 'label', 'class 0' ... 'class C-1'."""
    grid = scatter_one_hot(labels, num_classes).long().tolist()
    frame = pd.DataFrame(grid, columns=[f"class {c}" for c in range(num_classes)])
    frame.insert(0, "label", labels)
    return frame


# ---------------------------------------------------------------- scatter: index / src / dim

SCATTER_RULES = {0: "self[index[i][j]][j] = src[i][j]", 1: "self[i][index[i][j]] = src[i][j]"}


@dataclass(frozen=True)
class ScatterExample:
    """`self.scatter_(dim, index, src)` on a zero `self`, worked out twice. `moves` holds one
    (i, j, row, col) per index cell: src[i][j] went to self[row][col]. `collisions` lists self
    cells written more than once: which write wins there is left undefined by torch."""

    dim: int
    index: list[list[int]]
    src: list[list[float]]
    before: list[list[float]]
    result: list[list[float]]
    reference: list[list[float]]
    moves: list[tuple[int, int, int, int]]
    collisions: list[tuple[int, int]]

    def agrees(self) -> bool:
        """Torch and the loop give the same cells, except where writes collide: there torch's
        value only has to be one of the src values aimed at that cell."""
        aimed: dict[tuple[int, int], list[float]] = {}
        for i, j, row, col in self.moves:
            aimed.setdefault((row, col), []).append(self.src[i][j])
        return all(value == expected or value in aimed.get((r, c), [])
                   for r, (line, expected_line) in enumerate(zip(self.result, self.reference))
                   for c, (value, expected) in enumerate(zip(line, expected_line)))


def check_scatter_inputs(dim: int, index: list[list[int]], src: list[list], self_shape: Shape) -> None:
    """Raise TensorOpsError with torch's rules in words unless `scatter_` accepts these inputs."""
    if dim not in SCATTER_RULES:
        raise TensorOpsError(f"dim {dim} is not allowed; use 0 or 1 (the grids are 2-D)")
    if len(self_shape) != 2 or max(self_shape) > MAX_GRID_SIDE:
        raise TensorOpsError(f"self shape {self_shape} must be 2-D with sides 1 to {MAX_GRID_SIDE}, like 3, 5")
    index_shape, src_shape = (len(index), len(index[0])), (len(src), len(src[0]))
    for d in (0, 1):
        if index_shape[d] > src_shape[d]:
            raise TensorOpsError(f"index is {index_shape} but src is {src_shape}: index may not be larger "
                                 f"than src in any dim (dim {d}); shrink index or grow src")
        if d != dim and index_shape[d] > self_shape[d]:
            raise TensorOpsError(f"index is {index_shape} but self is {self_shape}: outside dim={dim}, index "
                                 f"may not be larger than self (dim {d}); shrink index or grow self")
    for i, j, value in ((i, j, v) for i, row in enumerate(index) for j, v in enumerate(row)):
        if not 0 <= value < self_shape[dim]:
            raise TensorOpsError(f"index[{i}][{j}] = {value} is out of range: self has size "
                                 f"{self_shape[dim]} in dim {dim}, so use 0 to {self_shape[dim] - 1}")


def scatter_moves(dim: int, index: list[list[int]]) -> list[tuple[int, int, int, int]]:
    """(i, j, row, col) for each index cell, in row-major order: src[i][j] goes to self[row][col]."""
    return [(i, j, value, j) if dim == 0 else (i, j, i, value)
            for i, row in enumerate(index) for j, value in enumerate(row)]


def scatter_reference(dim: int, index: list[list[int]], src: list[list], before: list[list]) -> list[list]:
    """`before.scatter(dim, index, src)` as a plain loop (later writes win where cells collide)."""
    result = [row[:] for row in before]
    for i, j, row, col in scatter_moves(dim, index):
        result[row][col] = src[i][j]
    return result


def scatter_example(dim: int, index: list[list[int]], src: list[list], self_shape: Shape) -> ScatterExample:
    """Check the inputs, then scatter with torch and with the loop; see ScatterExample."""
    check_scatter_inputs(dim, index, src, self_shape)
    before = [[0.0] * self_shape[1] for _ in range(self_shape[0])]
    src = [[float(v) for v in row] for row in src]
    try:  # float64 keeps typed decimals exact, so torch and the loop compare equal
        result = torch.tensor(before, dtype=torch.float64).scatter_(
            dim, torch.tensor(index), torch.tensor(src, dtype=torch.float64)).tolist()
    except RuntimeError as exc:  # a case the checks above missed: still one line, never a traceback
        raise TensorOpsError(f"torch refused: {first_line(exc)}") from None
    moves = scatter_moves(dim, index)
    targets = [(row, col) for _, _, row, col in moves]
    collisions = sorted({t for t in targets if targets.count(t) > 1})
    return ScatterExample(dim, index, src, before, result, scatter_reference(dim, index, src, before),
                          moves, collisions)


@dataclass(frozen=True)
class GridView:
    """One grid to draw: cell text, the number of the move each cell takes part in (None: none), so
    that matching colours show where each src cell went, and a hover note per cell."""

    title: str
    text: list[list[str]]
    move: list[list[int | None]]
    hover: list[list[str]]


def _grid_view(title: str, grid: list[list], notes: dict[tuple[int, int], tuple[int, str]]) -> GridView:
    cells = [[(r, c) for c in range(len(grid[0]))] for r in range(len(grid))]
    note = lambda r, c: notes.get((r, c), (None, f"row {r}, column {c}: not involved"))
    return GridView(title, [[format_number(grid[r][c]) for r, c in line] for line in cells],
                    [[note(r, c)[0] for r, c in line] for line in cells],
                    [[note(r, c)[1] for r, c in line] for line in cells])


def scatter_grids(example: ScatterExample) -> list[GridView]:
    """The four grids of the example: self (before), index, src, and the result."""
    sent = {(i, j): (n, f"src[{i}][{j}] -> self[{r}][{c}]") for n, (i, j, r, c) in enumerate(example.moves)}
    got = {(r, c): (n, f"self[{r}][{c}] = src[{i}][{j}]") for n, (i, j, r, c) in enumerate(example.moves)}
    return [_grid_view("self (before)", example.before, {}), _grid_view("index", example.index, sent),
            _grid_view("src", example.src, sent), _grid_view("result", example.result, got)]


def moves_frame(example: ScatterExample) -> pd.DataFrame:
    """One row per index cell: which src cell went to which self cell, by the rule for this dim."""
    rows = []
    for i, j, row, col in example.moves:
        target = f"self[index[{i}][{j}]][{j}]" if example.dim == 0 else f"self[{i}][index[{i}][{j}]]"
        rows.append({"src cell": f"src[{i}][{j}]", "value": format_number(example.src[i][j]),
                     "index value": str(example.index[i][j]), "rule": f"{target} = src[{i}][{j}]",
                     "self cell": f"self[{row}][{col}]", "collides": (row, col) in example.collisions})
    return pd.DataFrame(rows, columns=["src cell", "value", "index value", "rule", "self cell", "collides"])


# ---------------------------------------------------------------- mul vs mm vs bmm vs @

OPS = {"A * B (torch.mul)": torch.mul, "torch.mm(A, B)": torch.mm, "torch.bmm(A, B)": torch.bmm,
       "A @ B (torch.matmul)": torch.matmul}
OP_RULES = {"A * B (torch.mul)": "element-wise; shapes broadcast (aligned from the right)",
            "torch.mm(A, B)": "exactly 2-D: (n, m) @ (m, p) -> (n, p); no broadcasting",
            "torch.bmm(A, B)": "exactly 3-D: (b, n, m) @ (b, m, p) -> (b, n, p); no broadcasting",
            "A @ B (torch.matmul)": "last two dims multiply; batch dims broadcast; a 1-D side is promoted"}
SHAPE_EXAMPLES = {
    "(2,3) and (3,4): a matrix product": ((2, 3), (3, 4)),
    "(5,2,3) and (5,3,4): a batch of matrices": ((5, 2, 3), (5, 3, 4)),
    "(2,3) and (3,): matrix times vector": ((2, 3), (3,)),
    "(4,1) and (1,3): an outer-product broadcast": ((4, 1), (1, 3)),
    "(2,1,3,4) and (4,4,5): batch dims broadcast": ((2, 1, 3, 4), (4, 4, 5)),
    "(2,1,3) and (4,3,5): batch dims 2 and 4 clash": ((2, 1, 3), (4, 3, 5)),
}


def run_op(op: str, a_shape: Shape, b_shape: Shape) -> tuple[Shape | None, str | None]:
    """Run `op` on tensors of these shapes: (result shape, None), or (None, torch's error message)."""
    if op not in OPS:
        raise TensorOpsError(f"unknown op {op!r}; choose one of {', '.join(OPS)}")
    try:  # shapes first on the meta device (no memory), so a huge broadcast is never allocated
        shape = tuple(OPS[op](torch.empty(a_shape, device="meta"), torch.empty(b_shape, device="meta")).shape)
    except Exception:  # noqa: BLE001 - any refusal here is settled by the real run below
        shape = None
    if shape is not None and math.prod(shape) > MAX_RESULT_ELEMENTS:
        return shape, None
    try:  # the real run on CPU: its error message is the one a user would see
        return tuple(OPS[op](torch.ones(a_shape), torch.ones(b_shape)).shape), None
    except (RuntimeError, IndexError, ValueError) as exc:
        return None, first_line(exc)


def ops_table(a_shape: Shape, b_shape: Shape) -> pd.DataFrame:
    """One row per op: whether it applies to A and B, the result shape or torch's error, the rule."""
    rows = []
    for op in OPS:
        shape, error = run_op(op, a_shape, b_shape)
        rows.append({"op": op, "applies": error is None, "result shape": "" if shape is None else str(shape),
                     "torch error": error or "", "rule": OP_RULES[op]})
    return pd.DataFrame(rows)


def broadcast_dim(a: int | None, b: int | None) -> tuple[int | None, str]:
    """Broadcast one aligned pair of sizes (None: that side has no dim here). (size or None, why)."""
    if a is None or b is None:
        side, size = ("A", b) if a is None else ("B", a)
        return size, f"{side} has no dim here: counts as 1, stretched to {size}"
    if a == b:
        return a, "equal"
    if a == 1 or b == 1:
        side, size = ("A", b) if a == 1 else ("B", a)
        return size, f"{side} is 1: stretched to {size}"
    return None, f"{a} vs {b}: neither is 1, cannot broadcast"


def _aligned(a_shape: Shape, b_shape: Shape) -> list[tuple[int, int | None, int | None]]:
    ndim = max(len(a_shape), len(b_shape))
    pad_a = (None,) * (ndim - len(a_shape)) + tuple(a_shape)
    pad_b = (None,) * (ndim - len(b_shape)) + tuple(b_shape)
    return [(k - ndim, pad_a[k], pad_b[k]) for k in range(ndim)]


def broadcast_table(a_shape: Shape, b_shape: Shape) -> pd.DataFrame:
    """Broadcasting for `*`: the two shapes aligned from the right, one row per dim, with the rule."""
    rows = []
    for dim, a, b in _aligned(a_shape, b_shape):
        size, why = broadcast_dim(a, b)
        rows.append({"dim": str(dim), "A": "-" if a is None else str(a), "B": "-" if b is None else str(b),
                     "result": "✗" if size is None else str(size), "why": why})
    return pd.DataFrame(rows, columns=["dim", "A", "B", "result", "why"])


def predict_broadcast_shape(a_shape: Shape, b_shape: Shape) -> Shape:
    """The shape `A * B` has, by the rules in `broadcast_table`; TensorOpsError where they clash."""
    shape = []
    for dim, a, b in _aligned(a_shape, b_shape):
        size, why = broadcast_dim(a, b)
        if size is None:
            raise TensorOpsError(f"shapes {tuple(a_shape)} and {tuple(b_shape)} do not broadcast at dim {dim}: {why}")
        shape.append(size)
    return tuple(shape)


def explain_matmul(a_shape: Shape, b_shape: Shape) -> tuple[list[str], Shape | None]:
    """The steps `A @ B` takes with these shapes, and the result shape (None when it fails)."""
    a_shape, b_shape = tuple(a_shape), tuple(b_shape)
    if not a_shape or not b_shape:
        return ["both sides must be at least 1-D: a 0-d scalar has no rows or columns (use `*`)"], None
    steps, a2, b2 = [], a_shape, b_shape
    if len(a_shape) == 1:
        a2 = (1,) + a_shape
        steps.append(f"A is 1-D {a_shape}: promoted to a row {a2}; the added 1 is removed at the end")
    if len(b_shape) == 1:
        b2 = b_shape + (1,)
        steps.append(f"B is 1-D {b_shape}: promoted to a column {b2}; the added 1 is removed at the end")
    (n, m), (m2, p) = a2[-2:], b2[-2:]
    if m != m2:
        steps.append(f"matrix dims: ({n}, {m}) @ ({m2}, {p}) fails: A's last size {m} != B's second-to-last {m2}")
        return steps, None
    steps.append(f"matrix dims: ({n}, {m}) @ ({m2}, {p}) -> ({n}, {p})")
    try:
        batch = predict_broadcast_shape(a2[:-2], b2[:-2])
    except TensorOpsError as exc:
        steps.append(f"batch dims {a2[:-2]} and {b2[:-2]} must broadcast: {exc}")
        return steps, None
    steps.append(f"batch dims {a2[:-2]} and {b2[:-2]} broadcast to {batch}")
    shape = batch + (n, p)
    shape = shape[:-2] + shape[-1:] if len(a_shape) == 1 else shape
    shape = shape[:-1] if len(b_shape) == 1 else shape
    steps.append(f"result shape {shape}")
    return steps, shape


# ---------------------------------------------------------------- model.eval() vs torch.no_grad()

INFERENCE_MODES = {  # name -> (model.training, context the two forward calls run under)
    "train()": (True, nullcontext), "eval()": (False, nullcontext), "train() + no_grad()": (True, torch.no_grad),
    "eval() + no_grad()": (False, torch.no_grad), "eval() + inference_mode()": (False, torch.inference_mode)}


def build_demo_model(seed: int = 0) -> nn.Sequential:
    """Linear(4, 8) -> BatchNorm1d(8) -> ReLU -> Dropout(0.5) -> Linear(8, 3), fixed weights, and
    running statistics warmed up on a few batches so they differ from any one batch's."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
        with torch.no_grad():
            for _ in range(5):
                model(torch.randn(16, 4) * 2 + 1)
    return model


def demo_input(seed: int = 0) -> torch.Tensor:
    """The batch every mode runs on: 6 samples, 4 features."""
    return torch.randn(6, 4, generator=torch.Generator().manual_seed(seed + 1))


def _batchnorm_statistics_used(bn: nn.BatchNorm1d, bn_in, bn_out, mean_before, var_before) -> str:
    """Which statistics produced `bn_out`, found by redoing the normalisation both ways."""
    with torch.no_grad():
        by_batch = F.batch_norm(bn_in, None, None, bn.weight, bn.bias, training=True, eps=bn.eps)
        by_running = F.batch_norm(bn_in, mean_before, var_before, bn.weight, bn.bias, training=False, eps=bn.eps)
    if torch.allclose(bn_out, by_batch, atol=1e-5):
        return "batch statistics"
    return "running statistics" if torch.allclose(bn_out, by_running, atol=1e-5) else "neither"


def _try_backward(model: nn.Module, output: torch.Tensor) -> dict:
    model.zero_grad(set_to_none=True)
    try:
        output.sum().backward()
    except RuntimeError as exc:
        return {"backward() works": False, "param grads filled": False, "backward error": first_line(exc)}
    filled = all(p.grad is not None for p in model.parameters())
    return {"backward() works": True, "param grads filled": filled, "backward error": ""}


def measure_mode(mode: str, seed: int = 0) -> dict:
    """Run the demo model twice on the same batch in `mode` and record what happened."""
    if mode not in INFERENCE_MODES:
        raise TensorOpsError(f"unknown mode {mode!r}; choose one of {', '.join(INFERENCE_MODES)}")
    training, context = INFERENCE_MODES[mode]
    model, x = build_demo_model(seed).train(training), demo_input(seed)
    bn = model[1]
    mean_before, var_before = bn.running_mean.clone(), bn.running_var.clone()
    seen = []  # the BatchNorm layer's input and output on each call
    hook = bn.register_forward_hook(lambda _, inputs, out: seen.append((inputs[0].detach(), out.detach())))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with context():
            first, second = model(x), model(x)
    hook.remove()
    return {"mode": mode, "two calls equal": torch.equal(first, second),
            "BatchNorm used": _batchnorm_statistics_used(bn, *seen[0], mean_before, var_before),
            "running_mean changed": not torch.equal(mean_before, bn.running_mean),
            "requires_grad": first.requires_grad,
            "grad_fn": "None" if first.grad_fn is None else type(first.grad_fn).__name__,
            **_try_backward(model, first)}


def inference_modes_table(seed: int = 0) -> pd.DataFrame:
    """One row per way of running the model (see INFERENCE_MODES), every fact measured."""
    return pd.DataFrame([measure_mode(mode, seed) for mode in INFERENCE_MODES])
