"""YAML loading that keeps line numbers and refuses duplicate keys.

PyYAML silently keeps the last of two equal keys in one mapping; a platform engineer who
defines `network` twice deserves to hear about it. Every mapping comes back as a
``LineDict``: a plain ``dict`` that also remembers where each key stood.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from strataflow.errors import Problem


class LineDict(dict[str, Any]):
    """A mapping that remembers the 1-based line and column of each of its keys, and of the items of its lists."""

    __slots__ = ("items_at", "line", "positions")

    def __init__(self, *args: Any, line: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.line = line
        self.positions: dict[str, tuple[int, int]] = {}
        self.items_at: dict[str, list[tuple[int, int]]] = {}
        """Key -> the line and column of each item of the list that is its value (``depends_on: [a, b]``)."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that builds LineDicts and collects duplicate keys as problems."""

    def __init__(self, stream: str, filename: str) -> None:
        super().__init__(stream)
        self.filename = filename
        self.problems: list[Problem] = []


def _construct_mapping(loader: Any, node: yaml.MappingNode, deep: bool = False) -> LineDict:
    loader.flatten_mapping(node)
    mapping = LineDict(line=node.start_mark.line + 1)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line, column = key_node.start_mark.line + 1, key_node.start_mark.column + 1
        if not isinstance(key, str):
            key = str(key)
        if key in mapping:
            first = mapping.positions[key][0]
            loader.problems.append(
                Problem(
                    loader.filename,
                    line,
                    column,
                    f"'{key}' is defined twice in one mapping (first at line {first}); remove or rename one",
                )
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.positions[key] = (line, column)
        if isinstance(value_node, yaml.SequenceNode):
            mapping.items_at[key] = [(item.start_mark.line + 1, item.start_mark.column + 1) for item in value_node.value]
        else:
            mapping.items_at.pop(key, None)
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _FastLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The same loader on libyaml's parser (about 5x faster), when PyYAML was built with it.

    It reads valid files; a file it refuses is read again by ``_Loader``, whose messages and
    marks are the ones reported.
    """

    def __init__(self, stream: str, filename: str) -> None:
        super().__init__(stream)
        self.filename = filename
        self.problems: list[Problem] = []


_FastLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load(path: Path, display: str | None = None) -> tuple[Any, list[Problem]]:
    """Load one YAML file; return its data and the problems found (data is None on failure)."""
    name = display or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, [Problem(name, None, None, f"cannot read file: {exc.strerror}")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _line_column(raw, exc.start)
        message = f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8"
        return None, [Problem(name, line, column, message)]
    return loads(text, name)


def loads(text: str, name: str) -> tuple[Any, list[Problem]]:
    """Load YAML text; return its data and the problems found (data is None on failure)."""
    if yaml.__with_libyaml__:
        fast: _FastLoader | None = None
        try:
            fast = _FastLoader(text, name)
            data = fast.get_single_data()
            if data is not None or not text.strip():
                return data, fast.problems
            # nothing loaded from non-blank text: the pure-Python loader says whether that is an error
        except Exception:  # noqa: BLE001, S110 - the pure-Python loader below reports what is wrong
            pass
        finally:
            if fast is not None:
                fast.dispose()
    loader: _Loader | None = None
    try:
        loader = _Loader(text, name)
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        return None, [Problem(name, line, column, _syntax_message(exc))]
    except yaml.reader.ReaderError as exc:  # a control character, before any parsing
        line, column = _line_column(text, exc.position)
        message = f"YAML error: character #x{exc.character:04x} is not allowed; remove it"
        return None, [Problem(name, line, column, message)]
    except yaml.YAMLError as exc:
        return None, [Problem(name, None, None, f"YAML error: {exc}")]
    except RecursionError:
        return None, [Problem(name, None, None, "YAML nested too deeply")]
    finally:
        if loader is not None:
            loader.dispose()
    return data, loader.problems


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    """One line saying what is wrong, with the context PyYAML gives and a hint for the usual slips."""
    problem = exc.problem or ""
    tag = re.search(r"constructor for the tag '([^']*)'", problem)
    if tag:
        return (
            f"YAML error: unsupported tag '{tag.group(1)}'; write plain YAML values "
            "(template short forms such as !Ref belong in the template, references here are ${...})"
        )
    if "'\\t'" in problem:
        return "YAML syntax error: a tab character; indent YAML with spaces"
    message = f"YAML syntax error: {problem or exc.context or 'invalid YAML'}"
    if problem and exc.context:
        message += f" ({exc.context}"
        if exc.context_mark is not None:
            message += f" at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}"
        message += ")"
    return message


def _line_column(text: str | bytes, offset: int) -> tuple[int, int]:
    """The 1-based line and column of ``offset`` in ``text``."""
    newline = b"\n" if isinstance(text, bytes) else "\n"
    line = text.count(newline, 0, offset) + 1  # type: ignore[arg-type]
    column = offset - (text.rfind(newline, 0, offset) + 1) + 1  # type: ignore[arg-type]
    return line, column


def position(data: Any, loc: tuple[str | int, ...]) -> tuple[int | None, int | None]:
    """The line and column of the deepest key (or list item) along ``loc`` that the data remembers."""
    line: int | None = getattr(data, "line", None)
    column: int | None = None
    node = data
    items: list[tuple[int, int]] | None = None  # the positions of node's items, when node is a mapping's list
    for part in loc:
        if isinstance(node, LineDict) and isinstance(part, str) and part in node.positions:
            line, column = node.positions[part]
            items = node.items_at.get(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            if items is not None and part < len(items):
                line, column = items[part]
            else:
                line, column = getattr(node[part], "line", line), None
            node = node[part]
            items = None
        else:
            break
    return line, column
