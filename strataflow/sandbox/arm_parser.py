"""The ARM template expression syntax: ``"[fn(arg, ...).property[index]]"``.

A JSON string that starts with ``[`` and ends with ``]`` is an expression; ``[[`` escapes a
literal ``[``. Arguments are string literals (``'it''s'``), integers, nested calls, and
property (``.name``) or index (``[expr]``) access on any value. User-defined functions are
called as ``namespace.member(...)``. ``parse`` builds the tree (cached); ``unparse`` turns a
tree back into expression text; ``calls`` lists the calls in a tree. Function names are
checked against the library by ``arm_eval.check``, not here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from strataflow.sandbox.arm_values import HELP, ExpressionError


@dataclass(frozen=True)
class Lit:
    """A literal string or integer."""

    value: Any


@dataclass(frozen=True)
class Call:
    """A function call; ``name`` is lower case (``ns.member`` for a user-defined function)."""

    name: str
    args: tuple[Node, ...]
    spelled: str = ""
    """The name as the template spells it (for messages)."""


@dataclass(frozen=True)
class Member:
    """``target.key`` (``key`` a string literal) or ``target[key]``."""

    target: Node
    key: Node
    dotted: bool = True


Node = Lit | Call | Member

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<name>[A-Za-z_$][A-Za-z0-9_$]*)|(?P<op>[(),.\[\]]))"
)


def is_expression(text: str) -> bool:
    """Whether a JSON string is a template expression (``[...]`` but not ``[[...``)."""
    return len(text) >= 2 and text[0] == "[" and text[-1] == "]" and not text.startswith("[[")


def _invalid(text: str, detail: str) -> ExpressionError:
    return ExpressionError(f"The template language expression '{text}' is not valid: {detail} {HELP}")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            match = _TOKEN.match(text, pos)
            if not match:
                if text[pos:].lstrip().startswith("'"):
                    raise _invalid(text, "the string literal is not terminated.")
                raise _invalid(text, f"the character '{text[pos:].lstrip()[:1]}' is not expected.")
            category = match.lastgroup or "op"
            self.tokens.append((category, match.group(category)))
            pos = match.end()
        self.pos = 0

    def peek(self, ahead: int = 0) -> tuple[str, str] | None:
        at = self.pos + ahead
        return self.tokens[at] if at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (expected is not None and token[1] != expected):
            found = "the end of the expression" if token is None else f"'{token[1]}'"
            raise _invalid(self.text, f"expected '{expected or 'a value'}' but found {found}.")
        self.pos += 1
        return token

    def expression(self) -> Node:
        category, token = self.take()
        node: Node
        if category == "str":
            node = Lit(token[1:-1].replace("''", "'"))
        elif category == "num":
            if "." in token:
                raise _invalid(self.text, f"the number '{token}' is not an integer; use json('{token}').")
            node = Lit(int(token))
        elif category == "name":
            name = token
            if self.peek() == ("op", ".") and self.peek(1) is not None and self.peek(1)[0] == "name":  # type: ignore[index]
                self.take(".")
                name = f"{token}.{self.take()[1]}"
            if self.peek() != ("op", "("):
                raise _invalid(self.text, f"the name '{name}' must be followed by '(': values are function calls.")
            self.take("(")
            args: list[Node] = []
            if self.peek() != ("op", ")"):
                args.append(self.expression())
                while self.peek() == ("op", ","):
                    self.take(",")
                    args.append(self.expression())
            self.take(")")
            node = Call(name.lower(), tuple(args), name)
        else:
            raise _invalid(self.text, f"the token '{token}' is not expected here.")
        while self.peek() in (("op", "."), ("op", "[")):
            _, op = self.take()
            if op == ".":
                key_category, key = self.take()
                if key_category != "name":
                    raise _invalid(self.text, f"a property name is expected after '.', found '{key}'.")
                node = Member(node, Lit(key))
            else:
                node = Member(node, self.expression(), dotted=False)
                self.take("]")
        return node


@functools.lru_cache(maxsize=50_000)
def parse(text: str) -> Node:
    """Parse an expression string, brackets included (cached)."""
    parser = _Parser(text[1:-1])
    if not parser.tokens:
        raise _invalid(text, "the expression is empty.")
    node = parser.expression()
    extra = parser.peek()
    if extra is not None:
        raise _invalid(text, f"the token '{extra[1]}' is not expected after the end of the expression.")
    return node


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def unparse(node: Node) -> str:
    """The expression text of ``node`` (without the surrounding brackets)."""
    if isinstance(node, Lit):
        return _quote(node.value) if isinstance(node.value, str) else str(node.value)
    if isinstance(node, Member):
        if node.dotted and isinstance(node.key, Lit):
            return f"{unparse(node.target)}.{node.key.value}"
        return f"{unparse(node.target)}[{unparse(node.key)}]"
    return f"{node.spelled or node.name}({', '.join(unparse(a) for a in node.args)})"


def walk(node: Node) -> Iterator[Node]:
    """Every node of a tree, parents first."""
    yield node
    if isinstance(node, Call):
        for arg in node.args:
            yield from walk(arg)
    elif isinstance(node, Member):
        yield from walk(node.target)
        yield from walk(node.key)


def calls(value: Any) -> Iterator[Call]:
    """Every function call in the expressions of a JSON value (keys included)."""
    if isinstance(value, str):
        if is_expression(value):
            for node in walk(parse(value)):
                if isinstance(node, Call):
                    yield node
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from calls(key)
            yield from calls(item)
    elif isinstance(value, list):
        for item in value:
            yield from calls(item)
