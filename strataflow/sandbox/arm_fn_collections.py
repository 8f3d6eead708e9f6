"""Array and object functions of the ARM template language (several also take strings).

``array``, ``concat``, ``contains`` (strings case-sensitive, object keys case-insensitive),
``createArray``, ``createObject``, ``empty``, ``first``/``last``, ``flatten``,
``indexOf``/``lastIndexOf`` (strings case-insensitive), ``indexFromEnd``/``tryIndexFromEnd``,
``intersection``, ``items`` (sorted by key), ``json``, ``length``, ``max``/``min``,
``objectKeys``, ``range``, ``shallowMerge``, ``skip``/``take``, ``tryGet`` and ``union``
(arrays without duplicates; objects merged recursively, nested arrays replaced).
"""

from __future__ import annotations

import re
from typing import Any

from strataflow.sandbox.arm_json import loads_lenient
from strataflow.sandbox.arm_values import (
    Ctx,
    Spec,
    ci_key,
    equal,
    expect,
    fail,
    integer,
    kind,
    spec,
    text,
    to_string,
)

_MAX_INT = 2_147_483_647


def _array(ctx: Ctx, args: list[Any]) -> list[Any]:
    value = args[0]
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


def _concat(ctx: Ctx, args: list[Any]) -> Any:
    if any(isinstance(a, list) for a in args):
        merged: list[Any] = []
        for value in args:
            if value is None:
                continue
            merged.extend(expect("concat", value, "Array"))
        return merged
    for value in args:
        expect("concat", value, "String", "Integer", "Boolean", "Null", "Object")
    return "".join(to_string(a) for a in args)


def _contains(ctx: Ctx, args: list[Any]) -> bool:
    container, item = args
    if isinstance(container, str):
        return to_string(item) in container
    if isinstance(container, dict):
        return ci_key(container, to_string(item)) is not None
    if isinstance(container, list):
        return any(equal(element, item) for element in container)
    if container is None:
        return False
    raise fail("contains", f"The provided value of type '{kind(container)}' cannot be searched.")


def _create_object(ctx: Ctx, args: list[Any]) -> dict[str, Any]:
    if len(args) % 2:
        raise fail("createObject", "The function requires an even number of parameters: keys and their values.")
    return {text("createObject", args[i]): args[i + 1] for i in range(0, len(args), 2)}


def _empty(ctx: Ctx, args: list[Any]) -> bool:
    value = args[0]
    if value is None:
        return True
    return len(expect("empty", value, "String", "Array", "Object")) == 0


def _first(ctx: Ctx, args: list[Any]) -> Any:
    value = expect("first", args[0], "String", "Array", "Null")
    return value[0] if value else ("" if isinstance(value, str) else None)


def _last(ctx: Ctx, args: list[Any]) -> Any:
    value = expect("last", args[0], "String", "Array", "Null")
    return value[-1] if value else ("" if isinstance(value, str) else None)


def _flatten(ctx: Ctx, args: list[Any]) -> list[Any]:
    flat: list[Any] = []
    for item in expect("flatten", args[0], "Array"):
        flat.extend(expect("flatten", item, "Array", "Null") or [])
    return flat


def _index_of(name: str, *, last: bool) -> Any:
    def call(ctx: Ctx, args: list[Any]) -> int:
        container, item = args
        if isinstance(container, str):
            haystack, needle = container.lower(), text(name, item).lower()
            return haystack.rfind(needle) if last else haystack.find(needle)
        positions = [i for i, e in enumerate(expect(name, container, "Array")) if equal(e, item)]
        if not positions:
            return -1
        return positions[-1] if last else positions[0]

    return call


def _from_end(name: str, *, strict: bool) -> Any:
    def call(ctx: Ctx, args: list[Any]) -> Any:
        values = expect(name, args[0], "Array")
        index = integer(name, args[1])
        if 1 <= index <= len(values):
            return values[len(values) - index]
        if strict:
            raise fail(name, f"The index '{index}' from the end is out of range for an array of {len(values)}.")
        return None

    return call


def _intersection(ctx: Ctx, args: list[Any]) -> Any:
    first = args[0]
    if isinstance(first, dict):
        others = [expect("intersection", a, "Object") for a in args[1:]]
        return {
            k: v
            for k, v in first.items()
            if all((o_key := ci_key(o, k)) is not None and equal(o[o_key], v) for o in others)
        }
    values = expect("intersection", first, "Array")
    others_arrays = [expect("intersection", a, "Array") for a in args[1:]]
    found: list[Any] = []
    for item in values:
        if all(any(equal(item, o) for o in other) for other in others_arrays) and not any(
            equal(item, f) for f in found
        ):
            found.append(item)
    return found


def _items(ctx: Ctx, args: list[Any]) -> list[dict[str, Any]]:
    value = expect("items", args[0], "Object")
    return [{"key": k, "value": value[k]} for k in sorted(value, key=lambda k: (k.lower(), k))]


_NUMBER = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")


def _json(ctx: Ctx, args: list[Any]) -> Any:
    source = text("json", args[0])
    if _NUMBER.match(source):  # ARM's reader takes '.25' and '1.' too
        number = float(source)
        return int(number) if number.is_integer() and "." not in source and "e" not in source.lower() else number
    try:
        return loads_lenient(source)
    except ValueError as exc:
        raise fail("json", f"The provided value '{source[:200]}' is not valid JSON: {exc}.") from exc


def _length(ctx: Ctx, args: list[Any]) -> int:
    value = args[0]
    if value is None:
        return 0
    return len(expect("length", value, "String", "Array", "Object"))


def _numbers(name: str, args: list[Any]) -> list[Any]:
    values = args[0] if len(args) == 1 and isinstance(args[0], list) else args
    if not values:
        raise fail(name, "The array must not be empty.")
    return [expect(name, v, "Integer", "Float") for v in values]


def _range(ctx: Ctx, args: list[Any]) -> list[int]:
    start, count = integer("range", args[0]), integer("range", args[1])
    if count < 0 or count > 10_000:
        raise fail("range", f"The count '{count}' must be between 0 and 10000.")
    if start + count > _MAX_INT:
        raise fail("range", "The sum of the start index and the count must not exceed 2147483647.")
    return list(range(start, start + count))


def _shallow_merge(ctx: Ctx, args: list[Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for item in expect("shallowMerge", args[0], "Array"):
        for key, value in expect("shallowMerge", item, "Object").items():
            existing = ci_key(merged, key)
            if existing is not None:
                del merged[existing]
            merged[key] = value
    return merged


def _skip(ctx: Ctx, args: list[Any]) -> Any:
    value = expect("skip", args[0], "String", "Array")
    count = integer("skip", args[1])
    return value[max(count, 0) :]


def _take(ctx: Ctx, args: list[Any]) -> Any:
    value = expect("take", args[0], "String", "Array")
    count = integer("take", args[1])
    return value[: max(count, 0)]


def _try_get(ctx: Ctx, args: list[Any]) -> Any:
    current = args[0]
    for key in args[1:]:
        if isinstance(current, dict) and isinstance(key, str):
            found = ci_key(current, key)
            current = None if found is None else current[found]
        elif isinstance(current, list) and isinstance(key, int) and not isinstance(key, bool):
            current = current[key] if 0 <= key < len(current) else None
        elif current is None:
            return None
        else:
            raise fail("tryGet", f"The key '{key}' cannot be used on a value of type '{kind(current)}'.")
    return current


def merge_objects(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``union`` of two objects: later values win, nested objects merge recursively."""
    merged = dict(base)
    for key, value in extra.items():
        existing = ci_key(merged, key)
        if existing is not None and isinstance(merged[existing], dict) and isinstance(value, dict):
            merged[existing] = merge_objects(merged[existing], value)
        else:
            if existing is not None and existing != key:
                del merged[existing]
            merged[key] = value
    return merged


def _union(ctx: Ctx, args: list[Any]) -> Any:
    present = [a for a in args if a is not None]
    if not present:
        return None
    if isinstance(present[0], dict):
        result: dict[str, Any] = {}
        for value in present:
            result = merge_objects(result, expect("union", value, "Object"))
        return result
    found: list[Any] = []
    for value in present:
        for item in expect("union", value, "Array"):
            if not any(equal(item, f) for f in found):
                found.append(item)
    return found


FUNCTIONS: dict[str, Spec] = {
    "array": spec(_array, 1),
    "concat": spec(_concat, 0, None),
    "contains": spec(_contains, 2),
    "createarray": spec(lambda ctx, args: list(args), 0, None),
    "createobject": spec(_create_object, 0, None),
    "empty": spec(_empty, 1),
    "first": spec(_first, 1),
    "last": spec(_last, 1),
    "flatten": spec(_flatten, 1),
    "indexof": spec(_index_of("indexOf", last=False), 2),
    "lastindexof": spec(_index_of("lastIndexOf", last=True), 2),
    "indexfromend": spec(_from_end("indexFromEnd", strict=True), 2),
    "tryindexfromend": spec(_from_end("tryIndexFromEnd", strict=False), 2),
    "intersection": spec(_intersection, 2, None),
    "items": spec(_items, 1),
    "json": spec(_json, 1),
    "length": spec(_length, 1),
    "max": spec(lambda ctx, args: max(_numbers("max", args)), 1, None),
    "min": spec(lambda ctx, args: min(_numbers("min", args)), 1, None),
    "objectkeys": spec(lambda ctx, args: list(expect("objectKeys", args[0], "Object")), 1),
    "range": spec(_range, 2),
    "shallowmerge": spec(_shallow_merge, 1),
    "skip": spec(_skip, 2),
    "take": spec(_take, 2),
    "tryget": spec(_try_get, 2, None),
    "union": spec(_union, 2, None),
}
