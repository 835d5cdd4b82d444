"""The Runs page's filter: a safe subset of pandas-query syntax, evaluated over a runs frame.

    shown = filter_frame(frame, 'dataset == "moons" and best_val_acc > 0.8')   # FilterError if bad

Nothing typed is ever executed: the text is parsed with `ast`, every node is checked against the
allowed subset (FILTER_HELP), and the evaluator applies the operators itself over the frame's columns.
"""

from __future__ import annotations

import ast
import io
import operator
import re
import tokenize
from typing import Iterable

import pandas as pd

from core.errors import first_line

QUERY_EXAMPLE = 'dataset == "moons" and best_val_acc > 0.8'


class FilterError(ValueError):
    """A filter typed on the Runs page cannot be used; the message is one line."""


def filter_frame(frame: pd.DataFrame, query: str) -> pd.DataFrame:
    """The rows matching a filter in the safe subset of `df.query` syntax that `parse_filter` accepts; an
    empty query keeps every row. Nothing typed is ever executed: the text is parsed, checked node by node
    and evaluated here over the frame's columns."""
    text = (query or "").strip()
    if not text:
        return frame
    if len(text) > MAX_QUERY_CHARS:
        raise FilterError(f"the filter is {len(text)} characters long; at most {MAX_QUERY_CHARS} are allowed")
    try:
        tree, names = parse_filter(text, frame.columns)
        mask = _Evaluator(frame, names).value(tree.body)
    except FilterError as exc:
        raise FilterError(f"Cannot filter by {_short(text)}: {exc}. Quote text and compare columns, e.g. "
                           f"{QUERY_EXAMPLE}") from None
    except (TypeError, ValueError, ArithmeticError, AttributeError) as exc:  # e.g. text compared with a number
        raise FilterError(f"Cannot filter by {_short(text)}: {_first_line(exc)}. Quote text and compare "
                           f"columns, e.g. {QUERY_EXAMPLE}") from None
    if not isinstance(mask, pd.Series) or not (pd.api.types.is_bool_dtype(mask) or mask.isna().all()):
        raise FilterError(f"{_short(text)} is not a condition: write one that is true or false per row, "
                           f"e.g. {QUERY_EXAMPLE}")
    return frame[mask.astype("boolean").fillna(False).astype(bool)]


MAX_QUERY_CHARS = 1000
FILTER_HELP = ("Comparisons of columns with values (`lr < 0.01`, `dataset == \"moons\"`, `1 < seed <= 3`), joined "
               "by and / or / not (or & | ~); `dataset in [\"moons\", \"xor\"]`, `\"baseline\" in tags`; "
               "`width.isna()`, `seed.between(1, 3)`, `name.str.contains(\"mlp\")`; a column with spaces in "
               "\\`backticks\\`. The filter is parsed, never executed.")
FILTER_METHODS = {"isna": 0, "notna": 0, "isnull": 0, "notnull": 0, "between": 2, "isin": 1}
FILTER_STR_METHODS = {"contains": 1, "startswith": 1, "endswith": 1, "lower": 0, "upper": 0, "strip": 0,
                      "len": 0}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge}
_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
               ast.Mod: operator.mod, ast.Pow: operator.pow, ast.FloorDiv: operator.floordiv}
_BACKTICKED = re.compile(r"`([^`]*)`")


def parse_filter(text: str, columns: Iterable[str]) -> tuple[ast.Expression, dict[str, str]]:
    """The checked syntax tree of a filter and its identifier -> column map. Allowed: column names (a
    name with spaces in `backticks`), numbers, quoted text, True/False/None, lists of those; comparisons
    (chained too), `in` / `not in`, and/or/not (or & | ~), + - * / % ** //, and the methods
    col.isna() notna() between(a, b) isin([..]) and col.str.contains/startswith/endswith/lower/upper/strip/len.
    Anything else (attributes, calls, subscripts, lambdas, @variables, dunder names) raises FilterError."""
    columns = [str(column) for column in columns]
    names: dict[str, str] = {}

    def quoted(match: re.Match) -> str:
        column = match.group(1)
        if column not in columns:
            raise FilterError(f"no column {column!r}")
        identifier = f"_column_{len(names)}"
        names[identifier] = column
        return identifier

    source = _BACKTICKED.sub(quoted, text)
    try:
        tree = ast.parse(_words_for_bit_operators(source), mode="eval")
    except SyntaxError as exc:
        raise FilterError(f"invalid syntax ({exc.msg})") from None
    for column in columns:
        if column.isidentifier():
            names.setdefault(column, column)
    for node in ast.walk(tree):
        _check_node(node, names)
    return tree, names


def _words_for_bit_operators(source: str) -> str:
    """`&` and `|` as `and` and `or`, as pandas' query reads them (so `a > 1 & b < 2` needs no brackets)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, IndentationError):
        return source                                          # ast.parse reports the syntax error
    line_starts = [0]
    for line in source.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    words = {"&": " and ", "|": " or "}
    for token in reversed(tokens):
        if token.type == tokenize.OP and token.string in words:
            at = line_starts[token.start[0] - 1] + token.start[1]
            source = source[:at] + words[token.string] + source[at + 1:]
    return source


def _check_node(node: ast.AST, names: dict[str, str]) -> None:
    allowed = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd, ast.Invert,
               ast.Compare, ast.In, ast.NotIn, ast.BinOp, ast.BitAnd, ast.BitOr, ast.Constant, ast.List,
               ast.Tuple, ast.Load, ast.Name, ast.Call, ast.Attribute, *_COMPARE, *_ARITHMETIC)
    if not isinstance(node, allowed):
        raise FilterError(f"{type(node).__name__.lower()} expressions are not allowed in a filter")
    if isinstance(node, ast.Name) and node.id not in names and node.id not in ("True", "False", "None"):
        raise FilterError(f"name {node.id!r} is not defined (columns: {', '.join(sorted(set(names.values())))})")
    if isinstance(node, ast.Constant) and not isinstance(node.value, (str, int, float, bool, type(None))):
        raise FilterError("only numbers, quoted text, True, False and None are allowed as values")
    if isinstance(node, ast.Attribute) and not (
            node.attr == "str" and isinstance(node.value, ast.Name)
            or node.attr in FILTER_STR_METHODS and _is_str_accessor(node.value)
            or node.attr in FILTER_METHODS and isinstance(node.value, ast.Name)):
        raise FilterError(f"'.{node.attr}' is not available; use one of: "
                           f"{', '.join(sorted(FILTER_METHODS))}, str.{', str.'.join(sorted(FILTER_STR_METHODS))}")
    if isinstance(node, ast.Call):
        method = node.func.attr if isinstance(node.func, ast.Attribute) else None
        arity = FILTER_STR_METHODS.get(method) if isinstance(node.func, ast.Attribute) and _is_str_accessor(
            node.func.value) else FILTER_METHODS.get(method)
        if arity is None or node.keywords or len(node.args) != arity:
            raise FilterError("only column methods can be called: col.isna(), col.between(a, b), "
                               "col.isin([..]), col.str.contains('text') and the like")
        if any(not isinstance(arg, (ast.Constant, ast.List, ast.Tuple, ast.UnaryOp)) for arg in node.args):
            raise FilterError("method arguments must be values, e.g. name.str.contains('mlp')")


def _is_str_accessor(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "str" and isinstance(node.value, ast.Name)


class _Evaluator:
    """Evaluates a tree that parse_filter checked, over a frame's columns."""

    def __init__(self, frame: pd.DataFrame, names: dict[str, str]):
        self.frame, self.names = frame, names

    def value(self, node: ast.AST):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in ("True", "False", "None"):
                return {"True": True, "False": False, "None": None}[node.id]
            return self.frame[self.names[node.id]]
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.value(item) for item in node.elts]
        if isinstance(node, ast.BoolOp):
            values = [self._condition(self.value(item)) for item in node.values]
            combine = operator.and_ if isinstance(node.op, ast.And) else operator.or_
            result = values[0]
            for item in values[1:]:
                result = combine(result, item)
            return result
        if isinstance(node, ast.UnaryOp):
            operand = self.value(node.operand)
            if isinstance(node.op, (ast.Not, ast.Invert)):
                return ~self._condition(operand) if isinstance(operand, pd.Series) else not operand
            return -operand if isinstance(node.op, ast.USub) else +operand
        if isinstance(node, ast.BinOp):
            left, right = self.value(node.left), self.value(node.right)
            if isinstance(node.op, (ast.BitAnd, ast.BitOr)):
                combine = operator.and_ if isinstance(node.op, ast.BitAnd) else operator.or_
                return combine(self._condition(left), self._condition(right))
            return _ARITHMETIC[type(node.op)](left, right)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise FilterError(f"{type(node).__name__.lower()} expressions are not allowed in a filter")

    def _compare(self, node: ast.Compare):
        result, left = None, self.value(node.left)
        for op, right_node in zip(node.ops, node.comparators):
            right = self.value(right_node)
            if isinstance(op, (ast.In, ast.NotIn)):
                part = self._membership(left, right)
                part = ~part if isinstance(op, ast.NotIn) else part
            else:
                part = _COMPARE[type(op)](left, right)
            result = part if result is None else self._condition(result) & self._condition(part)
            left = right
        return result

    def _membership(self, left, right) -> pd.Series:
        if isinstance(left, pd.Series) and isinstance(right, list):
            return left.isin(right)
        if isinstance(left, pd.Series) and not isinstance(right, pd.Series):
            return left.isin([right])
        if isinstance(right, pd.Series) and isinstance(left, str):       # "tag" in tags: text inside a column
            return right.astype("string").str.contains(left, regex=False)
        raise FilterError("'in' needs a column and a list, e.g. dataset in ['moons', 'xor']")

    def _call(self, node: ast.Call):
        args = [self.value(arg) for arg in node.args]
        if _is_str_accessor(node.func.value):
            column = self.value(node.func.value.value).astype("string")
            if node.func.attr == "contains":
                return column.str.contains(str(args[0]), regex=False)
            return getattr(column.str, node.func.attr)(*args)
        column = self.value(node.func.value)
        if node.func.attr == "isin":
            return column.isin(args[0] if isinstance(args[0], list) else [args[0]])
        return getattr(column, node.func.attr)(*args)

    @staticmethod
    def _condition(value):
        if isinstance(value, pd.Series):
            if not (pd.api.types.is_bool_dtype(value) or value.isna().all()):
                raise FilterError("and/or/not join conditions, not values")
            return value.astype("boolean")
        return value


def _short(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _first_line(exc: Exception) -> str:
    """One line of `exc`, without the quotes a KeyError puts around its message."""
    return first_line(exc).strip("'\"").rstrip(".")
