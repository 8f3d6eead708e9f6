"""Given parameters against what a template declares: unknown names, missing required ones, bad values.

Names and required-ness are always checked. A value that holds a ``${...}`` reference
anywhere is known only at run time, so its value checks are skipped. A ``None`` value is
"not given" where the backend would send nothing (CloudFormation leaves it out, ARM would
send null, Terraform keeps null only for a nullable variable).

How values are judged follows what each backend does with them:

- CloudFormation: every value is sent as text (``true``/``false``, lists comma-joined,
  mappings as JSON), so ``"3"`` and ``3`` are both a fine ``Number``; AllowedValues,
  AllowedPattern (the whole value) and MinLength/MaxLength apply to that text and, for
  CommaDelimitedList, to each (space-trimmed) element; ``List<Number>`` needs numeric
  elements. AWS::SSM::Parameter::Value types are not value-checked (the value is a name).
- ARM (and Bicep): values go as JSON in the parameters object and Azure rejects a JSON type
  that differs from the declared one ("Template parameter JToken type is not valid"), so a
  string ``"3"`` for ``int`` and ``"true"`` for ``bool`` are type issues. Names and string
  allowed values compare case-insensitively, as ARM does; for an ``array`` every element
  must be allowed; lengths count characters or elements.
- Terraform: values are converted to the type constraint as Terraform converts
  ``.tfvars.json`` values (see ``tftypes.conform``); an undeclared name only draws a warning
  from Terraform and is ignored, so it is reported as a likely typo.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from strataflow.templateparams import tftypes
from strataflow.templateparams.model import Declared, Issue, IssueKind, TemplateParameters

REFERENCE = re.compile(r"\$\{[^{}]*\}")
_MAX_NAMES = 25
_JSON_KINDS = {bool: "a bool", int: "an int", float: "a number", str: "a string", list: "an array", dict: "an object"}
_ARM_ACCEPTS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "secure-string": (str,),
    "int": (int,),
    "bool": (bool,),
    "object": (dict,),
    "secure-object": (dict,),
    "list": (list,),
}


def has_reference(value: Any) -> bool:
    """True when ``value`` holds a ``${...}`` anywhere (in a string, a list or a mapping's keys or values)."""
    if isinstance(value, str):
        return REFERENCE.search(value) is not None
    if isinstance(value, Mapping):
        return any(has_reference(k) or has_reference(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(has_reference(v) for v in value)
    return False


def as_text(value: Any) -> str:
    """A value as CloudFormation receives it (the way strataflow's CloudFormation backend sends it)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(as_text(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True, default=str)
    return "" if value is None else str(value)


def _short(value: Any) -> str:
    text = f"'{value}'" if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind_of(value: Any) -> str:
    for kind, name in _JSON_KINDS.items():
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _suggest(word: str, options: list[str], fold: bool = False) -> str:
    if fold:
        folded = {o.casefold(): o for o in options}
        close = difflib.get_close_matches(word.casefold(), list(folded), n=1, cutoff=0.6)
        close = [folded[c] for c in close]
    else:
        close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_NAMES])
    return shown + (f" and {len(names) - _MAX_NAMES} more" if len(names) > _MAX_NAMES else "")


class _Checker:
    def __init__(self, declared: TemplateParameters, root: Path | None) -> None:
        self.declared = declared
        self.root = root
        self.noun = "variable" if declared.backend == "terraform" else "parameter"
        self.issues: list[Issue] = []

    def path(self, path: Path) -> str:
        if self.root is not None:
            try:
                return str(path.relative_to(self.root))
            except ValueError:
                pass
        return str(path)

    def where(self, d: Declared) -> str:
        return self.path(d.file) + (f":{d.line}" if d.line is not None else "")

    def subject(self, d: Declared, value: Any) -> str:
        shown = " (secure, value not shown)" if d.secure else f" = {_short(value)}"
        return f"{self.noun} '{d.name}'{shown}"

    def add(self, kind: IssueKind, d: Declared, message: str) -> None:
        self.issues.append(Issue(kind, d.name, message, d.file, d.line, d.column))

    def unknown(self, name: str) -> None:
        declared = self.declared
        names = list(declared.names)
        what = "module" if declared.backend == "terraform" else "template"
        by = f"module {self.path(declared.source)}" if declared.backend == "terraform" else self.path(declared.source)
        message = f"{self.noun} '{name}' is not declared by {by}"
        message += _suggest(name, names, fold=declared.case_insensitive)
        message += f"; declared: {_listing(names)}" if names else f"; the {what} declares no {self.noun}s"
        if declared.backend == "terraform":
            message += "; terraform would only warn 'Value for undeclared variable' and ignore the value"
        elif "did you mean" not in message:
            message += f"; remove it or declare it in the {what}"
        self.issues.append(Issue("unknown", name, message))

    def missing(self, d: Declared, null: bool) -> None:
        state = "is given as null" if null else "is not given"
        self.add(
            "missing",
            d,
            f"{self.noun} '{d.name}' is required by {self.where(d)} (it has no default) but {state}; "
            f"add a value for it under parameters:",
        )

    def not_allowed(self, d: Declared, value: Any, options: list[str], element: bool = False) -> None:
        item = f"element {_short(value)} of " if element and not d.secure else ""
        hint = (
            "" if d.secure or not isinstance(value, str) else _suggest(value, options, self.declared.case_insensitive)
        )
        if isinstance(value, float) and any(_same_number(value, o) for o in options):
            hint = f" (YAML read the number {value}: quote the value to keep its digits)"
        subject = f"{self.noun} '{d.name}'" if item or d.secure else self.subject(d, value)
        self.add(
            "not_allowed",
            d,
            f"{item}{subject} is not one of the allowed values declared at {self.where(d)}: {_listing(options)}{hint}",
        )

    def lengths(self, d: Declared, size: int, unit: str) -> None:
        low, high = d.min_length, d.max_length
        if (low is not None and size < low) or (high is not None and size > high):
            bounds = " and ".join(
                part
                for part in (
                    f"at least {low}" if low is not None else "",
                    f"at most {high}" if high is not None else "",
                )
                if part
            )
            self.add("length", d, f"{self.noun} '{d.name}' has {size} {unit}; {self.where(d)} allows {bounds} {unit}")

    def range(self, d: Declared, number: float, value: Any) -> None:
        if d.min_value is not None and number < d.min_value:
            self.add(
                "range", d, f"{self.subject(d, value)} is below the minimum {_num(d.min_value)} set at {self.where(d)}"
            )
        elif d.max_value is not None and number > d.max_value:
            self.add(
                "range", d, f"{self.subject(d, value)} is above the maximum {_num(d.max_value)} set at {self.where(d)}"
            )

    def type(self, d: Declared, value: Any, problem: str) -> None:
        self.add("type", d, f"{self.subject(d, value)} {problem} ({d.raw_type or d.type}, declared at {self.where(d)})")


def _same_number(value: float, text: str) -> bool:
    return tftypes.NUMBER.match(text) is not None and float(text) == value


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _cloudformation(c: _Checker, d: Declared, value: Any) -> None:
    if d.raw_type.startswith("AWS::SSM::Parameter::Value"):
        return
    options = [as_text(a) for a in d.allowed or ()]
    if d.type == "number":
        text = as_text(value).strip()
        if isinstance(value, (list, tuple, Mapping)) or not tftypes.NUMBER.match(text):
            c.type(d, value, "is not a number; CloudFormation needs digits such as 3 or 2.5")
            return
        c.range(d, float(text), value)
        if d.allowed is not None and text not in options:
            c.not_allowed(d, value, options)
        return
    if d.type == "list":
        if isinstance(value, Mapping):
            c.type(d, value, "is a mapping; give a list or a comma-separated string")
            return
        items = [as_text(v) for v in value] if isinstance(value, (list, tuple)) else as_text(value).split(",")
        items = [item.strip() for item in items]  # CloudFormation trims each element
        if d.raw_type == "List<Number>" and not all(tftypes.NUMBER.match(item) for item in items):
            c.type(d, value, "has an element that is not a number")
            return
        outside = [item for item in items if d.allowed is not None and item not in options]
        if outside:
            c.not_allowed(d, outside[0], options, element=True)
        _pattern(c, d, items, value)
        return
    text = as_text(value)
    if d.allowed is not None and text not in options:
        c.not_allowed(d, value, options)
    _pattern(c, d, [text], value)
    c.lengths(d, len(text), "characters")


def _pattern(c: _Checker, d: Declared, texts: list[str], value: Any) -> None:
    if d.pattern is None:
        return
    try:
        pattern = re.compile(d.pattern)
    except re.error:
        return  # a Java-only construct: CloudFormation will judge it
    if all(pattern.fullmatch(text) for text in texts):
        return
    reason = f" ({d.constraint_description})" if d.constraint_description else ""
    c.add(
        "pattern",
        d,
        f"{c.subject(d, value)} does not match AllowedPattern '{d.pattern}' set at {c.where(d)}{reason}",
    )


def _arm_same(given: Any, allowed: Any) -> bool:
    if isinstance(given, str) and isinstance(allowed, str):
        return given.casefold() == allowed.casefold()
    return type(given) is type(allowed) and bool(given == allowed)


def _arm(c: _Checker, d: Declared, value: Any) -> None:
    accepts = _ARM_ACCEPTS.get(d.type)
    if accepts is not None and (not isinstance(value, accepts) or (d.type == "int" and isinstance(value, bool))):
        fix = ""
        if d.type == "int" and isinstance(value, str) and value.strip().lstrip("-").isdigit():
            fix = f"; write {value.strip()} without quotes"
        elif d.type == "bool" and isinstance(value, str) and value.lower() in {"true", "false"}:
            fix = f"; write {value.lower()} without quotes"
        wanted = _JSON_KINDS[accepts[0]]
        c.type(d, value, f"is {_kind_of(value)}, but Azure requires {wanted} here and would reject it{fix}")
        return
    if d.allowed is not None and not any(_arm_same(value, a) for a in d.allowed):
        options = [a if isinstance(a, str) else json.dumps(a) for a in d.allowed]
        if not isinstance(value, list):
            c.not_allowed(d, value, options)
        elif bad := [v for v in value if not any(_arm_same(v, a) for a in d.allowed)]:
            c.not_allowed(d, bad[0], options, element=True)  # an array may hold any of the allowed values
    if isinstance(value, str):
        c.lengths(d, len(value), "characters")
    elif isinstance(value, list):
        c.lengths(d, len(value), "elements")
    elif isinstance(value, int) and not isinstance(value, bool):
        c.range(d, value, value)


def _terraform(c: _Checker, d: Declared, value: Any) -> None:
    problem = tftypes.conform(value, tftypes.parse(d.raw_type or None))
    if problem is not None:
        c.type(d, value, f"does not fit the variable's type: {problem}")


_VALUE_CHECKS: dict[str, Callable[[_Checker, Declared, Any], None]] = {
    "cloudformation": _cloudformation,
    "arm": _arm,
    "terraform": _terraform,
}


def check(
    declared: TemplateParameters,
    given: Mapping[str, Any],
    *,
    backend: str | None = None,
    root: Path | str | None = None,
    unknown: Callable[[Any], bool] | None = None,
) -> list[Issue]:
    """Issues with ``given`` (name -> value) against ``declared``: unknown names and bad values in ``given``'s order, then missing ones.

    ``backend``, when passed, must be the backend the template was read for (a guard
    against checking Terraform variables with ARM rules); ``root`` shortens the paths in
    messages to be relative to it; ``unknown`` says which other values are not known yet
    (a plan's ``(known after apply)``): like references, their values are not checked.
    """
    if backend is not None and backend != declared.backend:
        raise ValueError(f"parameters read for {declared.backend} cannot be checked as {backend}")
    checker = _Checker(declared, None if root is None else Path(root))
    values: dict[str, Any] = {}
    for name, value in given.items():
        d = declared.get(name)
        if d is None:
            checker.unknown(name)
            continue
        values[d.name] = value
        if value is not None and not has_reference(value) and not (unknown is not None and unknown(value)):
            _VALUE_CHECKS[declared.backend](checker, d, value)
    for d in declared.parameters:
        if not d.required:
            continue
        if d.name not in values:
            checker.missing(d, null=False)
        elif values[d.name] is None and not (declared.backend == "terraform" and d.nullable):
            checker.missing(d, null=True)
    return checker.issues
