"""YAML loading that keeps line numbers and refuses duplicate keys.

PyYAML silently keeps the last of two equal keys in one mapping; a platform engineer who
defines `network` twice deserves to hear about it. Every mapping comes back as a
``LineDict``: a plain ``dict`` that also remembers where each key stood.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from strataflow.errors import Problem


class LineDict(dict[str, Any]):
    """A mapping that remembers the 1-based line and column of each of its keys."""

    __slots__ = ("line", "positions")

    def __init__(self, *args: Any, line: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.line = line
        self.positions: dict[str, tuple[int, int]] = {}


class _Loader(yaml.SafeLoader):
    """SafeLoader that builds LineDicts and collects duplicate keys as problems."""

    def __init__(self, stream: str, filename: str) -> None:
        super().__init__(stream)
        self.filename = filename
        self.problems: list[Problem] = []


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> LineDict:
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
                    f"'{key}' is defined twice in one mapping (first at line {first}); "
                    "remove or rename one",
                )
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.positions[key] = (line, column)
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load(path: Path, display: str | None = None) -> tuple[Any, list[Problem]]:
    """Load one YAML file; return its data and the problems found (data is None on failure)."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return None, [Problem(name, None, None, f"cannot read file: {exc.strerror}")]
    except UnicodeDecodeError:
        return None, [Problem(name, None, None, "not UTF-8 text")]
    return loads(text, name)


def loads(text: str, name: str) -> tuple[Any, list[Problem]]:
    """Load YAML text; return its data and the problems found (data is None on failure)."""
    loader = _Loader(text, name)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = exc.problem or exc.context or "invalid YAML"
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        return None, [Problem(name, line, column, f"YAML syntax error: {reason}")]
    except yaml.YAMLError as exc:  # e.g. an unknown tag
        return None, [Problem(name, None, None, f"YAML error: {exc}")]
    except RecursionError:
        return None, [Problem(name, None, None, "YAML nested too deeply")]
    finally:
        loader.dispose()
    return data, loader.problems


def position(data: Any, loc: tuple[str | int, ...]) -> tuple[int | None, int | None]:
    """The line and column of the deepest key along ``loc`` that the data remembers."""
    line: int | None = getattr(data, "line", None)
    column: int | None = None
    node = data
    for part in loc:
        if isinstance(node, LineDict) and isinstance(part, str) and part in node.positions:
            line, column = node.positions[part]
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            line = getattr(node, "line", line)
            column = None
        else:
            break
    return line, column
