"""The part of ARM's template expression language a cost estimate needs.

Pure. ``[parameters('x')]``, ``[variables('x')]``, ``[resourceGroup().location]``,
``concat``, ``format``, ``toLower``/``toUpper``, ``if``, ``equals``, ``not``, ``and``, ``or``,
``int``, ``string``, ``bool``, ``true()``/``false()``, ``empty``, ``length``, property access
and indexing. Every other function (``uniqueString``, ``reference``, ``resourceId``, ...) gives
an ``Unknown``; string functions over an unknown part keep a readable hint (``strata-aks-*``)
for display names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from strataflow.cost.model import Unknown

_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+)|(?P<name>[A-Za-z_][\w.]*)|(?P<p>[(),.\[\]]))")


class Scope:
    """What expressions of one template see: its parameters, variables and deployment target."""

    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, Any],
        *,
        location: str,
        resource_group: str,
        subscription: str,
    ) -> None:
        self.template = template
        declared = template.get("parameters") or {}
        folded = {k.casefold(): v for k, v in parameters.items()}
        self.params: dict[str, Any] = {}
        self._raw_params: dict[str, Any] = {}
        for name, spec in declared.items():
            given = folded.get(name.casefold(), (spec or {}).get("defaultValue") if isinstance(spec, dict) else None)
            self._raw_params[name.casefold()] = given
        self.variables = {k.casefold(): v for k, v in (template.get("variables") or {}).items()}
        self._done: dict[tuple[str, str], Any] = {}
        self.location, self.group, self.subscription = location, resource_group, subscription
        self.touched: set[str] = set()
        """Parameters read since ``reading()``: what a value depends on."""

    def reading(self) -> None:
        self.touched = set()

    def parameter(self, name: str) -> Any:
        key = name.casefold()
        if key not in self._raw_params:
            return Unknown(f"no parameter {name}")
        self.touched.add(next(n for n in (self.template.get("parameters") or {}) if n.casefold() == key))
        if ("p", key) not in self._done:
            self._done["p", key] = Unknown(f"parameter {name} refers to itself")
            self._done["p", key] = self.value(self._raw_params[key])
        return self._done["p", key]

    def variable(self, name: str) -> Any:
        key = name.casefold()
        if key not in self.variables:
            return Unknown(f"no variable {name}")
        if ("v", key) not in self._done:
            self._done["v", key] = Unknown(f"variable {name} refers to itself")
            self._done["v", key] = self.value(self.variables[key])
        return self._done["v", key]

    def value(self, node: Any) -> Any:
        """``node`` with every expression string in it evaluated."""
        if isinstance(node, str):
            if "(known after apply)" in node:
                return Unknown("known only after its upstream is applied")
            if node.startswith("[[") or not (node.startswith("[") and node.endswith("]")):
                return node[1:] if node.startswith("[[") else node
            try:
                return _Parser(node[1:-1], self).expression()
            except (ValueError, IndexError, KeyError, TypeError) as exc:
                return Unknown(f"cannot evaluate {node}: {exc}")
        if isinstance(node, list):
            return [self.value(item) for item in node]
        if isinstance(node, dict):
            return {k: self.value(v) for k, v in node.items()}
        return node


def _text(value: Any) -> str:
    if isinstance(value, Unknown):
        return value.hint
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _strings(why: str, build: Callable[[list[Any]], str]) -> Callable[[Scope, list[Any]], Any]:
    def function(scope: Scope, args: list[Any]) -> Any:
        del scope
        text = build(args)
        unknown = next((a for a in args if isinstance(a, Unknown)), None)
        return Unknown(f"{why} of {unknown.why}", text) if unknown else text

    return function


def _format(args: list[Any]) -> str:
    return re.sub(r"\{(\d+)(?::[^}]*)?\}", lambda m: _text(args[int(m.group(1)) + 1]), _text(args[0]))


def _logic(op: Callable[[list[bool]], Any]) -> Callable[[Scope, list[Any]], Any]:
    def function(scope: Scope, args: list[Any]) -> Any:
        del scope
        unknown = next((a for a in args if isinstance(a, Unknown)), None)
        return unknown if unknown is not None else op(args)

    return function


def _if(scope: Scope, args: list[Any]) -> Any:
    del scope
    return args[0] if isinstance(args[0], Unknown) else (args[1] if args[0] else args[2])


def _int(scope: Scope, args: list[Any]) -> Any:
    del scope
    return args[0] if isinstance(args[0], Unknown) else int(args[0])


FUNCTIONS: dict[str, Callable[[Scope, list[Any]], Any]] = {
    "parameters": lambda s, a: s.parameter(str(a[0])),
    "variables": lambda s, a: s.variable(str(a[0])),
    "resourcegroup": lambda s, a: {
        "location": s.location,
        "name": s.group,
        "id": f"/subscriptions/{s.subscription}/resourceGroups/{s.group}",
    },
    "subscription": lambda s, a: {"subscriptionId": s.subscription, "id": f"/subscriptions/{s.subscription}"},
    "concat": _strings("concat", lambda a: "".join(_text(x) for x in a)),
    "format": _strings("format", _format),
    "tolower": _strings("toLower", lambda a: _text(a[0]).lower()),
    "toupper": _strings("toUpper", lambda a: _text(a[0]).upper()),
    "string": _strings("string", lambda a: _text(a[0])),
    "if": _if,
    "equals": _logic(lambda a: a[0] == a[1]),
    "not": _logic(lambda a: not a[0]),
    "and": _logic(all),
    "or": _logic(any),
    "int": _int,
    "bool": _logic(lambda a: a[0] if isinstance(a[0], bool) else str(a[0]).lower() == "true"),
    "true": lambda s, a: True,
    "false": lambda s, a: False,
    "empty": _logic(lambda a: not a[0]),
    "length": lambda s, a: a[0] if isinstance(a[0], Unknown) else len(a[0]),
}


class _Parser:
    """A recursive-descent reader of one expression, evaluating as it goes."""

    def __init__(self, text: str, scope: Scope) -> None:
        self.scope = scope
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if not match or match.end() == pos:
                if text[pos:].strip() == "":
                    break
                raise ValueError(f"unexpected {text[pos]!r}")
            pos = match.end()
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
        self.i = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("end", "")

    def take(self, text: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if text is not None and token[1] != text:
            raise ValueError(f"expected {text!r}, got {token[1]!r}")
        self.i += 1
        return token

    def expression(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            value: Any = text[1:-1].replace("''", "'")
        elif kind == "num":
            value = int(text)
        elif kind == "name":
            value = self.call(text)
        else:
            raise ValueError(f"unexpected {text!r}")
        return self.accessors(value)

    def call(self, name: str) -> Any:
        self.take("(")
        args: list[Any] = []
        while self.peek()[1] != ")":
            args.append(self.expression())
            if self.peek()[1] == ",":
                self.take(",")
        self.take(")")
        function = FUNCTIONS.get(name.casefold())
        if function is None:
            return Unknown(f"{name}() is known only at deployment")
        return function(self.scope, args)

    def accessors(self, value: Any) -> Any:
        while self.peek()[1] in (".", "["):
            if self.take()[1] == ".":
                key: Any = self.take()[1]
            else:
                key = self.expression()
                self.take("]")
            if isinstance(value, Unknown):
                continue
            if isinstance(value, dict):
                folded = {str(k).casefold(): v for k, v in value.items()}
                value = folded.get(str(key).casefold(), Unknown(f"no property {key}"))
            elif isinstance(value, list) and isinstance(key, int):
                value = value[key]
            else:
                value = Unknown(f"cannot index {value!r} with {key!r}")
        return value


__all__ = ["FUNCTIONS", "Scope", "Unknown"]
