"""The subset of the ARM template expression language the sandbox emulator evaluates.

A JSON string ``"[...]"`` is an expression (``"[[...]"`` is the literal ``"[...]"``). Function
names are case-insensitive, as in Azure; so is property access (``.name``). Supported::

    parameters(name)          variables(name)          concat(a, ...)   (strings or arrays)
    format(fmt, a, ...)       toLower(s)               toUpper(s)       string(x)
    split(s, separator)       first(array)             last(array)
    resourceId([sub], [rg], type, name, ...)           subscriptionResourceId([sub], type, name, ...)
    extensionResourceId(resourceId, type, name, ...)
    reference(idOrName, [apiVersion], ['Full'])        resourceGroup()  subscription()
    uniqueString(s, ...)      guid(s, ...)             cidrSubnet(cidr, bits, index)
    true()  false()  null()   plus ``.property`` and ``[index]`` on any value

Any other function is refused as Azure refuses an unknown one (``InvalidTemplate``).
``uniqueString`` and ``guid`` are deterministic, like Azure's, but not the same hashes.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class ExpressionError(Exception):
    """A template expression is malformed, calls an unknown function or fails to evaluate."""


class Unknown(Exception):
    """The value depends on a resource that does not exist yet (what-if shows the expression)."""


@dataclass(frozen=True)
class Lit:
    value: Any


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Member:
    target: Node
    key: Node


Node = Lit | Call | Member

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[(),.\[\]]))"
)


def is_expression(text: str) -> bool:
    return len(text) >= 2 and text.startswith("[") and text.endswith("]") and not text.startswith("[[")


def resource_path(resource_type: str, names: list[str]) -> str:
    """``/providers/NS/t1/n1/t2/n2`` for a (possibly nested) type and its name segments."""
    segments = resource_type.strip("/").split("/")
    if len(segments) < 2 or len(segments) - 1 != len(names):
        raise ExpressionError(
            f"The resource type '{resource_type}' and name '{'/'.join(names)}' have incorrect segment lengths. "
            "A nested resource type must have identical number of segments as its resource name."
        )
    path = f"/providers/{segments[0]}"
    for kind, name in zip(segments[1:], names, strict=True):
        path += f"/{kind}/{name}"
    return path


# --- parsing -------------------------------------------------------------------------


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
                raise ExpressionError(
                    f"The template language expression '{text}' is not valid: unexpected '{text[pos:]}'."
                )
            kind = match.lastgroup or "op"
            self.tokens.append((kind, match.group(kind)))
            pos = match.end()
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (expected is not None and token[1] != expected):
            found = "the end" if token is None else f"'{token[1]}'"
            raise ExpressionError(
                f"The template language expression '{self.text}' is not valid: "
                f"expected '{expected or 'a value'}', found {found}."
            )
        self.pos += 1
        return token

    def expression(self) -> Node:
        kind, text = self.take()
        node: Node
        if kind == "str":
            node = Lit(text[1:-1].replace("''", "'"))
        elif kind == "num":
            node = Lit(int(text))
        elif kind == "name":
            if text.lower() not in FUNCTIONS:
                raise ExpressionError(
                    f"The template function '{text}' is not valid. "
                    "Please see https://aka.ms/arm-functions for usage details."
                )
            self.take("(")
            args: list[Node] = []
            if self.peek() != ("op", ")"):
                args.append(self.expression())
                while self.peek() == ("op", ","):
                    self.take(",")
                    args.append(self.expression())
            self.take(")")
            node = Call(text.lower(), tuple(args))
        else:
            raise ExpressionError(f"The template language expression '{self.text}' is not valid: unexpected '{text}'.")
        while self.peek() in (("op", "."), ("op", "[")):
            _, op = self.take()
            if op == ".":
                node = Member(node, Lit(self.take()[1]))
            else:
                node = Member(node, self.expression())
                self.take("]")
        return node


def parse(text: str) -> Node:
    """Parse an expression string, brackets included."""
    parser = _Parser(text[1:-1])
    node = parser.expression()
    extra = parser.peek()
    if extra is not None:
        raise ExpressionError(f"The template language expression '{text}' is not valid: unexpected '{extra[1]}'.")
    return node


def check(value: Any) -> None:
    """Parse every expression in ``value`` (keys included), raising for the first bad one."""
    if isinstance(value, str) and is_expression(value):
        parse(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            check(key)
            check(item)
    elif isinstance(value, list):
        for item in value:
            check(item)


# --- evaluation ----------------------------------------------------------------------


@dataclass
class Scope:
    """What expressions can see: the deployment's site, parameters, variables and resources."""

    subscription_id: str
    tenant_id: str
    resource_group: str
    location: str
    parameters: Mapping[str, Any]
    variables: Mapping[str, Any] = field(default_factory=dict)
    """Raw variable definitions, evaluated on first use."""
    reference: Callable[[str, bool], Any] = field(default=lambda target, full: _no_reference(target))
    """``reference(target, full)``: a resource's properties (or whole body when ``full``)."""
    _evaluated: dict[str, Any] = field(default_factory=dict)
    _evaluating: set[str] = field(default_factory=set)

    @property
    def group_id(self) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"

    def variable(self, name: str) -> Any:
        key = _ci_key(self.variables, name)
        if key is None:
            raise ExpressionError(
                f"The template variable '{name}' is not found. Please see https://aka.ms/arm-syntax-variables."
            )
        if key not in self._evaluated:
            if key in self._evaluating:
                raise ExpressionError(f"The template variable '{name}' refers to itself.")
            self._evaluating.add(key)
            try:
                self._evaluated[key] = evaluate(self.variables[key], self)
            finally:
                self._evaluating.discard(key)
        return self._evaluated[key]


def _no_reference(target: str) -> Any:
    raise Unknown(target)


def evaluate(value: Any, scope: Scope, *, unknown_as_text: bool = False) -> Any:
    """``value`` with every expression evaluated (in keys too); ``[[`` escapes a literal ``[``.

    With ``unknown_as_text`` an expression whose value exists only after deployment stays
    as its text (what-if); otherwise ``Unknown`` propagates.
    """
    if isinstance(value, str):
        if value.startswith("[["):
            return value[1:]
        if not is_expression(value):
            return value
        try:
            return _eval(parse(value), scope)
        except Unknown:
            if unknown_as_text:
                return value
            raise
    if isinstance(value, dict):
        return {
            str(evaluate(key, scope, unknown_as_text=unknown_as_text)): evaluate(
                item, scope, unknown_as_text=unknown_as_text
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [evaluate(item, scope, unknown_as_text=unknown_as_text) for item in value]
    return value


def _eval(node: Node, scope: Scope) -> Any:
    if isinstance(node, Lit):
        return node.value
    if isinstance(node, Member):
        target = _eval(node.target, scope)
        key = _eval(node.key, scope)
        return _member(target, key)
    args = [_eval(arg, scope) for arg in node.args]
    return FUNCTIONS[node.name](scope, args)


def _ci_key(mapping: Mapping[str, Any], name: str) -> str | None:
    if name in mapping:
        return name
    lowered = name.lower()
    return next((k for k in mapping if k.lower() == lowered), None)


def _member(target: Any, key: Any) -> Any:
    if isinstance(target, dict) and isinstance(key, str):
        found = _ci_key(target, key)
        if found is None:
            available = ", ".join(target)
            raise ExpressionError(
                f"The language expression property '{key}' doesn't exist, available properties are '{available}'."
            )
        return target[found]
    if isinstance(target, list) and isinstance(key, int) and not isinstance(key, bool):
        if not -len(target) <= key < len(target):
            raise ExpressionError(
                f"The language expression index '{key}' is out of range (array length {len(target)})."
            )
        return target[key]
    raise ExpressionError(
        f"The language expression property '{key}' cannot be evaluated on a value of type '{type(target).__name__}'."
    )


def _arity(name: str, args: list[Any], low: int, high: int | None = None) -> None:
    high = low if high is None else high
    if not low <= len(args) <= high:
        raise ExpressionError(
            f"Unable to evaluate template language function '{name}': "
            f"it takes {low}..{high} arguments, got {len(args)}."
        )


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return "" if value is None else str(value)


def _parameters(scope: Scope, args: list[Any]) -> Any:
    _arity("parameters", args, 1)
    key = _ci_key(scope.parameters, str(args[0]))
    if key is None:
        raise ExpressionError(
            f"The template parameter '{args[0]}' is not found. Please see https://aka.ms/arm-syntax-parameters."
        )
    return scope.parameters[key]


def _concat(scope: Scope, args: list[Any]) -> Any:
    if args and all(isinstance(a, list) for a in args):
        return [item for a in args for item in a]
    return "".join(_text(a) for a in args)


_FORMAT_ITEM = re.compile(r"\{\{|\}\}|\{(\d+)(?::[^}]*)?\}")


def _format(scope: Scope, args: list[Any]) -> str:
    if not args:
        _arity("format", args, 1, 99)

    def item(match: re.Match[str]) -> str:
        if match.group(0) in ("{{", "}}"):
            return match.group(0)[0]
        index = int(match.group(1)) + 1
        if index >= len(args):
            raise ExpressionError(
                f"Unable to evaluate template language function 'format': index {index - 1} has no argument."
            )
        return _text(args[index])

    return _FORMAT_ITEM.sub(item, str(args[0]))


def _resource_id(scope: Scope, args: list[Any], *, subscription_level: bool = False) -> str:
    texts = [str(a) for a in args]
    type_at = next((i for i, t in enumerate(texts) if "/" in t), None)
    if type_at is None:
        raise ExpressionError("Unable to evaluate template language function 'resourceId': no resource type given.")
    prefix = texts[:type_at]
    path = resource_path(texts[type_at], texts[type_at + 1 :])
    if subscription_level:
        if len(prefix) > 1:
            raise ExpressionError("'subscriptionResourceId' takes at most a subscription id before the type.")
        return f"/subscriptions/{prefix[0] if prefix else scope.subscription_id}{path}"
    if len(prefix) > 2:
        raise ExpressionError("'resourceId' takes at most a subscription id and a group name before the type.")
    subscription = prefix[0] if len(prefix) == 2 else scope.subscription_id
    group = prefix[-1] if prefix else scope.resource_group
    return f"/subscriptions/{subscription}/resourceGroups/{group}{path}"


def _extension_resource_id(scope: Scope, args: list[Any]) -> str:
    if len(args) < 3:
        _arity("extensionResourceId", args, 3, 99)
    return str(args[0]).rstrip("/") + resource_path(str(args[1]), [str(a) for a in args[2:]])


def _reference(scope: Scope, args: list[Any]) -> Any:
    _arity("reference", args, 1, 3)
    full = len(args) == 3 and str(args[2]).lower() == "full"
    return scope.reference(str(args[0]), full)


def _unique_string(scope: Scope, args: list[Any]) -> str:
    _arity("uniqueString", args, 1, 99)
    digest = hashlib.sha256("\x1f".join(_text(a) for a in args).encode()).digest()
    return base64.b32encode(digest).decode().lower()[:13]


def _guid(scope: Scope, args: list[Any]) -> str:
    _arity("guid", args, 1, 99)
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "\x1f".join(_text(a) for a in args)))


def _cidr_subnet(scope: Scope, args: list[Any]) -> str:
    _arity("cidrSubnet", args, 3)
    try:
        network = ipaddress.ip_network(str(args[0]), strict=False)
        bits, index = int(args[1]), int(args[2])
        if bits < network.prefixlen or index < 0 or index >= 2 ** (bits - network.prefixlen):
            raise ValueError(f"cannot take subnet {index} of size /{bits} in {network}")
        size = 2 ** (network.max_prefixlen - bits)
        first = network.network_address + index * size
        return str(ipaddress.ip_network(f"{first}/{bits}"))
    except ValueError as exc:
        raise ExpressionError(f"Unable to evaluate template language function 'cidrSubnet': {exc}.") from exc


def _resource_group(scope: Scope, args: list[Any]) -> dict[str, Any]:
    _arity("resourceGroup", args, 0)
    return {
        "id": scope.group_id,
        "name": scope.resource_group,
        "type": "Microsoft.Resources/resourceGroups",
        "location": scope.location,
        "properties": {"provisioningState": "Succeeded"},
    }


def _subscription(scope: Scope, args: list[Any]) -> dict[str, Any]:
    _arity("subscription", args, 0)
    return {
        "id": f"/subscriptions/{scope.subscription_id}",
        "subscriptionId": scope.subscription_id,
        "tenantId": scope.tenant_id,
        "displayName": "Strata sandbox",
    }


def _one(name: str, fn: Callable[[Any], Any]) -> Callable[[Scope, list[Any]], Any]:
    def call(scope: Scope, args: list[Any]) -> Any:
        _arity(name, args, 1)
        return fn(args[0])

    return call


def _constant(name: str, value: Any) -> Callable[[Scope, list[Any]], Any]:
    def call(scope: Scope, args: list[Any]) -> Any:
        _arity(name, args, 0)
        return value

    return call


FUNCTIONS: dict[str, Callable[[Scope, list[Any]], Any]] = {
    "parameters": _parameters,
    "variables": lambda scope, args: scope.variable(str(args[0])) if len(args) == 1 else _arity("variables", args, 1),
    "concat": _concat,
    "format": _format,
    "tolower": _one("toLower", lambda v: str(v).lower()),
    "toupper": _one("toUpper", lambda v: str(v).upper()),
    "string": _one("string", _text),
    "split": lambda scope, args: str(args[0]).split(str(args[1])) if len(args) == 2 else _arity("split", args, 2),
    "first": _one("first", lambda v: v[0] if v else None),
    "last": _one("last", lambda v: v[-1] if v else None),
    "resourceid": _resource_id,
    "extensionresourceid": _extension_resource_id,
    "subscriptionresourceid": lambda scope, args: _resource_id(scope, args, subscription_level=True),
    "reference": _reference,
    "resourcegroup": _resource_group,
    "subscription": _subscription,
    "uniquestring": _unique_string,
    "guid": _guid,
    "cidrsubnet": _cidr_subnet,
    "true": _constant("true", True),
    "false": _constant("false", False),
    "null": _constant("null", None),
}
