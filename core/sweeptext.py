"""Sweep config text: YAML or JSON read safely, and user values shown briefly in messages.

    data = parse_text(text)                   # Python data; SweepConfigError (one line) if unusable
    data = parse_text(read_text(path), where=str(path))
    show(value)                               # a repr for a message, at most MAX_SHOWN_CHARS long

Text over MAX_TEXT_CHARS, nesting deeper than MAX_DEPTH and YAML aliases (`*name`, which let a few
lines stand for billions of values) are refused before anything is built from them. YAML 1.1
(PyYAML) reads `1e-4` as a string; here it is the float 1e-4, as in JSON and YAML 1.2.
"""

from __future__ import annotations

import itertools
import json
import re
import reprlib
from pathlib import Path
from typing import Any

import yaml

from core.errors import first_line

MAX_TEXT_CHARS = 100_000     # a sweep config is a page of YAML; longer text is refused unread
MAX_DEPTH = 50               # nesting levels of lists and mappings a sweep config may use
MAX_SHOWN_CHARS = 80         # user values in error messages are cut to this length


class SweepConfigError(ValueError):
    """A sweep config cannot be used; the message is one line naming the key and the fix."""


_REPR = reprlib.Repr()              # stops after a few items and levels, however big the value
_REPR.maxstring = _REPR.maxother = MAX_SHOWN_CHARS


def clip(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """`text` cut to `limit` characters, ending in '...' when cut."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def show(value: Any) -> str:
    """A user value for an error message: its repr, without walking a huge structure, at most 80 chars."""
    return clip(_REPR.repr(value))


def fail(where: str, message: str) -> SweepConfigError:
    return SweepConfigError(f"{where}: {message}" if where else message)


class _AliasRefused(yaml.composer.ComposerError):
    """An alias (`*name`) in a sweep config."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-4` (no dot) as a float, as YAML 1.2 and JSON do, and refuses
    aliases: a few lines of `&a [*b, *b, ...]` can stand for billions of values ("billion laughs")."""

    depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _AliasRefused(None, None, f"YAML aliases (*{clip(event.anchor, 20)}) are not allowed in a sweep "
                                            "config; write the value out", event.start_mark)
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH + 1:                 # the document itself is one level
                raise RecursionError
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def _yaml_problem(where: str, exc: yaml.YAMLError) -> SweepConfigError:
    mark = getattr(exc, "problem_mark", None)
    at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or first_line(exc)
    if isinstance(exc, _AliasRefused):
        return fail("", f"{where}{at}: {problem}")
    return fail("", f"{where} is not valid YAML or JSON{at}: {problem}")


def parse_text(text: str, where: str = "sweep config") -> Any:
    """A YAML or JSON document as Python data; errors are one line. Text over MAX_TEXT_CHARS and YAML
    aliases are refused before anything is built from them."""
    if len(text) > MAX_TEXT_CHARS:
        raise fail("", f"{where} is longer than {MAX_TEXT_CHARS:,} characters; a sweep config is a short "
                        "YAML or JSON document")
    if bracket_depth(text) > MAX_DEPTH:          # PyYAML's time grows with the square of this depth
        raise _deep(where)
    try:
        if text.lstrip().startswith("{"):
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                pass                              # a YAML flow mapping; let YAML read it
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise _yaml_problem(where, exc) from None
    except RecursionError:
        raise _deep(where) from None


def bracket_depth(text: str) -> int:
    """How deeply `[` and `{` nest in `text` (quotes are not looked at: an upper bound for YAML and JSON)."""
    steps = [1 if c in "[{" else -1 for c in text if c in "[]{}"]
    return max(itertools.accumulate(steps), default=0)


def _deep(where: str) -> SweepConfigError:
    return fail("", f"{where} nests lists or mappings more than {MAX_DEPTH} levels deep; a sweep config "
                     "needs a few")


def read_text(path: Path) -> str:
    """A config file's text, reading at most one character past MAX_TEXT_CHARS (parse_text refuses it)."""
    try:
        with path.open(encoding="utf-8") as file:
            return file.read(MAX_TEXT_CHARS + 1)
    except UnicodeDecodeError:
        raise fail("", f"{path} is not a UTF-8 text file; give a YAML or JSON sweep config") from None
