"""The ``Parameters`` a CloudFormation template declares (YAML with short-form tags, or JSON).

Every short-form tag loads, whatever its operand (scalar, sequence or mapping): ``!Ref x``
as ``{"Ref": "x"}``, ``!Condition c`` as ``{"Condition": "c"}``, ``!GetAtt a.b`` as
``{"Fn::GetAtt": ["a", "b"]}`` and any other ``!Name`` as ``{"Fn::Name": operand}``, so
``!GetAZs {Ref: ...}``, ``!ImportValue {Fn::Join: ...}`` and macros' own tags all load.

CloudFormation parameter values are strings, so plain scalars that YAML would read as
numbers, booleans or dates are kept as their source text (``Default: 1.30`` stays
``"1.30"``, ``NoEcho: true`` is ``"true"``); JSON numbers likewise, and JSON ``true``/``false``
defaults and allowed values become ``"true"``/``"false"``.

Types normalize to ``number`` (``Number``), ``list`` (``CommaDelimitedList``,
``List<Number>``, ``List<AWS::EC2::Subnet::Id>``) and ``string`` (``String``, the other
AWS-specific types, and ``AWS::SSM::Parameter::Value<...>``, whose value is the name of an
SSM parameter). ``NoEcho`` (``true`` or ``"true"``) marks a parameter secure.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from strataflow.templateparams import jsonpos
from strataflow.templateparams.jsonpos import PosDict
from strataflow.templateparams.model import Declared, ParamType, TemplateParameters, TemplateParamsError


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps key positions, keeps scalars as text, and accepts every ``!Tag``."""


def _mapping(loader: _Loader, node: yaml.MappingNode) -> PosDict:
    loader.flatten_mapping(node)
    result = PosDict()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, (dict, list)):
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            )
        key = str(key)
        result[key] = loader.construct_object(value_node, deep=True)
        result.positions[key] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
    return result


def _text(loader: _Loader, node: yaml.Node) -> str:
    assert isinstance(node, yaml.ScalarNode)
    return str(loader.construct_scalar(node))


def _short_form(loader: _Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    operand: Any
    if isinstance(node, yaml.ScalarNode):
        operand = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        operand = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        operand = _mapping(loader, node)
    if suffix == "GetAtt" and isinstance(operand, str):
        operand = operand.split(".", 1)
    key = suffix if suffix in {"Ref", "Condition"} else f"Fn::{suffix}"
    return {key: operand}


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
for _tag in ("int", "float", "bool", "timestamp"):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _text)
_Loader.add_multi_constructor("!", _short_form)

_LIST = re.compile(r"^(CommaDelimitedList|List<.+>)$")
_KNOWN = re.compile(r"^(String|Number|CommaDelimitedList|List<.+>|AWS::[A-Za-z0-9]+::.+)$")


def normalize_type(raw: str) -> ParamType:
    """``Number`` -> number; CommaDelimitedList and ``List<...>`` -> list; everything else -> string."""
    if raw == "Number":
        return "number"
    if _LIST.match(raw):
        return "list"
    return "string"


def _load(text: str, path: Path) -> Any:
    if text.lstrip("\ufeff \t\r\n").startswith("{"):
        return jsonpos.load(text, path, number=str)
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        if mark is None:
            raise TemplateParamsError(f"invalid YAML: {what}", path) from None
        line, column = mark.line + 1, mark.column + 1
        raise TemplateParamsError(f"invalid YAML: {what}", path, line, column) from None
    except yaml.YAMLError as exc:
        raise TemplateParamsError(f"invalid YAML: {exc}", path) from None


def _bool(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _int(value: Any, name: str, key: str, path: Path, line: int | None) -> int | None:
    number = _float(value, name, key, path, line)
    return None if number is None else int(number)


def _float(value: Any, name: str, key: str, path: Path, line: int | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TemplateParamsError(f"parameter '{name}': {key} {value!r} is not a number", path, line) from None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _textual(value: Any) -> Any:
    """A JSON template's ``true``/``false`` as the text a YAML template would give."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def read_cloudformation(path: Path | str) -> TemplateParameters:
    """The parameters the CloudFormation template at ``path`` declares."""
    path = Path(path)
    template = _load(jsonpos.read_text(path), path)
    if template is None:
        template = PosDict()
    if not isinstance(template, PosDict):
        raise TemplateParamsError("is not a CloudFormation template: the top level is not a mapping", path, 1, 1)
    section = template.get("Parameters")
    if section is None:
        return TemplateParameters("cloudformation", path, (), (path,))
    if not isinstance(section, PosDict):
        line = template.positions["Parameters"][0]
        raise TemplateParamsError("'Parameters' is not a mapping of parameter names to declarations", path, line)
    declared = [_declared(name, spec, section.positions[name], path) for name, spec in section.items()]
    return TemplateParameters("cloudformation", path, tuple(declared), (path,))


def load_template_document(path: Path | str) -> dict[str, Any]:
    """The whole CloudFormation template at ``path`` as plain mappings (scalars as their source text).

    YAML with short-form tags or JSON, read as ``read_cloudformation`` reads it; raises
    ``TemplateParamsError`` (with the line) when it is not a template. Pure: for readers of
    the whole template, such as the cost estimate.
    """
    path = Path(path)
    template = _load(jsonpos.read_text(path), path)
    if not isinstance(template, dict):
        raise TemplateParamsError("is not a CloudFormation template: the top level is not a mapping", path, 1, 1)
    return template


def _declared(name: str, spec: Any, position: tuple[int, int], path: Path) -> Declared:
    line, column = position
    if not isinstance(spec, dict):
        raise TemplateParamsError(f"parameter '{name}' is not a mapping (it needs at least 'Type')", path, line, column)
    raw = spec.get("Type")
    if not isinstance(raw, str) or not raw.strip():
        raise TemplateParamsError(f"parameter '{name}' has no 'Type'", path, line, column)
    raw = raw.strip()
    if not _KNOWN.match(raw):
        raise TemplateParamsError(
            f"parameter '{name}' has unknown Type '{raw}'; use String, Number, List<Number>, "
            "CommaDelimitedList or an AWS-specific type",
            path,
            line,
            column,
        )
    allowed = spec.get("AllowedValues")
    if allowed is not None and not isinstance(allowed, list):
        allowed = [allowed]
    return Declared(
        name=name,
        type=normalize_type(raw),
        raw_type=raw,
        required="Default" not in spec,
        file=path,
        line=line,
        column=column,
        default=_textual(spec.get("Default")),
        allowed=None if allowed is None else tuple(_textual(a) for a in allowed),
        pattern=_str(spec.get("AllowedPattern")),
        min_length=_int(spec.get("MinLength"), name, "MinLength", path, line),
        max_length=_int(spec.get("MaxLength"), name, "MaxLength", path, line),
        min_value=_float(spec.get("MinValue"), name, "MinValue", path, line),
        max_value=_float(spec.get("MaxValue"), name, "MaxValue", path, line),
        secure=_bool(spec.get("NoEcho")),
        description=_str(spec.get("Description")),
        constraint_description=_str(spec.get("ConstraintDescription")),
    )
