"""Date functions of the ARM template language: ``utcNow``, ``dateTimeAdd`` and the epoch conversions.

Formats are .NET's: the standard one-letter formats (``d``, ``u``, ``s``, ``o``, ``G``, ...,
invariant culture) and custom patterns (``yyyyMMddTHHmmssZ``, ``M d``, quoted literals).
``utcNow`` returns the deployment's fixed start time (default format ``yyyyMMddTHHmmssZ``);
the evaluator allows it, as Azure does, only in parameter default values. ``dateTimeAdd``
takes an ISO 8601 duration (``P1Y2M3DT4H5M6S``, ``-P9D``, ``PT1H``); without a format it keeps
the base value's ISO layout, other layouts come back as ``M/d/yyyy h:mm:ss tt``.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from typing import Any

from strataflow.sandbox.arm_values import Ctx, Spec, fail, integer, spec, text

_STANDARD = {
    "d": "MM/dd/yyyy",
    "D": "dddd, dd MMMM yyyy",
    "f": "dddd, dd MMMM yyyy HH:mm",
    "F": "dddd, dd MMMM yyyy HH:mm:ss",
    "g": "MM/dd/yyyy HH:mm",
    "G": "MM/dd/yyyy HH:mm:ss",
    "m": "MMMM dd",
    "M": "MMMM dd",
    "o": "yyyy-MM-ddTHH:mm:ss.fffffffK",
    "O": "yyyy-MM-ddTHH:mm:ss.fffffffK",
    "r": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
    "R": "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
    "s": "yyyy-MM-ddTHH:mm:ss",
    "t": "HH:mm",
    "T": "HH:mm:ss",
    "u": "yyyy-MM-dd HH:mm:ssZ",
    "U": "dddd, dd MMMM yyyy HH:mm:ss",
    "y": "yyyy MMMM",
    "Y": "yyyy MMMM",
}
_CUSTOM = re.compile(
    r"'[^']*'|\"[^\"]*\"|\\.|yyyy+|yy|y|MMMM+|MMM|MM|M|dddd+|ddd|dd|d|HH|H|hh|h|mm|m|ss|s|f+|F+|tt|t|K|zzz|zz|z|."
)
_DEFAULT_OUTPUT = "M/d/yyyy h:mm:ss tt"


def format_datetime(moment: dt.datetime, pattern: str) -> str:
    """``moment`` in a .NET standard or custom date and time format (invariant culture)."""
    if len(pattern) == 1:
        if pattern not in _STANDARD:
            raise ValueError(f"'{pattern}' is not a valid standard date and time format")
        pattern = _STANDARD[pattern]
    elif pattern.startswith("%"):
        pattern = pattern[1:]
    out: list[str] = []
    for token in _CUSTOM.findall(pattern):
        out.append(_render(moment, token))
    return "".join(out)


def _render(moment: dt.datetime, token: str) -> str:
    simple = {
        "yy": f"{moment.year % 100:02d}",
        "y": str(moment.year % 100),
        "MMM": moment.strftime("%b"),
        "MM": f"{moment.month:02d}",
        "M": str(moment.month),
        "ddd": moment.strftime("%a"),
        "dd": f"{moment.day:02d}",
        "d": str(moment.day),
        "HH": f"{moment.hour:02d}",
        "H": str(moment.hour),
        "hh": f"{(moment.hour % 12) or 12:02d}",
        "h": str((moment.hour % 12) or 12),
        "mm": f"{moment.minute:02d}",
        "m": str(moment.minute),
        "ss": f"{moment.second:02d}",
        "s": str(moment.second),
        "tt": "AM" if moment.hour < 12 else "PM",
        "t": "A" if moment.hour < 12 else "P",
        "K": "Z",
        "z": "+0",
        "zz": "+00",
        "zzz": "+00:00",
    }
    if token in simple:
        return simple[token]
    if token.startswith("yyyy"):
        return str(moment.year).zfill(len(token))
    if token.startswith("MMMM"):
        return moment.strftime("%B")
    if token.startswith("dddd"):
        return moment.strftime("%A")
    if token[0] in "fF" and set(token) == {token[0]}:
        digits = f"{moment.microsecond:06d}0"[: len(token)]
        return digits.rstrip("0") if token[0] == "F" else digits
    if token[0] in "'\"" and len(token) >= 2:
        return token[1:-1]
    if token.startswith("\\"):
        return token[1:]
    return token


_ISO = re.compile(
    r"^(?P<y>\d{4})-?(?P<mo>\d{2})-?(?P<d>\d{2})"
    r"(?:(?P<sep>[T ])(?P<h>\d{2}):?(?P<mi>\d{2})(?::?(?P<s>\d{2})(?:\.(?P<f>\d+))?)?)?"
    r"\s*(?P<tz>Z|[+-]\d{2}:?\d{2})?$",
    re.IGNORECASE,
)


def parse_datetime(name: str, value: str) -> tuple[dt.datetime, str | None]:
    """``(moment in UTC, layout)``: the layout is a custom format reproducing ISO input, else None."""
    match = _ISO.match(value.strip())
    if match:
        parts = match.groupdict()
        micro = int((parts["f"] or "0")[:6].ljust(6, "0"))
        moment = dt.datetime(
            int(parts["y"]),
            int(parts["mo"]),
            int(parts["d"]),
            int(parts["h"] or 0),
            int(parts["mi"] or 0),
            int(parts["s"] or 0),
            micro,
            tzinfo=dt.UTC,
        )
        tz = parts["tz"]
        if tz and tz.upper() != "Z":
            sign = 1 if tz[0] == "+" else -1
            hours, minutes = int(tz[1:3]), int(tz[-2:])
            moment -= sign * dt.timedelta(hours=hours, minutes=minutes)
        if parts["sep"] == " ":
            return moment, None
        dashed = "-" in value[:8]
        layout = "yyyy-MM-dd" if dashed else "yyyyMMdd"
        if parts["h"] is not None:
            layout += "THH:mm:ss" if dashed else "THHmmss"
            if parts["f"]:
                layout += "." + "f" * len(parts["f"])
        if tz:
            layout += "Z"
        return moment, layout
    for pattern in ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y"):
        try:
            return dt.datetime.strptime(value.strip(), pattern).replace(tzinfo=dt.UTC), None
        except ValueError:
            continue
    raise fail(name, f"The provided value '{value}' is not a valid date time.")


_DURATION = re.compile(
    r"^(?P<sign>[+-])?P(?:(?P<Y>\d+)Y)?(?:(?P<M>\d+)M)?(?:(?P<W>\d+)W)?(?:(?P<D>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)


def add_duration(name: str, moment: dt.datetime, duration: str) -> dt.datetime:
    """``moment`` plus an ISO 8601 duration (calendar years and months, then days and times)."""
    match = _DURATION.match(duration.strip())
    if not match or duration.strip().upper() in ("P", "-P", "+P", "PT"):
        raise fail(name, f"The provided duration '{duration}' is not a valid ISO 8601 duration.")
    parts = {k: v for k, v in match.groupdict().items() if k != "sign"}
    sign = -1 if match.group("sign") == "-" else 1
    months = sign * (int(parts["Y"] or 0) * 12 + int(parts["M"] or 0))
    if months:
        total = moment.year * 12 + moment.month - 1 + months
        year, month = divmod(total, 12)
        day = min(moment.day, calendar.monthrange(year, month + 1)[1])
        moment = moment.replace(year=year, month=month + 1, day=day)
    delta = dt.timedelta(
        weeks=int(parts["W"] or 0),
        days=int(parts["D"] or 0),
        hours=int(parts["h"] or 0),
        minutes=int(parts["m"] or 0),
        seconds=float(parts["s"] or 0),
    )
    return moment + sign * delta


def _formatted(name: str, moment: dt.datetime, pattern: str) -> str:
    try:
        return format_datetime(moment, pattern)
    except ValueError as exc:
        raise fail(name, f"The format '{pattern}' is not valid: {exc}.") from exc


def _utc_now(ctx: Ctx, args: list[Any]) -> str:
    pattern = text("utcNow", args[0]) if args else "yyyyMMddTHHmmssZ"
    return _formatted("utcNow", ctx.scope.now, pattern)


def _date_time_add(ctx: Ctx, args: list[Any]) -> str:
    moment, layout = parse_datetime("dateTimeAdd", text("dateTimeAdd", args[0]))
    moment = add_duration("dateTimeAdd", moment, text("dateTimeAdd", args[1]))
    pattern = text("dateTimeAdd", args[2]) if len(args) > 2 else (layout or _DEFAULT_OUTPUT)
    return _formatted("dateTimeAdd", moment, pattern)


def _from_epoch(ctx: Ctx, args: list[Any]) -> str:
    seconds = integer("dateTimeFromEpoch", args[0])
    moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)
    return format_datetime(moment, "yyyy-MM-ddTHH:mm:ssZ")


def _to_epoch(ctx: Ctx, args: list[Any]) -> int:
    moment, _ = parse_datetime("dateTimeToEpoch", text("dateTimeToEpoch", args[0]))
    return int((moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)).total_seconds())


FUNCTIONS: dict[str, Spec] = {
    "utcnow": spec(_utc_now, 0, 1),
    "datetimeadd": spec(_date_time_add, 2, 3),
    "datetimefromepoch": spec(_from_epoch, 1),
    "datetimetoepoch": spec(_to_epoch, 1),
}
