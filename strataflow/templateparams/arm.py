"""The ``parameters`` an Azure Resource Manager template declares: ARM JSON, or Bicep (``.bicep``).

ARM JSON is read as Azure reads it: ``//`` and ``/* */`` comments, trailing commas and
line breaks inside strings are accepted. Types are case-insensitive: ``string``,
``securestring`` (secure-string), ``int``, ``bool``, ``object``, ``secureObject``
(secure-object), ``array`` (list); a languageVersion 2.0 parameter typed by ``$ref`` is
``any``, and so is one with no type at all. A parameter is optional when it has a ``defaultValue`` (an expression such as
``"[resourceGroup().location]"`` counts) or ``"nullable": true``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from strataflow.templateparams import jsonpos
from strataflow.templateparams.jsonpos import PosDict
from strataflow.templateparams.model import Declared, ParamType, TemplateParameters, TemplateParamsError

TYPES: dict[str, ParamType] = {
    "string": "string",
    "securestring": "secure-string",
    "int": "int",
    "bool": "bool",
    "object": "object",
    "secureobject": "secure-object",
    "array": "list",
}


def read_arm(path: Path | str) -> TemplateParameters:
    """The parameters of the ARM JSON template (or, for a ``.bicep`` file, the Bicep file) at ``path``."""
    path = Path(path)
    if path.suffix.lower() == ".bicep":
        from strataflow.templateparams.bicep import read_bicep

        return read_bicep(path)
    template = jsonpos.load(jsonpos.read_text(path), path)
    if not isinstance(template, PosDict):
        raise TemplateParamsError("is not an ARM template: the top level is not a JSON object", path, 1, 1)
    section = template.get("parameters")
    if section is None:
        return TemplateParameters("arm", path, (), (path,))
    if not isinstance(section, PosDict):
        line, column = template.positions["parameters"]
        raise TemplateParamsError(
            "'parameters' is not an object of parameter names to declarations", path, line, column
        )
    declared = [_declared(name, spec, section.positions[name], path) for name, spec in section.items()]
    return TemplateParameters("arm", path, tuple(declared), (path,))


def load_template_document(path: Path | str) -> dict[str, Any]:
    """The whole ARM JSON template at ``path`` (comments and trailing commas accepted, as Azure reads it).

    Raises ``TemplateParamsError`` when it is not a JSON object, or is Bicep (compile it with
    ``bicep build`` first: this reader runs no program).
    """
    path = Path(path)
    if path.suffix.lower() == ".bicep":
        raise TemplateParamsError("is Bicep; only ARM JSON is read here (compile it with `bicep build`)", path)
    template = jsonpos.load(jsonpos.read_text(path), path)
    if not isinstance(template, dict):
        raise TemplateParamsError("is not an ARM template: the top level is not a JSON object", path, 1, 1)
    return template


def _number(spec: dict[str, Any], key: str, name: str, path: Path, line: int) -> int | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TemplateParamsError(f"parameter '{name}': {key} {value!r} is not an integer", path, line)
    return value


def _declared(name: str, spec: Any, position: tuple[int, int], path: Path) -> Declared:
    line, column = position
    if not isinstance(spec, dict):
        raise TemplateParamsError(f"parameter '{name}' is not an object (it needs at least 'type')", path, line, column)
    raw = spec.get("type")
    if raw is None:  # languageVersion 2.0: a "$ref" to a definition, or a resource-derived type
        kind: ParamType = "any"
        raw = str(spec.get("$ref", ""))
    elif isinstance(raw, str) and raw.lower() in TYPES:
        kind = TYPES[raw.lower()]
    else:
        raise TemplateParamsError(
            f"parameter '{name}' has unknown type {raw!r}; "
            "use string, securestring, int, bool, object, secureObject or array",
            path,
            line,
            column,
        )
    allowed = spec.get("allowedValues")
    if allowed is not None and not isinstance(allowed, list):
        raise TemplateParamsError(f"parameter '{name}': allowedValues is not an array", path, line, column)
    metadata = spec.get("metadata")
    description = metadata.get("description") if isinstance(metadata, dict) else None
    nullable = spec.get("nullable") is True
    return Declared(
        name=name,
        type=kind,
        raw_type=raw,
        required="defaultValue" not in spec and not nullable,
        file=path,
        line=line,
        column=column,
        default=spec.get("defaultValue"),
        allowed=None if allowed is None else tuple(allowed),
        min_length=_number(spec, "minLength", name, path, line),
        max_length=_number(spec, "maxLength", name, path, line),
        min_value=_number(spec, "minValue", name, path, line),
        max_value=_number(spec, "maxValue", name, path, line),
        secure=kind in {"secure-string", "secure-object"},
        nullable=nullable,
        description=description if isinstance(description, str) else None,
    )
