"""References inside configuration strings: ``${var.X}``, ``${env.name}``, ``${C.outputs.K}``, ...

Parsing is pure; ``render`` substitutes values through a lookup function, so the same
code serves planning (unknown outputs become ``(known after apply)``), applying, the
command backend (every value shell-quoted) and secrets (resolved only inside the task).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

PATTERN = re.compile(r"\$\{([^{}]*)\}")
_NAME = r"[A-Za-z0-9_][A-Za-z0-9_-]*"
_FORMS = (
    ("var", re.compile(rf"^var\.({_NAME})$")),
    ("env", re.compile(r"^env\.(name|cloud)$")),
    ("secret", re.compile(rf"^secret\.({_NAME})$")),
    ("output", re.compile(rf"^({_NAME})\.outputs\.({_NAME})$")),
)
KNOWN_AFTER_APPLY = "(known after apply)"


@dataclass(frozen=True)
class Ref:
    """One parsed reference."""

    kind: Literal["var", "env", "secret", "output"]
    name: str
    key: str | None = None

    @property
    def text(self) -> str:
        if self.kind == "output":
            return f"${{{self.name}.outputs.{self.key}}}"
        return f"${{{self.kind}.{self.name}}}"


class RefSyntaxError(ValueError):
    """A ``${...}`` that is none of the known forms."""


def parse(body: str) -> Ref:
    """Parse the inside of ``${...}``."""
    body = body.strip()
    for kind, form in _FORMS:
        match = form.match(body)
        if match:
            if kind == "output":
                return Ref("output", match.group(1), match.group(2))
            return Ref(kind, match.group(1))  # type: ignore[arg-type]
    raise RefSyntaxError(
        f"'${{{body}}}' is not a reference; use ${{var.NAME}}, ${{env.name}}, ${{env.cloud}}, "
        "${COMPONENT.outputs.KEY} or ${secret.NAME}"
    )


def walk(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every string inside a nested value, with its path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, (*path, index))


def find(value: Any) -> Iterator[tuple[tuple[str | int, ...], Ref | RefSyntaxError]]:
    """Every reference inside a nested value (syntax errors are yielded, not raised)."""
    for path, text in walk(value):
        for match in PATTERN.finditer(text):
            try:
                yield path, parse(match.group(1))
            except RefSyntaxError as exc:
                yield path, exc


def outputs_used(value: Any) -> set[str]:
    """The components whose outputs ``value`` references."""
    return {ref.name for _, ref in find(value) if isinstance(ref, Ref) and ref.kind == "output"}


Lookup = Callable[[Ref], Any]


def render(value: Any, lookup: Lookup, quote: Callable[[str], str] | None = None) -> Any:
    """Substitute every reference in ``value`` through ``lookup``.

    A string that is exactly one reference takes the looked-up value as it is (a list of
    subnet ids stays a list); inside a longer string a value is written as text, lists
    comma-joined, mappings as JSON, and passed through ``quote`` when given.
    """
    if isinstance(value, dict):
        return {key: render(item, lookup, quote) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, lookup, quote) for item in value]
    if not isinstance(value, str):
        return value
    whole = PATTERN.fullmatch(value)
    if whole and quote is None:
        return lookup(parse(whole.group(1)))

    def substitute(match: re.Match[str]) -> str:
        text = as_text(lookup(parse(match.group(1))))
        return quote(text) if quote else text

    return PATTERN.sub(substitute, value)


def as_text(value: Any) -> str:
    """A value as it appears inside a string."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(as_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return "" if value is None else str(value)
