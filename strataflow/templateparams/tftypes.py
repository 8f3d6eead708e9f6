"""Terraform type constraints (``string``, ``list(number)``, ``map(object({a = string, b = optional(bool)}))``...).

``parse`` reads a constraint's source text into a ``TfType``; anything it cannot read is
``any`` (never an error: the check is loose by design). ``conform`` says why a value given
in ``strata.auto.tfvars.json`` would not convert to the type, the way Terraform converts:
a number or bool converts to a string, a numeric string to a number, ``"true"``/``"false"``
to a bool; lists need arrays, maps and objects need objects; an object's attributes that
are not ``optional(...)`` must be present (extra attributes are dropped, not an error).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from strataflow.templateparams.model import ParamType

NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|[A-Za-z_][\w-]*|[(){}\[\],=]|[^\s(){}\[\],=]+)')
_PRIMITIVE = {"string", "number", "bool", "any"}
_COLLECTION = {"list", "set", "map"}
_NORMAL: dict[str, ParamType] = {
    "string": "string",
    "number": "number",
    "bool": "bool",
    "any": "any",
    "list": "list",
    "set": "list",
    "tuple": "list",
    "map": "object",
    "object": "object",
}


@dataclass(frozen=True)
class TfType:
    """One type constraint: a primitive, a collection of ``element``, a ``tuple`` of ``items`` or an ``object``."""

    kind: str
    element: TfType | None = None
    items: tuple[TfType, ...] = ()
    attributes: Mapping[str, TfType] = field(default_factory=dict)
    optional: frozenset[str] = frozenset()

    @property
    def normalized(self) -> ParamType:
        return _NORMAL.get(self.kind, "any")


ANY = TfType("any")


class _Unreadable(ValueError):
    pass


class _Parser:
    def __init__(self, text: str) -> None:
        self.lexemes = [m.group(1) for m in _TOKEN.finditer(text)]
        self.i = 0

    def peek(self) -> str:
        return self.lexemes[self.i] if self.i < len(self.lexemes) else ""

    def take(self, expected: str | None = None) -> str:
        lexeme = self.peek()
        if not lexeme or (expected is not None and lexeme != expected):
            raise _Unreadable(lexeme)
        self.i += 1
        return lexeme

    def skip_to_close(self) -> None:
        """Skip an expression (an optional() default) up to, not including, the ``)`` that closes the call."""
        depth = 0
        while (lexeme := self.peek()) and not (depth == 0 and lexeme == ")"):
            depth += lexeme in "([{"
            depth -= lexeme in ")]}"
            self.i += 1

    def type(self) -> TfType:
        name = self.take().strip('"')
        if name in _PRIMITIVE:
            return TfType(name)
        if name in _COLLECTION:
            if self.peek() != "(":
                return TfType(name, ANY)  # Terraform 0.11's "list" and "map"
            self.take("(")
            element = self.type()
            self.take(")")
            return TfType(name, element)
        if name == "tuple":
            self.take("(")
            self.take("[")
            items = []
            while self.peek() != "]":
                items.append(self.type())
                if self.peek() == ",":
                    self.take()
            self.take("]")
            self.take(")")
            return TfType("tuple", items=tuple(items))
        if name == "object":
            return self.object()
        raise _Unreadable(name)

    def object(self) -> TfType:
        self.take("(")
        self.take("{")
        attributes: dict[str, TfType] = {}
        optional: set[str] = set()
        while self.peek() != "}":
            key = self.take().strip('"')
            self.take("=")
            if self.peek() == "optional":
                self.take()
                self.take("(")
                attributes[key] = self.type()
                optional.add(key)
                self.skip_to_close()
                self.take(")")
            else:
                attributes[key] = self.type()
            if self.peek() == ",":
                self.take()
        self.take("}")
        self.take(")")
        return TfType("object", attributes=attributes, optional=frozenset(optional))


def parse(text: str | None) -> TfType:
    """The constraint in ``text`` (``${...}`` wrapping allowed); ``any`` when absent or unreadable."""
    if text is None:
        return ANY
    text = text.strip()
    if text.startswith("${") and text.endswith("}"):
        text = text[2:-1]
    parser = _Parser(text)
    try:
        result = parser.type()
    except _Unreadable:
        return ANY
    return result if parser.i == len(parser.lexemes) else ANY


def _at(path: str) -> str:
    return f" at {path}" if path else ""


def conform(value: Any, constraint: TfType, path: str = "") -> str | None:
    """Why ``value`` does not convert to ``constraint`` (Terraform's words), or None when it does."""
    kind = constraint.kind
    if value is None or kind == "any":
        return None
    if kind == "string":
        ok = isinstance(value, (str, int, float))
        return None if ok else f"a string is required{_at(path)}"
    if kind == "number":
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)) or (
            isinstance(value, str) and NUMBER.match(value.strip()) is not None
        )
        return None if ok else f"a number is required{_at(path)}"
    if kind == "bool":
        ok = isinstance(value, bool) or (isinstance(value, str) and value in {"true", "false", "1", "0"})
        return None if ok else f"a bool is required{_at(path)}"
    if kind in {"list", "set", "tuple"}:
        if not isinstance(value, (list, tuple)):
            return f"a {'tuple' if kind == 'tuple' else kind} is required{_at(path)}"
        if kind == "tuple":
            if len(value) != len(constraint.items):
                return f"a tuple of {len(constraint.items)} elements is required{_at(path)}"
            pairs = list(zip(value, constraint.items, strict=True))
        else:
            pairs = [(item, constraint.element or ANY) for item in value]
        for index, (item, item_type) in enumerate(pairs):
            if (problem := conform(item, item_type, f"{path}[{index}]")) is not None:
                return problem
        return None
    if not isinstance(value, Mapping):
        return f"{'an object' if kind == 'object' else 'a map'} is required{_at(path)}"
    if kind == "map":
        for key, item in value.items():
            if (problem := conform(item, constraint.element or ANY, f"{path}[{key!r}]")) is not None:
                return problem
        return None
    for key, attribute in constraint.attributes.items():
        if key not in value:
            if key not in constraint.optional:
                return f'attribute "{key}" is required{_at(path)}'
            continue
        if (problem := conform(value[key], attribute, f"{path}.{key}")) is not None:
            return problem
    return None
