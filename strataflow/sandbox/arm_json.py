"""JSON as Azure Resource Manager reads it: comments, trailing commas and single quotes allowed.

ARM parses templates and request bodies with a lenient reader, so ``// line`` and
``/* block */`` comments, a comma before ``}`` or ``]``, single-quoted strings, raw control
characters inside strings and a leading byte order mark are all accepted. ``loads_lenient``
rewrites such text into strict JSON (strings untouched) and parses it; errors keep the
line and column of the original text.
"""

from __future__ import annotations

import json
from typing import Any


def _skip_comment(source: str, pos: int) -> int:
    """The position after a comment starting at ``pos`` (which holds ``/``), or ``pos`` if none."""
    if source.startswith("//", pos):
        end = source.find("\n", pos)
        return len(source) if end < 0 else end
    if source.startswith("/*", pos):
        end = source.find("*/", pos + 2)
        if end < 0:
            raise json.JSONDecodeError("Unterminated comment", source, pos)
        return end + 2
    return pos


def _next_significant(source: str, pos: int) -> str:
    while pos < len(source):
        char = source[pos]
        if char.isspace():
            pos += 1
        elif char == "/" and _skip_comment(source, pos) != pos:
            pos = _skip_comment(source, pos)
        else:
            return char
    return ""


def _string(source: str, pos: int, out: list[str]) -> int:
    """Copy the string starting at ``pos`` to ``out`` as a double-quoted JSON string; the end position."""
    quote = source[pos]
    pos += 1
    chars: list[str] = ['"']
    while pos < len(source):
        char = source[pos]
        if char == "\\":
            escaped = source[pos + 1 : pos + 2]
            chars.append("'" if escaped == "'" else "\\" + escaped)
            pos += 2
            continue
        if char == quote:
            chars.append('"')
            out.append("".join(chars))
            return pos + 1
        chars.append('\\"' if char == '"' else char)
        pos += 1
    raise json.JSONDecodeError("Unterminated string", source, pos)


def strict_text(source: str) -> str:
    """``source`` rewritten as strict JSON: comments dropped, trailing commas removed, quotes doubled."""
    out: list[str] = []
    pos = 0
    while pos < len(source):
        char = source[pos]
        if char in "\"'":
            pos = _string(source, pos, out)
            continue
        if char == "/":
            end = _skip_comment(source, pos)
            if end != pos:
                out.append(" " * min(end - pos, 1) + "\n" * source.count("\n", pos, end))
                pos = end
                continue
        if char == "," and _next_significant(source, pos + 1) in ("}", "]"):
            out.append(" ")
            pos += 1
            continue
        out.append(char)
        pos += 1
    return "".join(out)


def loads_lenient(source: str | bytes) -> Any:
    """Parse JSON the way ARM does (see the module docstring); raises ``ValueError`` when invalid."""
    if isinstance(source, bytes):
        source = source.decode("utf-8-sig")
    source = source.lstrip("\ufeff")
    try:
        return json.loads(source)
    except ValueError:
        return json.loads(strict_text(source), strict=False)
