"""A CloudFormation template evaluated as far as a cost estimate needs (``strataflow.cost.aws`` prices it).

Pure. The template is evaluated as far as cost needs: ``Ref`` to parameters (the given
values, else the defaults) and pseudo parameters, ``Conditions`` (``Fn::Equals``, ``Fn::Not``,
``Fn::And``, ``Fn::Or``, ``Condition``) and the resources they leave out, ``Fn::If``,
``Fn::Sub``, ``Fn::Join``, ``Fn::Select``, ``Fn::Split``, ``Fn::FindInMap`` and ``Fn::GetAZs``.
Anything else (``Fn::GetAtt``, ``Fn::ImportValue``, an output known only after apply) is an
``Unknown`` saying why; ``touched`` records the parameters a value was read from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from strataflow.cost.model import Unknown
from strataflow.refs import KNOWN_AFTER_APPLY


class ResourceRef(str):
    """``Ref`` to another resource of the template: its logical id."""


class Template:
    """One CloudFormation template, evaluated with given parameters in a region."""

    def __init__(self, doc: Mapping[str, Any], parameters: Mapping[str, Any], region: str, stack: str) -> None:
        self.doc, self.region, self.stack = doc, region, stack
        self.resources: dict[str, Any] = dict(doc.get("Resources") or {})
        declared = doc.get("Parameters") or {}
        self.params: dict[str, Any] = {}
        for name, spec in declared.items():
            kind = str((spec or {}).get("Type", "String"))
            value = parameters.get(name, (spec or {}).get("Default"))
            self.params[name] = _param_value(value, kind, name)
        self._conditions: dict[str, bool | Unknown] = {}
        self.touched: set[str] = set()
        """Parameters read since the last ``reading()``: what a value depends on."""

    # --- values ------------------------------------------------------------------------

    def value(self, node: Any) -> Any:
        """``node`` with its intrinsic functions evaluated (``Unknown`` where they cannot be)."""
        if isinstance(node, list):
            return [self.value(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            handler = _FUNCTIONS.get(key)
            if handler is not None:
                return handler(self, arg)
            if key.startswith("Fn::"):
                return Unknown(f"{key} is not evaluated")
        return {k: self.value(v) for k, v in node.items()}

    def ref(self, name: Any) -> Any:
        name = str(name)
        if name in self.params:
            self.touched.add(name)
            return self.params[name]
        pseudo = {
            "AWS::Region": self.region,
            "AWS::StackName": self.stack,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.resources:
            return ResourceRef(name)
        return Unknown(f"Ref {name}")

    def condition(self, name: str) -> bool | Unknown:
        if name not in self._conditions:
            self._conditions[name] = Unknown(f"condition {name} refers to itself")
            spec = (self.doc.get("Conditions") or {}).get(name)
            self._conditions[name] = Unknown(f"no condition {name}") if spec is None else _truth(self.value(spec))
        return self._conditions[name]

    def included(self, resource: Mapping[str, Any]) -> bool | Unknown:
        name = resource.get("Condition")
        return True if name is None else self.condition(str(name))

    def reading(self) -> None:
        self.touched = set()


def _param_value(value: Any, kind: str, name: str) -> Any:
    if value is None:
        return Unknown(f"parameter {name} has no value")
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    if isinstance(value, bool):
        value = "true" if value else "false"
    text = str(value)
    if KNOWN_AFTER_APPLY in text:
        return Unknown(f"{name} is known only after its upstream is applied")
    if kind.startswith("List<") or kind == "CommaDelimitedList":
        return [part.strip() for part in text.split(",")] if text else []
    return text


def _truth(value: Any) -> bool | Unknown:
    if isinstance(value, Unknown | bool):
        return value
    return str(value).lower() == "true"


def _equals(t: Template, arg: Any) -> bool | Unknown:
    left, right = (t.value(a) for a in arg)
    if isinstance(left, Unknown) or isinstance(right, Unknown):
        return left if isinstance(left, Unknown) else right
    return str(left) == str(right)


def _not(t: Template, arg: Any) -> bool | Unknown:
    inner = _truth(t.value(arg[0] if isinstance(arg, list) else arg))
    return inner if isinstance(inner, Unknown) else not inner


def _all(t: Template, arg: Any, want: bool) -> bool | Unknown:
    unknown: Unknown | None = None
    for item in arg:
        value = _truth(t.value(item))
        if isinstance(value, Unknown):
            unknown = value
        elif value is not want:
            return not want
    return unknown if unknown is not None else want


def _if(t: Template, arg: Any) -> Any:
    name, yes, no = arg
    chosen = t.condition(str(name))
    return chosen if isinstance(chosen, Unknown) else t.value(yes if chosen else no)


def _sub(t: Template, arg: Any) -> Any:
    text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
    values = {k: t.value(v) for k, v in (extra or {}).items()}
    missing: list[Unknown] = []

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        value = values[name] if name in values else (Unknown(name) if "." in name else t.ref(name))
        if isinstance(value, Unknown | ResourceRef) or value is None:
            missing.append(value if isinstance(value, Unknown) else Unknown(f"{name} is known after deployment"))
            return ""
        return ",".join(map(str, value)) if isinstance(value, list) else str(value)

    result = re.sub(r"\$\{([^}!]+)\}", one, str(text))
    return missing[0] if missing else result


def _join(t: Template, arg: Any) -> Any:
    delimiter, items = arg[0], t.value(arg[1])
    if isinstance(items, Unknown):
        return items
    parts = items if isinstance(items, list) else [items]
    bad = [p for p in parts if isinstance(p, Unknown | ResourceRef)]
    return Unknown("Fn::Join of unknown values") if bad else str(delimiter).join(str(p) for p in parts)


def _select(t: Template, arg: Any) -> Any:
    index, items = t.value(arg[0]), t.value(arg[1])
    if isinstance(items, Unknown) or isinstance(index, Unknown):
        return items if isinstance(items, Unknown) else index
    try:
        return items[int(index)]
    except (IndexError, TypeError, ValueError):
        return Unknown(f"Fn::Select {index} of {items!r}")


def _split(t: Template, arg: Any) -> Any:
    delimiter, text = arg[0], t.value(arg[1])
    return text if isinstance(text, Unknown) else str(text).split(str(delimiter))


def _find_in_map(t: Template, arg: Any) -> Any:
    keys = [t.value(a) for a in arg[:3]]
    if any(isinstance(k, Unknown) for k in keys):
        return Unknown("Fn::FindInMap with an unknown key")
    try:
        return t.value((t.doc.get("Mappings") or {})[str(keys[0])][str(keys[1])][str(keys[2])])
    except (KeyError, TypeError):
        return Unknown(f"no mapping {keys}")


_FUNCTIONS: dict[str, Callable[[Template, Any], Any]] = {
    "Ref": lambda t, arg: t.ref(arg),
    "Condition": lambda t, arg: t.condition(str(arg)),
    "Fn::Equals": _equals,
    "Fn::Not": _not,
    "Fn::And": lambda t, arg: _all(t, arg, True),
    "Fn::Or": lambda t, arg: _all(t, arg, False),
    "Fn::If": _if,
    "Fn::Sub": _sub,
    "Fn::Join": _join,
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::FindInMap": _find_in_map,
    "Fn::GetAZs": lambda t, arg: [f"{t.region}{zone}" for zone in "abc"],
    "Fn::Base64": lambda t, arg: t.value(arg),
    "Fn::GetAtt": lambda t, arg: Unknown(f"Fn::GetAtt {arg}"),
    "Fn::ImportValue": lambda t, arg: Unknown("Fn::ImportValue"),
}


__all__ = ["ResourceRef", "Template", "Unknown"]
