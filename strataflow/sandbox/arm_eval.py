"""Evaluation of ARM template expressions: the scope they see and the walk over JSON values.

``Scope`` is what a deployment's expressions can see (its site, parameters, variables,
user-defined functions and the hooks that read deployed resources); ``Frame`` is where one
expression sits (copy-loop indexes, lambda variables, a user-defined function's parameters,
and the section: ``utcNow``/``newGuid`` only in parameter defaults, as in Azure).
``evaluate`` walks a JSON value, evaluating each ``"[...]"`` string and expanding property
``copy`` loops; ``check`` parses every expression and refuses unknown functions with Azure's
``The template function 'x' is not valid``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from strataflow.sandbox.arm_functions import lookup
from strataflow.sandbox.arm_parser import Call, Lit, Member, Node, is_expression, parse, walk
from strataflow.sandbox.arm_values import HELP, ExpressionError, Unknown, check_arity, ci_key, member

Reference = Callable[["Ctx", str, str | None, bool], Any]
Lister = Callable[["Ctx", str, str, str | None, Any], Any]
_RESTRICTED = {"utcnow": "default", "newguid": "default"}
_NOT_IN_UDF = frozenset({"variables", "reference", "copyindex", "resourceinfo", "references"})


@dataclass(frozen=True)
class Frame:
    """Where an expression is evaluated: loop indexes, lambda variables, function parameters, section."""

    copy: tuple[tuple[str, int], ...] = ()
    lambdas: tuple[tuple[str, Any], ...] = ()
    udf: Mapping[str, Any] | None = None
    site: str = "body"
    """``default`` (parameter defaults), ``variable``, ``body`` (resources, outputs), ``udf``."""

    def with_copy(self, name: str, index: int, *, default: bool = False) -> Frame:
        """This frame inside iteration ``index`` of loop ``name`` (``default``: also what ``copyIndex()`` reads)."""
        entries = [(name.lower(), index)]
        if default:
            entries.append(("", index))
        return replace(self, copy=(*entries, *self.copy))


ROOT = Frame()


def _no_reference(ctx: Ctx, target: str, api_version: str | None, full: bool) -> Any:
    raise Unknown(target)


def _no_list(ctx: Ctx, name: str, target: str, api_version: str | None, body: Any) -> Any:
    raise Unknown(target)


@dataclass
class Scope:
    """What a deployment's expressions see: its site, parameters, variables, functions and resources."""

    subscription_id: str
    tenant_id: str
    resource_group: str | None
    location: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    variables: Mapping[str, Any] = field(default_factory=dict)
    """Raw variable definitions (``copy`` included), evaluated on first use."""
    functions: Mapping[str, Any] = field(default_factory=dict)
    """User-defined functions: ``"namespace.member"`` (lower case) -> member definition."""
    reference: Reference = _no_reference
    """``reference(target, apiVersion, full)``: a resource's properties (or whole body when ``full``)."""
    lister: Lister = _no_list
    """``list*(target, apiVersion, body)``: what a resource's ``list`` action answers."""
    deployment: Mapping[str, Any] = field(default_factory=dict)
    """What ``deployment()`` returns."""
    group: Mapping[str, Any] | None = None
    """The resource group record (``resourceGroup()``), when deploying to a group."""
    symbolic: bool = False
    """A ``languageVersion`` 2.0 template: ``reference()`` is allowed in variables."""
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    _evaluated: dict[str, Any] = field(default_factory=dict)
    _evaluating: set[str] = field(default_factory=set)

    @property
    def group_id(self) -> str:
        if self.resource_group is None:
            return f"/subscriptions/{self.subscription_id}"
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"

    def variable(self, name: str) -> Any:
        """A variable's value (evaluated once), variable ``copy`` loops included."""
        key = ci_key({k: None for k in self.variables if k.lower() != "copy"}, name)
        loop = None if key is not None else _copy_spec(self.variables.get("copy"), name)
        if key is None and loop is None:
            raise ExpressionError(
                f"The template variable '{name}' is not found. Please see https://aka.ms/arm-syntax-variables."
            )
        cache = (key or f"copy:{name}").lower()
        if cache not in self._evaluated:
            if cache in self._evaluating:
                raise ExpressionError(f"The template variable '{name}' has a circular reference to itself.")
            self._evaluating.add(cache)
            try:
                frame = Frame(site="variable")
                if loop is not None:
                    self._evaluated[cache] = expand_copy(loop, self, frame)
                else:
                    self._evaluated[cache] = evaluate(self.variables[str(key)], self, frame)
            finally:
                self._evaluating.discard(cache)
        return self._evaluated[cache]

    def child(self, **changes: Any) -> Scope:
        """A copy of this scope with some fields changed and its own variable cache."""
        fresh = replace(self, **changes)
        fresh._evaluated, fresh._evaluating = {}, set()
        return fresh


@dataclass(frozen=True)
class Ctx:
    """An evaluation in progress: the scope and the frame; what library functions receive."""

    scope: Scope
    frame: Frame

    def eval(self, node: Node, frame: Frame | None = None) -> Any:
        """Evaluate one node (used by lazy functions such as ``if`` and the lambdas)."""
        return _eval(node, Ctx(self.scope, frame or self.frame))

    def value(self, raw: Any, frame: Frame | None = None) -> Any:
        """Evaluate a JSON value in this context (used by user-defined functions)."""
        return evaluate(raw, self.scope, frame or self.frame)


def _copy_spec(loops: Any, name: str) -> dict[str, Any] | None:
    if not isinstance(loops, list):
        return None
    return next(
        (s for s in loops if isinstance(s, dict) and str(s.get("name", "")).lower() == name.lower()),
        None,
    )


def is_copy_block(value: Any) -> bool:
    """A property ``copy`` array: loops with a ``name``, a ``count`` and an ``input``."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(s, dict) and "name" in s and "input" in s for s in value)
    )


def loop_count(raw: Any, scope: Scope, frame: Frame, where: str) -> int:
    """A copy loop's ``count``: a non-negative integer, at most 800 as in Azure."""
    count = evaluate(raw, scope, frame)
    if isinstance(count, bool) or not isinstance(count, int):
        raise ExpressionError(f"The copy count of '{where}' must be an integer, got '{count}'.")
    if count < 0 or count > 800:
        raise ExpressionError(f"The copy count of '{where}' must be between 0 and 800, got '{count}'.")
    return count


def expand_copy(loop: Mapping[str, Any], scope: Scope, frame: Frame, *, default: bool = False) -> list[Any]:
    """The values of a variable, property or output ``copy`` loop."""
    name = str(loop.get("name", ""))
    count = loop_count(loop.get("count", 0), scope, frame, name or "copy")
    return [evaluate(loop.get("input"), scope, frame.with_copy(name, i, default=default)) for i in range(count)]


def evaluate(value: Any, scope: Scope, frame: Frame = ROOT, *, unknown_as_text: bool = False) -> Any:
    """``value`` with every expression evaluated (in keys too) and property ``copy`` loops expanded.

    With ``unknown_as_text`` an expression whose value exists only after deployment stays
    as its text (what-if); otherwise ``Unknown`` propagates.
    """
    if isinstance(value, str):
        if value.startswith("[["):
            return value[1:]
        if not is_expression(value):
            return value
        try:
            return _eval(parse(value), Ctx(scope, frame))
        except Unknown:
            if unknown_as_text:
                return value
            raise
    if isinstance(value, dict):
        result: dict[str, Any] = {}
        for key, item in value.items():
            if key.lower() == "copy" and is_copy_block(item):
                for loop in item:
                    result[str(evaluate(loop["name"], scope, frame))] = [
                        evaluate(loop.get("input"), scope, f, unknown_as_text=unknown_as_text)
                        for f in _frames(loop, scope, frame)
                    ]
                continue
            name = evaluate(key, scope, frame, unknown_as_text=unknown_as_text)
            result[str(name)] = evaluate(item, scope, frame, unknown_as_text=unknown_as_text)
        return result
    if isinstance(value, list):
        return [evaluate(item, scope, frame, unknown_as_text=unknown_as_text) for item in value]
    return value


def _frames(loop: Mapping[str, Any], scope: Scope, frame: Frame) -> list[Frame]:
    name = str(loop.get("name", ""))
    count = loop_count(loop.get("count", 0), scope, frame, name)
    return [frame.with_copy(name, i) for i in range(count)]


def _eval(node: Node, ctx: Ctx) -> Any:
    if isinstance(node, Lit):
        return node.value
    if isinstance(node, Member):
        return member(_eval(node.target, ctx), _eval(node.key, ctx))
    if "." in node.name:
        return _user_function(node, ctx)
    found = lookup(node.name)
    if found is None:
        raise ExpressionError(f"The template function '{node.spelled}' is not valid. {HELP}")
    site = _RESTRICTED.get(node.name)
    if site is not None and ctx.frame.site != site:
        raise ExpressionError(f"The template function '{node.spelled}' is not expected at this location. {HELP}")
    if ctx.frame.site == "udf" and (node.name in _NOT_IN_UDF or node.name.startswith("list")):
        raise ExpressionError(
            f"The template function '{node.spelled}' is not expected at this location: "
            f"user-defined functions cannot use it. {HELP}"
        )
    check_arity(node.spelled, len(node.args), found.low, found.high)
    if found.lazy:
        return found.fn(ctx, node.args)
    return found.fn(ctx, [_eval(arg, ctx) for arg in node.args])


def _user_function(node: Call, ctx: Ctx) -> Any:
    definition = ctx.scope.functions.get(node.name)
    if definition is None:
        raise ExpressionError(f"The template function '{node.spelled}' is not valid. {HELP}")
    declared = definition.get("parameters") or []
    if len(declared) != len(node.args):
        raise ExpressionError(
            f"Unable to evaluate template language function '{node.spelled}'. The function expects "
            f"{len(declared)} parameters but {len(node.args)} were provided. {HELP}"
        )
    values = {str(p.get("name")): _eval(arg, ctx) for p, arg in zip(declared, node.args, strict=True)}
    output = definition.get("output") or {}
    return evaluate(output.get("value"), ctx.scope, Frame(udf=values, site="udf"))


def check(value: Any, functions: Mapping[str, Any] | None = None) -> None:
    """Parse every expression in ``value`` (keys included) and refuse unknown functions."""
    if isinstance(value, str):
        if is_expression(value):
            for node in walk(parse(value)):
                if not isinstance(node, Call):
                    continue
                known = node.name in (functions or {}) if "." in node.name else lookup(node.name) is not None
                if not known:
                    raise ExpressionError(f"The template function '{node.spelled}' is not valid. {HELP}")
    elif isinstance(value, dict):
        for key, item in value.items():
            check(key, functions)
            check(item, functions)
    elif isinstance(value, list):
        for item in value:
            check(item, functions)
