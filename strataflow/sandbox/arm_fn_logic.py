"""Comparison, logical and numeric functions of the ARM template language.

``if`` evaluates only the branch it takes; ``and``/``or`` take one or more booleans and stop
at the first that decides; ``coalesce`` returns the first non-null argument without
evaluating the rest. ``equals`` is deep and type-strict; ``less``/``greater`` compare
integers or strings (culture-invariant: case-insensitive first, lower case before upper).
``div`` and ``mod`` truncate toward zero as .NET does.
"""

from __future__ import annotations

from typing import Any

from strataflow.sandbox.arm_parser import Node
from strataflow.sandbox.arm_values import Ctx, Spec, equal, expect, fail, integer, kind, spec


def _boolean(name: str, value: Any, position: str) -> bool:
    if not isinstance(value, bool):
        raise fail(name, f"The {position} parameter must be of type 'Boolean', got '{kind(value)}'.")
    return value


def _if(ctx: Ctx, nodes: tuple[Node, ...]) -> Any:
    condition = _boolean("if", ctx.eval(nodes[0]), "first")
    return ctx.eval(nodes[1] if condition else nodes[2])


def _and(ctx: Ctx, nodes: tuple[Node, ...]) -> bool:
    return all(_boolean("and", ctx.eval(node), "every") for node in nodes)  # stops at the first False


def _or(ctx: Ctx, nodes: tuple[Node, ...]) -> bool:
    return any(_boolean("or", ctx.eval(node), "every") for node in nodes)  # stops at the first True


def _coalesce(ctx: Ctx, nodes: tuple[Node, ...]) -> Any:
    for node in nodes:
        value = ctx.eval(node)
        if value is not None:
            return value
    return None


def _not(ctx: Ctx, args: list[Any]) -> bool:
    return not _boolean("not", args[0], "first")


def _bool(ctx: Ctx, args: list[Any]) -> bool:
    value = args[0]
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, int):
        return value != 0
    raise fail("bool", f"The provided value '{value}' cannot be converted to a boolean.")


def _ordered(value: Any) -> Any:
    if isinstance(value, str):
        return (value.lower(), value.swapcase())
    return value


def _compare(name: str, test: Any) -> Any:
    def call(ctx: Ctx, args: list[Any]) -> bool:
        first, second = args
        first_kind, second_kind = kind(first), kind(second)
        numeric = {"Integer", "Float"}
        if not (first_kind == second_kind == "String" or (first_kind in numeric and second_kind in numeric)):
            raise fail(
                name,
                f"The parameters must both be integers or both be strings; got '{first_kind}' and '{second_kind}'.",
            )
        return bool(test(_ordered(first), _ordered(second)))

    return call


def _number(name: str, value: Any) -> int | float:
    return expect(name, value, "Integer", "Float")  # type: ignore[no-any-return]


def _div(ctx: Ctx, args: list[Any]) -> int:
    dividend, divisor = integer("div", args[0]), integer("div", args[1])
    if divisor == 0:
        raise fail("div", "Attempted to divide by zero.")
    quotient = abs(dividend) // abs(divisor)
    return quotient if (dividend >= 0) == (divisor > 0) else -quotient


def _mod(ctx: Ctx, args: list[Any]) -> int:
    dividend, divisor = integer("mod", args[0]), integer("mod", args[1])
    if divisor == 0:
        raise fail("mod", "Attempted to divide by zero.")
    remainder = abs(dividend) % abs(divisor)
    return remainder if dividend >= 0 else -remainder


def _int(ctx: Ctx, args: list[Any]) -> int:
    value = args[0]
    if isinstance(value, bool):
        raise fail("int", "The provided value of type 'Boolean' cannot be converted to an integer.")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise fail("int", f"The provided value '{value}' cannot be converted to an integer.")


def _float(ctx: Ctx, args: list[Any]) -> float:
    value = args[0]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise fail("float", f"The provided value '{value}' cannot be converted to a float.")


FUNCTIONS: dict[str, Spec] = {
    "if": spec(_if, 3, lazy=True),
    "and": spec(_and, 1, None, lazy=True),
    "or": spec(_or, 1, None, lazy=True),
    "coalesce": spec(_coalesce, 1, None, lazy=True),
    "not": spec(_not, 1),
    "bool": spec(_bool, 1),
    "true": spec(lambda ctx, args: True, 0),
    "false": spec(lambda ctx, args: False, 0),
    "null": spec(lambda ctx, args: None, 0),
    "equals": spec(lambda ctx, args: equal(args[0], args[1]), 2),
    "less": spec(_compare("less", lambda a, b: a < b), 2),
    "lessorequals": spec(_compare("lessOrEquals", lambda a, b: a <= b), 2),
    "greater": spec(_compare("greater", lambda a, b: a > b), 2),
    "greaterorequals": spec(_compare("greaterOrEquals", lambda a, b: a >= b), 2),
    "add": spec(lambda ctx, args: _number("add", args[0]) + _number("add", args[1]), 2),
    "sub": spec(lambda ctx, args: _number("sub", args[0]) - _number("sub", args[1]), 2),
    "mul": spec(lambda ctx, args: _number("mul", args[0]) * _number("mul", args[1]), 2),
    "div": spec(_div, 2),
    "mod": spec(_mod, 2),
    "int": spec(_int, 1),
    "float": spec(_float, 1),
}
