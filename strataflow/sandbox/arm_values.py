"""Values of the ARM template language: errors, type names, conversions and argument checks.

Shared by the parser, the evaluator and the function library. Azure's types are JSON's:
``String``, ``Integer``, ``Boolean``, ``Array``, ``Object`` and ``Null`` (floats appear only
through ``json()``/``float()``). Property names compare case-insensitively, strings do not.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

HELP = "Please see https://aka.ms/arm-template-expressions for usage details."


class Ctx(Protocol):
    """What a library function receives: the evaluation in progress (``arm_eval.Ctx`` is the one there is).

    A protocol here, so the function modules need not import the evaluator that imports them.
    """

    scope: Any
    frame: Any

    def eval(self, node: Any, frame: Any = None) -> Any: ...

    def value(self, raw: Any, frame: Any = None) -> Any: ...


class ExpressionError(Exception):
    """A template expression is malformed, calls an unknown function or fails to evaluate."""

    code = "InvalidTemplate"


class Unsupported(ExpressionError):
    """A valid Azure feature that the sandbox does not implement (``SandboxUnsupported``)."""

    code = "SandboxUnsupported"

    def __init__(self, feature: str) -> None:
        super().__init__(f"{feature} is not supported by the strataflow sandbox.")
        self.feature = feature


class Unknown(Exception):
    """The value depends on a resource that does not exist yet (what-if shows the expression)."""


class NotFound(ExpressionError):
    """``reference()``/``list*()`` of a resource that does not exist (Azure's ``ResourceNotFound``)."""

    code = "ResourceNotFound"


class OpaqueOutputs(dict[str, Any]):
    """Properties the sandbox cannot produce (e.g. a deployment script's outputs): reading one fails clearly."""

    feature = "Outputs of deployment scripts (the sandbox does not run scripts)"


@dataclass(frozen=True)
class Spec:
    """A template function: its implementation and how many arguments it takes (``high`` None: any)."""

    fn: Callable[..., Any]
    low: int
    high: int | None
    lazy: bool = False
    """Lazy functions receive the unevaluated argument nodes (``if``, ``and``, lambdas, ...)."""


def spec(fn: Callable[..., Any], low: int, high: int | None = -1, *, lazy: bool = False) -> Spec:
    """A ``Spec``; ``high`` defaults to ``low`` (a fixed arity)."""
    return Spec(fn, low, low if high == -1 else high, lazy)


def kind(value: Any) -> str:
    """Azure's name for a value's type, as its error messages spell it."""
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Float"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, dict):
        return "Object"
    return type(value).__name__


def fail(name: str, message: str) -> ExpressionError:
    """Azure's wording for a function that cannot evaluate its arguments."""
    return ExpressionError(f"Unable to evaluate template language function '{name}'. {message} {HELP}")


def check_arity(name: str, count: int, low: int, high: int | None) -> None:
    """Raise Azure's error when a function gets too few or too many arguments."""
    if count < low:
        if low == 1 and high == 1:
            detail = (
                "This function takes exactly 1 parameter." if count else "At least one parameter should be provided."
            )
        elif high == low:
            detail = f"This function takes exactly {low} parameters."
        else:
            detail = f"At least {low} parameter{'s' if low > 1 else ''} should be provided."
        raise fail(name, detail)
    if high is not None and count > high:
        if high == 0:
            detail = "This function does not take any parameters."
        elif high == low:
            detail = f"This function takes exactly {high} parameter{'s' if high > 1 else ''}."
        else:
            detail = f"This function takes at most {high} parameter{'s' if high > 1 else ''}."
        raise fail(name, detail)


def expect(name: str, value: Any, *types: str) -> Any:
    """``value`` when its Azure type is one of ``types`` ('String', 'Integer', ...), else Azure's type error."""
    actual = kind(value)
    if actual in types or ("Integer" in types and actual == "Float" and float(value).is_integer()):
        return value
    wanted = " or ".join(f"'{t}'" for t in types)
    raise fail(name, f"The provided value of type '{actual}' is not valid: expected {wanted}.")


def text(name: str, value: Any) -> str:
    """A string argument (Azure refuses other types)."""
    return str(expect(name, value, "String"))


def integer(name: str, value: Any) -> int:
    """An integer argument (booleans are not integers)."""
    return int(expect(name, value, "Integer"))


def to_string(value: Any) -> str:
    """``string(value)``: booleans as ``True``/``False``, arrays and objects as compact JSON."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def ci_key(mapping: Mapping[str, Any], name: str) -> str | None:
    """The key of ``mapping`` equal to ``name`` ignoring case, or None."""
    if name in mapping:
        return name
    lowered = name.lower()
    return next((k for k in mapping if k.lower() == lowered), None)


def equal(a: Any, b: Any) -> bool:
    """Azure's ``equals``: deep, type-strict, case-sensitive for strings, case-insensitive for property names."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        if len(a) != len(b):
            return False
        for key, value in a.items():
            other = ci_key(b, key)
            if other is None or not equal(value, b[other]):
                return False
        return True
    return type(a) is type(b) and bool(a == b)


def member(target: Any, key: Any) -> Any:
    """``target.key`` / ``target[key]``: case-insensitive property access, array indexes."""
    if isinstance(target, dict) and isinstance(key, str):
        found = ci_key(target, key)
        if found is None:
            if isinstance(target, OpaqueOutputs):
                raise Unsupported(target.feature)
            available = ", ".join(f"{k}" for k in target)
            raise ExpressionError(
                f"The language expression property '{key}' doesn't exist, available properties are '{available}'."
            )
        return target[found]
    if isinstance(target, list) and isinstance(key, int) and not isinstance(key, bool):
        if not 0 <= key < len(target):
            raise ExpressionError(
                f"The language expression property array index '{key}' is out of bounds. "
                f"The array length is '{len(target)}'."
            )
        return target[key]
    if target is None:
        raise ExpressionError(f"The language expression property '{key}' can't be evaluated on a null value.")
    if isinstance(target, dict):
        raise ExpressionError(
            f"The language expression property '{key}' can't be evaluated, property name must be a string."
        )
    if isinstance(target, list):
        raise ExpressionError(
            f"The language expression property '{key}' can't be evaluated, the array index must be an integer."
        )
    raise ExpressionError(
        f"The language expression property '{key}' can't be evaluated on a value of type '{kind(target)}'."
    )
