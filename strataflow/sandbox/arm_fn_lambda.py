"""Lambda functions of the ARM template language.

``lambda('x', ['i',] body)`` may appear only as an argument of ``filter``, ``map``,
``reduce``, ``sort``, ``toObject``, ``groupBy`` and ``mapValues``; its variables are read
with ``lambdaVariables('x')``. ``filter``/``map`` and ``reduce`` accept an extra index
variable; ``sort``'s lambda says whether its first argument goes before its second.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

from strataflow.sandbox.arm_parser import Call, Lit, Node
from strataflow.sandbox.arm_values import HELP, Ctx, ExpressionError, Spec, expect, fail, kind, spec, text, to_string

_HOSTS = "filter(), groupBy(), map(), mapValues(), reduce(), sort() and toObject()"


def _lambda(function: str, node: Node, sizes: tuple[int, ...]) -> tuple[list[str], Node]:
    if not isinstance(node, Call) or node.name != "lambda":
        raise fail(function, "The lambda argument must be a lambda(...) expression.")
    *names, body = node.args
    if not all(isinstance(n, Lit) and isinstance(n.value, str) for n in names):
        raise fail(function, "The lambda variable names must be string literals.")
    if len(names) not in sizes:
        wanted = " or ".join(str(s) for s in sizes)
        raise fail(function, f"The lambda must declare {wanted} variables, it declares {len(names)}.")
    return [str(n.value) for n in names if isinstance(n, Lit)], body


def _apply(ctx: Ctx, names: list[str], body: Node, values: list[Any]) -> Any:
    bound = tuple(zip((n.lower() for n in names), values, strict=False))
    return ctx.eval(body, replace(ctx.frame, lambdas=(*bound, *ctx.frame.lambdas)))


def _standalone(ctx: Ctx, nodes: tuple[Node, ...]) -> Any:
    raise ExpressionError(f"A lambda expression can only be an argument of {_HOSTS}. {HELP}")


def _lambda_variables(ctx: Ctx, args: list[Any]) -> Any:
    name = text("lambdaVariables", args[0]).lower()
    for bound, value in ctx.frame.lambdas:
        if bound == name:
            return value
    raise fail("lambdaVariables", f"The lambda variable '{args[0]}' is not defined.")


def _filter(ctx: Ctx, nodes: tuple[Node, ...]) -> list[Any]:
    items = expect("filter", ctx.eval(nodes[0]), "Array")
    names, body = _lambda("filter", nodes[1], (1, 2))
    kept = []
    for index, item in enumerate(items):
        verdict = _apply(ctx, names, body, [item, index])
        if not isinstance(verdict, bool):
            raise fail("filter", f"The lambda must return a boolean, it returned '{kind(verdict)}'.")
        if verdict:
            kept.append(item)
    return kept


def _map(ctx: Ctx, nodes: tuple[Node, ...]) -> list[Any]:
    items = expect("map", ctx.eval(nodes[0]), "Array")
    names, body = _lambda("map", nodes[1], (1, 2))
    return [_apply(ctx, names, body, [item, index]) for index, item in enumerate(items)]


def _reduce(ctx: Ctx, nodes: tuple[Node, ...]) -> Any:
    items = expect("reduce", ctx.eval(nodes[0]), "Array")
    current = ctx.eval(nodes[1])
    names, body = _lambda("reduce", nodes[2], (2, 3))
    for index, item in enumerate(items):
        current = _apply(ctx, names, body, [current, item, index])
    return current


def _sort(ctx: Ctx, nodes: tuple[Node, ...]) -> list[Any]:
    items = expect("sort", ctx.eval(nodes[0]), "Array")
    names, body = _lambda("sort", nodes[1], (2,))

    def before(a: Any, b: Any) -> bool:
        verdict = _apply(ctx, names, body, [a, b])
        if not isinstance(verdict, bool):
            raise fail("sort", f"The lambda must return a boolean, it returned '{kind(verdict)}'.")
        return verdict

    def compare(a: Any, b: Any) -> int:
        if before(a, b):
            return -1
        return 1 if before(b, a) else 0

    return sorted(items, key=functools.cmp_to_key(compare))


def _to_object(ctx: Ctx, nodes: tuple[Node, ...]) -> dict[str, Any]:
    items = expect("toObject", ctx.eval(nodes[0]), "Array")
    key_names, key_body = _lambda("toObject", nodes[1], (1,))
    value_lambda = _lambda("toObject", nodes[2], (1,)) if len(nodes) > 2 else None
    result: dict[str, Any] = {}
    for item in items:
        key = _apply(ctx, key_names, key_body, [item])
        if not isinstance(key, str):
            raise fail("toObject", f"The key lambda must return a string, it returned '{kind(key)}'.")
        result[key] = _apply(ctx, *value_lambda, [item]) if value_lambda else item
    return result


def _group_by(ctx: Ctx, nodes: tuple[Node, ...]) -> dict[str, list[Any]]:
    items = expect("groupBy", ctx.eval(nodes[0]), "Array")
    names, body = _lambda("groupBy", nodes[1], (1,))
    groups: dict[str, list[Any]] = {}
    for item in items:
        key = _apply(ctx, names, body, [item])
        groups.setdefault(key if isinstance(key, str) else to_string(key), []).append(item)
    return groups


def _map_values(ctx: Ctx, nodes: tuple[Node, ...]) -> dict[str, Any]:
    source = expect("mapValues", ctx.eval(nodes[0]), "Object")
    names, body = _lambda("mapValues", nodes[1], (1,))
    return {key: _apply(ctx, names, body, [value]) for key, value in source.items()}


FUNCTIONS: dict[str, Spec] = {
    "lambda": spec(_standalone, 1, None, lazy=True),
    "lambdavariables": spec(_lambda_variables, 1),
    "filter": spec(_filter, 2, lazy=True),
    "map": spec(_map, 2, lazy=True),
    "reduce": spec(_reduce, 3, lazy=True),
    "sort": spec(_sort, 2, lazy=True),
    "toobject": spec(_to_object, 2, 3, lazy=True),
    "groupby": spec(_group_by, 2, lazy=True),
    "mapvalues": spec(_map_values, 2, lazy=True),
}
