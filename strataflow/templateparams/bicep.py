"""The ``param`` declarations of a Bicep file, read by a line parser (no Bicep CLI).

The file is split into top-level statements (a newline ends one unless it is inside
brackets or a string; a line starting ``?``, ``:``, ``.``, ``|`` or ``&&`` continues the
statement before it: a multi-line ternary or union type).
Decorator statements (``@allowed([...])``, ``@minLength(n)``, ``@maxLength(n)``,
``@minValue(n)``, ``@maxValue(n)``, ``@secure()``, ``@description('...')``, also spelt
``@sys.description``) apply to the next ``param``. ``param name type [= default]``:
``string``/``int``/``bool``/``object``/``array``, ``T[]`` (list), ``{...}`` (object), a
union of literals ``'a' | 'b'`` (allowed values), a trailing ``?`` (nullable: optional);
user-defined and resource-derived types are ``any``. A default that is a literal
(string, number, bool, null, array, object) is kept as its value, any other as its text.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from strataflow.templateparams import jsonpos
from strataflow.templateparams.jsonpos import Lines
from strataflow.templateparams.model import Declared, ParamType, TemplateParameters

_NOISE = re.compile(r"'|//|/\*")
_STRUCTURE = re.compile(r"['{}\[\]()\n]")
_DECORATOR = re.compile(r"@\s*(?:sys\.)?([A-Za-z_][\w.]*)\s*")
_PARAM = re.compile(r"param\s+([A-Za-z_]\w*)\b")
_CONTINUES = ("?", ":", ".", "|", "&&")
_SIMPLE: dict[str, ParamType] = {"string": "string", "int": "int", "bool": "bool", "object": "object", "array": "list"}
_ESCAPES = {"\\": "\\", "'": "'", "n": "\n", "r": "\r", "t": "\t", "$": "$"}


def _skip_string(text: str, i: int) -> int:
    """The index just after the string starting at ``text[i] == "'"`` (interpolations may nest strings)."""
    if text.startswith("'''", i):
        end = text.find("'''", i + 3)
        return len(text) if end < 0 else end + 3
    i += 1
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
        elif char == "'":
            return i + 1
        elif char == "\n":
            return i
        elif text.startswith("${", i):
            i = _skip_group(text, i + 2)
        else:
            i += 1
    return i


def _skip_group(text: str, i: int) -> int:
    """The index just after the bracket closing the group whose content starts at ``i``."""
    depth = 0
    while i < len(text):
        char = text[i]
        if char == "'":
            i = _skip_string(text, i)
            continue
        if char in "{[(":
            depth += 1
        elif char in "}])":
            if depth == 0:
                return i + 1
            depth -= 1
        i += 1
    return i


def _blank_comments(text: str) -> str:
    """``text`` with every comment replaced by spaces (line breaks kept, so offsets stay valid)."""
    parts: list[str] = []
    i = 0
    while (match := _NOISE.search(text, i)) is not None:
        start = match.start()
        if match.group() == "'":
            end = _skip_string(text, start)
            parts.append(text[i:end])
        else:
            if match.group() == "//":
                end = text.find("\n", start)
                end = len(text) if end < 0 else end
            else:
                end = text.find("*/", start + 2)
                end = len(text) if end < 0 else end + 2
            parts.append(text[i:start])
            parts.append(re.sub(r"[^\n]", " ", text[start:end]))
        i = end
    parts.append(text[i:])
    return "".join(parts)


def _statements(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of each top-level statement in comment-free ``text``."""
    spans: list[tuple[int, int]] = []
    depth, start, i = 0, 0, 0
    while (match := _STRUCTURE.search(text, i)) is not None:
        char, i = match.group(), match.end()
        if char == "'":
            i = _skip_string(text, match.start())
        elif char in "{[(":
            depth += 1
        elif char in "}])":
            depth = max(depth - 1, 0)
        elif depth == 0:
            spans.append((start, match.start()))
            start = i
    spans.append((start, len(text)))
    merged: list[tuple[int, int]] = []
    for begin, end in spans:
        if not text[begin:end].strip():
            continue
        if merged and text[begin:end].lstrip().startswith(_CONTINUES):
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((begin, end))
    return merged


class NotLiteral(ValueError):
    """The text is an expression, not a literal value."""


class _Literal:
    """A Bicep literal: string, integer, true/false/null, array or object of literals."""

    def __init__(self, text: str) -> None:
        self.text, self.i = text, 0

    def parse(self) -> Any:
        self.space(True)
        value = self.value()
        self.space(True)
        if self.i != len(self.text):
            raise NotLiteral(self.text)
        return value

    def space(self, lines: bool, commas: bool = False) -> None:
        skip = " \t\r" + ("\n" if lines else "") + ("," if commas else "")
        while self.i < len(self.text) and self.text[self.i] in skip:
            self.i += 1

    def closes(self, close: str) -> bool:
        """Skip separators; consume ``close`` if it is next (NotLiteral at the end of the text)."""
        self.space(True, True)
        if self.i >= len(self.text):
            raise NotLiteral(self.text)
        if self.text.startswith(close, self.i):
            self.i += 1
            return True
        return False

    def value(self) -> Any:
        text, i = self.text, self.i
        if text.startswith("'", i):
            return self.string()
        if text.startswith("[", i):
            self.i += 1
            items: list[Any] = []
            while not self.closes("]"):
                items.append(self.value())
            return items
        if text.startswith("{", i):
            self.i += 1
            result: dict[str, Any] = {}
            while not self.closes("}"):
                key = self.string() if text.startswith("'", self.i) else self.word(r"[A-Za-z_]\w*")
                self.space(False)
                if not text.startswith(":", self.i):
                    raise NotLiteral(text)
                self.i += 1
                self.space(False)
                result[key] = self.value()
            return result
        word = self.word(r"-?\d+|true|false|null")
        return {"true": True, "false": False, "null": None}[word] if word[-1].isalpha() else int(word)

    def word(self, pattern: str) -> str:
        match = re.compile(rf"(?:{pattern})(?![\w.(])").match(self.text, self.i)
        if match is None:
            raise NotLiteral(self.text)
        self.i = match.end()
        return match.group()

    def string(self) -> str:
        text, i = self.text, self.i
        if text.startswith("'''", i):
            end = text.find("'''", i + 3)
            if end < 0:
                raise NotLiteral(text)
            self.i = end + 3
            return text[i + 3 : end].removeprefix("\r").removeprefix("\n")
        out: list[str] = []
        i += 1
        while i < len(text) and text[i] != "'":
            if text.startswith("${", i):
                raise NotLiteral(text)
            if text[i] == "\\" and i + 1 < len(text):
                code = text[i + 1]
                if code == "u" and (match := re.match(r"u\{([0-9A-Fa-f]+)\}", text[i + 1 :])):
                    out.append(chr(int(match.group(1), 16)))
                    i += 1 + match.end()
                    continue
                out.append(_ESCAPES.get(code, code))
                i += 2
                continue
            out.append(text[i])
            i += 1
        if i >= len(text):
            raise NotLiteral(text)
        self.i = i + 1
        return "".join(out)


def literal(text: str) -> Any:
    """The value of a Bicep literal; NotLiteral for any expression."""
    return _Literal(text).parse()


def _split_top(text: str, sep: str) -> list[str]:
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        char = text[i]
        if char == "'":
            i = _skip_string(text, i)
            continue
        if char in "{[(":
            depth += 1
        elif char in "}])":
            depth -= 1
        elif char == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    return [*parts, text[start:]]


def _assignment(text: str) -> int:
    """Index of the top-level ``=`` that starts a default, or -1."""
    depth, i = 0, 0
    while i < len(text):
        char = text[i]
        if char == "'":
            i = _skip_string(text, i)
            continue
        if char in "{[(<":
            depth += 1
        elif char in "}])>":
            depth -= 1
        elif char == "=" and depth == 0 and text[i + 1 : i + 2] not in {"=", ">"}:
            return i
        i += 1
    return -1


def bicep_type(text: str) -> tuple[ParamType, bool, tuple[Any, ...] | None]:
    """(normalized type, nullable, allowed values of a literal union) of a Bicep type expression."""
    text = text.strip()
    nullable = text.endswith("?")
    text = text.removesuffix("?").strip().removeprefix("|").strip()  # a multi-line union may start with '|'
    while text.startswith("(") and text.endswith(")") and _skip_group(text, 1) == len(text):
        text = text[1:-1].strip()
    if text.endswith("[]"):
        return "list", nullable, None
    if text.startswith("{"):
        return "object", nullable, None
    if text in _SIMPLE:
        return _SIMPLE[text], nullable, None
    try:
        values = [literal(part) for part in _split_top(text, "|")]
    except NotLiteral:
        return "any", nullable, None
    if None in values:
        nullable = True
        values = [v for v in values if v is not None]
    kinds = {type(v) for v in values}
    literal_types: dict[type, ParamType] = {str: "string", int: "int", bool: "bool"}
    kind = literal_types.get(kinds.pop(), "any") if len(kinds) == 1 else "any"
    return kind, nullable, tuple(values)


def _decorators(text: str, start: int) -> tuple[list[tuple[str, str]], int]:
    """The decorators at the start of a statement and where the rest begins."""
    found: list[tuple[str, str]] = []
    i = start
    while (match := _DECORATOR.match(text, i)) is not None:
        i = match.end()
        args = ""
        if text.startswith("(", i):
            close = _skip_group(text, i + 1)
            args, i = text[i + 1 : close - 1], close
        found.append((match.group(1), args))
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
    return found, i


def _apply(decorators: list[tuple[str, str]]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    keys = {"minLength": "min_length", "maxLength": "max_length", "minValue": "min_value", "maxValue": "max_value"}
    for name, args in decorators:
        try:
            value = literal(args) if args.strip() else None
        except NotLiteral:
            continue
        if name == "secure":
            fields["secure"] = True
        elif name == "description" and isinstance(value, str):
            fields["description"] = value
        elif name == "allowed" and isinstance(value, list):
            fields["allowed"] = tuple(value)
        elif name in keys and isinstance(value, int) and not isinstance(value, bool):
            fields[keys[name]] = value
    return fields


def _param(match: re.Match[str], decorators: list[tuple[str, str]], path: Path, at: tuple[int, int]) -> Declared:
    """The declaration of ``param <name> <rest of the statement>`` with the decorators before it."""
    tail = match.string[match.end() :]
    split = _assignment(tail)
    type_text, default_text = (tail, None) if split < 0 else (tail[:split], tail[split + 1 :].strip())
    kind, nullable, union = bicep_type(type_text)
    fields = _apply(decorators)
    if union is not None and "allowed" not in fields:
        fields["allowed"] = union
    if fields.get("secure") and kind in {"string", "object"}:
        kind = "secure-string" if kind == "string" else "secure-object"
    default: Any = None
    if default_text is not None:
        try:
            default = literal(default_text)
        except NotLiteral:
            default = " ".join(default_text.split())
    return Declared(
        name=match.group(1),
        type=kind,
        raw_type=" ".join(type_text.split()),
        required=default_text is None and not nullable,
        file=path,
        line=at[0],
        column=at[1],
        default=default,
        nullable=nullable,
        **fields,
    )


def read_bicep(path: Path) -> TemplateParameters:
    """The ``param`` declarations of the Bicep file at ``path`` (returned as ARM parameters)."""
    text = _blank_comments(jsonpos.read_text(path))
    lines = Lines(text)
    declared: list[Declared] = []
    pending: list[tuple[str, str]] = []
    for start, end in _statements(text):
        statement = text[start:end]
        found, rest = _decorators(statement, len(statement) - len(statement.lstrip()))
        pending += found
        if rest >= len(statement) or statement.startswith("#", rest):  # a pragma (#disable-next-line) keeps decorators
            continue
        match = _PARAM.match(statement, rest)
        if match is not None:
            declared.append(_param(match, pending, path, lines.at(start + match.start(1))))
        pending = []
    return TemplateParameters("arm", path, tuple(declared), (path,))
