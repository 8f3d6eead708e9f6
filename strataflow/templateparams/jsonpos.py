"""JSON as Azure reads templates (``//`` and ``/* */`` comments, trailing commas, line breaks in strings), with positions.

``load`` returns plain Python values, except that every object is a ``PosDict``: a ``dict``
that also remembers the 1-based line and column of each of its keys. Syntax errors raise
``TemplateParamsError`` with the line and column of the offending token.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from strataflow.templateparams.model import TemplateParamsError

_TOKEN = re.compile(
    r"""
    (?P<skip>[ \t\r\n\ufeff]+|//[^\n]*|/\*.*?\*/)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<num>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
  | (?P<lit>true|false|null)(?![A-Za-z0-9_])
  | (?P<punct>[{}\[\]:,])
    """,
    re.VERBOSE | re.DOTALL,
)
_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None}


class PosDict(dict[str, Any]):
    """A mapping that remembers the 1-based (line, column) of each of its keys."""

    __slots__ = ("positions",)

    def __init__(self) -> None:
        super().__init__()
        self.positions: dict[str, tuple[int, int]] = {}


class Lines:
    """Offsets in a text to 1-based (line, column)."""

    def __init__(self, text: str) -> None:
        self.starts = [0, *(m.end() for m in re.finditer("\n", text))]

    def at(self, offset: int) -> tuple[int, int]:
        index = bisect.bisect_right(self.starts, offset) - 1
        return index + 1, offset - self.starts[index] + 1


def _number(text: str) -> Any:
    return float(text) if any(c in text for c in ".eE") else int(text)


class _Parser:
    def __init__(self, text: str, file: Path, number: Callable[[str], Any]) -> None:
        self.text = text
        self.file = file
        self.number = number
        self.lines = Lines(text)
        self.lexemes: list[tuple[str, str, int]] = []
        pos = 0
        for match in _TOKEN.finditer(text):
            if match.start() != pos:
                break
            pos = match.end()
            kind = match.lastgroup or ""
            if kind != "skip":
                self.lexemes.append((kind, match.group(), match.start()))
        if pos != len(text):
            what = "an unterminated comment" if text.startswith("/*", pos) else f"unexpected {text[pos]!r}"
            if text[pos] == '"':
                what = "an unterminated string"
            self.fail(pos, what)
        self.i = 0

    def fail(self, offset: int, what: str) -> None:
        line, column = self.lines.at(offset)
        raise TemplateParamsError(f"invalid JSON: {what}", self.file, line, column)

    def next(self, expected: str) -> tuple[str, str, int]:
        if self.i >= len(self.lexemes):
            self.fail(len(self.text), f"the text ends where {expected} was expected")
        lexeme = self.lexemes[self.i]
        self.i += 1
        return lexeme

    def string(self, lexeme: str, offset: int) -> str:
        try:
            value = json.loads(lexeme, strict=False)
        except json.JSONDecodeError as exc:
            self.fail(offset + exc.pos, exc.msg.lower())
        assert isinstance(value, str)
        return value

    def value(self) -> Any:
        kind, lexeme, offset = self.next("a value")
        if kind == "str":
            return self.string(lexeme, offset)
        if kind == "num":
            return self.number(lexeme)
        if kind == "lit":
            return _LITERALS[lexeme]
        if lexeme == "{":
            return self.obj()
        if lexeme == "[":
            return self.array()
        self.fail(offset, f"unexpected {lexeme!r} where a value was expected")
        return None  # pragma: no cover - fail() raises

    def closes(self, close: str) -> bool:
        """Consume ``close`` (after an optional trailing comma was already eaten) when it is next."""
        if self.i < len(self.lexemes) and self.lexemes[self.i][1] == close:
            self.i += 1
            return True
        return False

    def obj(self) -> PosDict:
        result = PosDict()
        if self.closes("}"):
            return result
        while True:
            kind, lexeme, offset = self.next("a property name")
            if kind != "str":
                self.fail(offset, f"expected a property name in double quotes, found {lexeme!r}")
            key = self.string(lexeme, offset)
            _, colon, at = self.next("':'")
            if colon != ":":
                self.fail(at, f"expected ':' after property name, found {colon!r}")
            result[key] = self.value()
            result.positions[key] = self.lines.at(offset)
            _, sep, at = self.next("',' or '}'")
            if sep == "}":
                return result
            if sep != ",":
                self.fail(at, f"expected ',' or '}}', found {sep!r}")
            if self.closes("}"):
                return result

    def array(self) -> list[Any]:
        result: list[Any] = []
        if self.closes("]"):
            return result
        while True:
            result.append(self.value())
            _, sep, at = self.next("',' or ']'")
            if sep == "]":
                return result
            if sep != ",":
                self.fail(at, f"expected ',' or ']', found {sep!r}")
            if self.closes("]"):
                return result


def load(text: str, file: Path, *, number: Callable[[str], Any] = _number) -> Any:
    """Parse ``text``; ``number`` turns each number's source text into a value (CloudFormation keeps the text)."""
    parser = _Parser(text, file, number)
    result = parser.value()
    if parser.i < len(parser.lexemes):
        parser.fail(parser.lexemes[parser.i][2], "unexpected text after the end of the document")
    return result


def read_text(path: Path) -> str:
    """A template's text; TemplateParamsError when it is missing, a directory or not UTF-8."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TemplateParamsError("template not found", path) from None
    except IsADirectoryError:
        raise TemplateParamsError("is a directory, not a template file", path) from None
    except UnicodeDecodeError as exc:
        raise TemplateParamsError(f"is not UTF-8 text (byte {exc.start})", path) from None
    except OSError as exc:
        raise TemplateParamsError(f"cannot be read: {exc.strerror}", path) from None
