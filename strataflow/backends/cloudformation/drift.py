"""Parameter drift of a stack: the applied parameters against the deployed ones, by meaning, secrets unshown.

CloudFormation (and moto) give a parameter back in its own spelling: a ``List<...>`` or
``CommaDelimitedList`` as ``a,b`` or ``['a', 'b']``, a ``Number`` as ``3`` for ``3.0``. Values are
compared as what they mean for the parameter's declared type. A parameter that is ``NoEcho``
or whose applied value holds a secret (``${secret...}``, a sensitive upstream output) is
compared, but its values are never written in the line that reports it.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Mapping
from typing import Any

from strataflow.backends.base import mask
from strataflow.refs import KNOWN_AFTER_APPLY, as_text

STACK_TYPE = "AWS::CloudFormation::Stack"
NO_ECHO = "****"


def parameter_drift(
    applied: Mapping[str, Any],
    deployed: Mapping[str, Any],
    declared: Mapping[str, Any],
    secrets: Iterable[str],
) -> list[str]:
    """One line per parameter whose deployed value means something else than the applied one."""
    secrets = frozenset(secrets)
    lines = []
    for key, value in sorted(applied.items()):
        text = as_text(value)
        if value is None or KNOWN_AFTER_APPLY in text or key not in deployed or deployed[key] == NO_ECHO:
            continue  # unknown yet, not a stack parameter, or hidden by CloudFormation
        found = declared.get(key)
        spec: Mapping[str, Any] = found if isinstance(found, dict) else {}
        kind = str(spec.get("Type", "String"))
        if same(value, deployed[key], kind):
            continue
        secret = _truthy(spec.get("NoEcho")) or mask(text, secrets) != text
        if secret:
            lines.append(f"parameter {key} ({STACK_TYPE}): the deployed value differs from the applied one (secret: not shown)")
        else:
            shown = mask(f"applied {text!r}, deployed {as_text(deployed[key])!r}", secrets)
            lines.append(f"parameter {key} ({STACK_TYPE}): {shown}")
    return lines


def same(applied: Any, deployed: Any, kind: str = "String") -> bool:
    """Whether a deployed parameter value means the applied one for a parameter of type ``kind``."""
    if kind.startswith("List<") or kind == "CommaDelimitedList" or isinstance(applied, list):
        number = kind == "List<Number>"
        ours, theirs = _items(applied), _items(deployed)
        return len(ours) == len(theirs) and all(_equal(a, b, number) for a, b in zip(ours, theirs, strict=True))
    number = kind == "Number" or (isinstance(applied, (int, float)) and not isinstance(applied, bool))
    return _equal(as_text(applied), as_text(deployed), number)


def _items(value: Any) -> list[str]:
    """A list value as its items: a list, its JSON or Python text (``['a', 'b']``), or comma-separated text."""
    if isinstance(value, list):
        return [as_text(v).strip() for v in value]
    text = as_text(value).strip()
    if text.startswith("[") and text.endswith("]"):
        for parse in (json.loads, ast.literal_eval):
            try:
                parsed = parse(text)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if isinstance(parsed, list):
                return [as_text(v).strip() for v in parsed]
    return [part.strip() for part in text.split(",")] if text else []


def _equal(applied: str, deployed: str, number: bool) -> bool:
    if applied == deployed:
        return True
    if not number:
        return False
    try:
        return float(applied) == float(deployed)
    except ValueError:
        return False


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


__all__ = ["STACK_TYPE", "parameter_drift", "same"]
