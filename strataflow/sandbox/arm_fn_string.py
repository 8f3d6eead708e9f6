"""String functions of the ARM template language, with Azure's semantics.

``base64``/``base64ToString``/``base64ToJson``, ``dataUri``/``dataUriToString``,
``startsWith``/``endsWith`` (case-insensitive), ``format`` (.NET composite formatting:
``{0}``, ``{0,5}``, ``{0:N0}``, ``{0:D3}``, ``{0:X}``, ``{0:000}``), ``guid``/``newGuid``,
``join``, ``padLeft``, ``replace`` (case-sensitive), ``split`` (one separator or an array of
them), ``string``, ``substring``, ``toLower``/``toUpper``, ``trim``, ``uniqueString``,
``uri``/``uriComponent``/``uriComponentToString``. ``uniqueString`` and ``guid`` are
deterministic, like Azure's, but not the same hashes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import urllib.parse
import uuid
from typing import Any

from strataflow.sandbox.arm_json import loads_lenient
from strataflow.sandbox.arm_values import Ctx, Spec, expect, fail, integer, spec, text, to_string


def _base64(ctx: Ctx, args: list[Any]) -> str:
    return base64.b64encode(text("base64", args[0]).encode()).decode()


def _decode64(name: str, value: Any) -> str:
    try:
        return base64.b64decode(text(name, value), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise fail(name, f"The provided value is not a valid base64 string: {exc}.") from exc


def _base64_to_json(ctx: Ctx, args: list[Any]) -> Any:
    decoded = _decode64("base64ToJson", args[0])
    try:
        return loads_lenient(decoded)
    except ValueError as exc:
        raise fail("base64ToJson", f"The provided value is not valid JSON: {exc}.") from exc


def _data_uri(ctx: Ctx, args: list[Any]) -> str:
    value = to_string(args[0])
    return "data:text/plain;charset=utf8;base64," + base64.b64encode(value.encode()).decode()


def _data_uri_to_string(ctx: Ctx, args: list[Any]) -> str:
    value = text("dataUriToString", args[0])
    if not value.startswith("data:") or "," not in value:
        raise fail("dataUriToString", f"The provided value '{value}' is not a valid data URI.")
    header, data = value[5:].split(",", 1)
    if header.lower().endswith(";base64"):
        try:
            return base64.b64decode(data).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise fail("dataUriToString", f"The data URI's base64 content is not valid: {exc}.") from exc
    return urllib.parse.unquote(data)


def _starts(ctx: Ctx, args: list[Any]) -> bool:
    return text("startsWith", args[0]).lower().startswith(text("startsWith", args[1]).lower())


def _ends(ctx: Ctx, args: list[Any]) -> bool:
    return text("endsWith", args[0]).lower().endswith(text("endsWith", args[1]).lower())


_FORMAT_ITEM = re.compile(r"\{\{|\}\}|\{(\d+)(?:\s*,\s*(-?\d+))?(?::([^}]*))?\}")
_GROUPED = re.compile(r"^[#0,]*0?(\.[0#]*)?$")


def _group(digits: str) -> str:
    return f"{int(digits):,}" if digits.isdigit() else digits


def format_number(value: int | float, pattern: str) -> str:
    """A number in a .NET standard (N, D, X, F, P, G, E) or simple custom (``000``, ``#,##0.00``) format."""
    if not pattern:
        return to_string(value)
    letter, digits = pattern[0], pattern[1:]
    precision = int(digits) if digits.isdigit() else None
    upper = letter.upper()
    if upper == "D" and (digits == "" or precision is not None):
        sign = "-" if value < 0 else ""
        return sign + str(abs(int(value))).zfill(precision or 0)
    if upper == "X" and (digits == "" or precision is not None):
        rendered = format(int(value) & 0xFFFFFFFFFFFFFFFF if value < 0 else int(value), "x").zfill(precision or 0)
        return rendered.upper() if letter == "X" else rendered
    if upper == "N" and (digits == "" or precision is not None):
        return f"{value:,.{2 if precision is None else precision}f}"
    if upper == "F" and (digits == "" or precision is not None):
        return f"{value:.{2 if precision is None else precision}f}"
    if upper == "P" and (digits == "" or precision is not None):
        return f"{value * 100:,.{2 if precision is None else precision}f} %"
    if upper == "E" and (digits == "" or precision is not None):
        mantissa, exponent = f"{value:.{6 if precision is None else precision}e}".split("e")
        return f"{mantissa}{letter}{exponent[0]}{exponent[1:].zfill(3)}"
    if upper == "G" and (digits == "" or precision is not None):
        return to_string(value)
    if _GROUPED.match(pattern):
        whole, _, fraction = pattern.partition(".")
        decimals = len(fraction)
        rendered = f"{abs(value):,.{decimals}f}" if "," in whole else f"{abs(value):.{decimals}f}"
        head, _, tail = rendered.partition(".")
        width = whole.replace(",", "").count("0")
        if "," not in whole:
            head = head.zfill(width)
        sign = "-" if value < 0 else ""
        return sign + head + ("." + tail if tail else "")
    return to_string(value)


def _format(ctx: Ctx, args: list[Any]) -> str:
    pattern = text("format", args[0])
    values = args[1:]

    def item(match: re.Match[str]) -> str:
        if match.group(0) in ("{{", "}}"):
            return match.group(0)[0]
        index = int(match.group(1))
        if index >= len(values):
            raise fail(
                "format",
                "Index (zero based) must be greater than or equal to zero and less than the size of the argument list.",
            )
        value, spec_text = values[index], match.group(3) or ""
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        rendered = format_number(value, spec_text.strip()) if is_number else to_string(value)
        width = int(match.group(2) or 0)
        return rendered.rjust(width) if width >= 0 else rendered.ljust(-width)

    return _FORMAT_ITEM.sub(item, pattern)


def _guid(ctx: Ctx, args: list[Any]) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "\x1f".join(text("guid", a) for a in args)))


def _new_guid(ctx: Ctx, args: list[Any]) -> str:
    return str(uuid.uuid4())


def _unique_string(ctx: Ctx, args: list[Any]) -> str:
    digest = hashlib.sha256("\x1f".join(text("uniqueString", a) for a in args).encode()).digest()
    return base64.b32encode(digest).decode().lower()[:13]


def _join(ctx: Ctx, args: list[Any]) -> str:
    items = expect("join", args[0], "Array")
    delimiter = text("join", args[1])
    return delimiter.join(to_string(expect("join", i, "String", "Integer", "Boolean")) for i in items)


def _pad_left(ctx: Ctx, args: list[Any]) -> str:
    value = to_string(expect("padLeft", args[0], "String", "Integer"))
    width = integer("padLeft", args[1])
    padding = text("padLeft", args[2])
    if len(padding) != 1:
        raise fail("padLeft", "The padding character must be a single character.")
    if width > 16 * 1024:
        raise fail("padLeft", "The total length must not exceed 16384.")
    return value.rjust(width, padding)


def _replace(ctx: Ctx, args: list[Any]) -> str:
    original, old, new = (text("replace", a) for a in args)
    return original.replace(old, new) if old else original


def _split(ctx: Ctx, args: list[Any]) -> list[str]:
    value = text("split", args[0])
    separators = args[1]
    if isinstance(separators, list):
        parts = [re.escape(text("split", s)) for s in separators if s != ""]
        return re.split("|".join(parts), value) if parts else [value]
    separator = text("split", separators)
    return value.split(separator) if separator else [value]


def _string(ctx: Ctx, args: list[Any]) -> str:
    return to_string(args[0])


def _substring(ctx: Ctx, args: list[Any]) -> str:
    value = text("substring", args[0])
    start = integer("substring", args[1]) if len(args) > 1 else 0
    length = integer("substring", args[2]) if len(args) > 2 else len(value) - start
    if start < 0 or length < 0 or start > len(value) or start + length > len(value):
        raise fail(
            "substring",
            "The index and length parameters must refer to a location within the string. "
            f"The index parameter: '{start}', the length parameter: '{length}', "
            f"the length of the string parameter: '{len(value)}'.",
        )
    return value[start : start + length]


def _to_lower(ctx: Ctx, args: list[Any]) -> str:
    return text("toLower", args[0]).lower()


def _to_upper(ctx: Ctx, args: list[Any]) -> str:
    return text("toUpper", args[0]).upper()


def _trim(ctx: Ctx, args: list[Any]) -> str:
    return text("trim", args[0]).strip()


def _uri(ctx: Ctx, args: list[Any]) -> str:
    base, relative = text("uri", args[0]), text("uri", args[1])
    parsed = urllib.parse.urlsplit(base)
    if not parsed.scheme or not parsed.netloc:
        raise fail("uri", f"The provided base URI '{base}' is not an absolute URI.")
    return urllib.parse.urljoin(base, relative)


def _uri_component(ctx: Ctx, args: list[Any]) -> str:
    return urllib.parse.quote(text("uriComponent", args[0]), safe="-_.~")


def _uri_component_to_string(ctx: Ctx, args: list[Any]) -> str:
    return urllib.parse.unquote(text("uriComponentToString", args[0]))


FUNCTIONS: dict[str, Spec] = {
    "base64": spec(_base64, 1),
    "base64tojson": spec(_base64_to_json, 1),
    "base64tostring": spec(lambda ctx, args: _decode64("base64ToString", args[0]), 1),
    "datauri": spec(_data_uri, 1),
    "datauritostring": spec(_data_uri_to_string, 1),
    "startswith": spec(_starts, 2),
    "endswith": spec(_ends, 2),
    "format": spec(_format, 1, None),
    "guid": spec(_guid, 1, None),
    "newguid": spec(_new_guid, 0),
    "uniquestring": spec(_unique_string, 1, None),
    "join": spec(_join, 2),
    "padleft": spec(_pad_left, 3),
    "replace": spec(_replace, 3),
    "split": spec(_split, 2),
    "string": spec(_string, 1),
    "substring": spec(_substring, 1, 3),
    "tolower": spec(_to_lower, 1),
    "toupper": spec(_to_upper, 1),
    "trim": spec(_trim, 1),
    "uri": spec(_uri, 2),
    "uricomponent": spec(_uri_component, 1),
    "uricomponenttostring": spec(_uri_component_to_string, 1),
}
