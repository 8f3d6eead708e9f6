"""ARM template semantics for the sandbox emulator: checks, parameters, bodies, outputs, what-if.

Pure functions over JSON-like values; the HTTP side lives in ``strataflow.sandbox.arm``.
Supported: ``parameters`` (types, ``defaultValue``, ``allowedValues``, ``minLength``/
``maxLength``, ``minValue``/``maxValue``, ``nullable``), ``variables`` (with ``copy``),
user-defined ``functions``, ``resources`` (``condition``, ``copy``, ``dependsOn``, child
``resources``, extension resources with ``scope``, nested deployments), ``outputs`` (with
``condition`` and ``copy``), and ``languageVersion`` 2.0 templates (symbolic resource names,
``existing`` resources). Planning lives in ``arm_plan``, providers' read-only properties in
``arm_resources``. Features the sandbox lacks are refused with ``SandboxUnsupported``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

from strataflow.sandbox.arm_eval import ROOT, Frame, Scope, check, evaluate, expand_copy
from strataflow.sandbox.arm_fn_deployment import resource_path
from strataflow.sandbox.arm_parser import is_expression
from strataflow.sandbox.arm_plan import DEPLOYMENTS, Plan, Planned, declarations, plan_resources
from strataflow.sandbox.arm_values import ExpressionError, Unknown, Unsupported, kind

__all__ = [
    "InvalidTemplate",
    "Plan",
    "Planned",
    "bind_parameters",
    "check_template",
    "evaluate_outputs",
    "materialize",
    "parameters_view",
    "plan_resources",
    "resource_path",
    "user_functions",
    "what_if",
]

TYPE_NAMES = {
    "string": "String",
    "securestring": "SecureString",
    "int": "Int",
    "bool": "Bool",
    "array": "Array",
    "object": "Object",
    "secureobject": "SecureObject",
}
_PY_TYPES: dict[str, tuple[str, ...]] = {
    "string": ("String",),
    "securestring": ("String",),
    "int": ("Integer",),
    "bool": ("Boolean",),
    "array": ("Array",),
    "object": ("Object",),
    "secureobject": ("Object",),
}
SECURE = frozenset({"securestring", "secureobject"})
_COMPARED = ("location", "tags", "sku", "kind", "identity", "zones", "properties")
_LANGUAGE_VERSIONS = ("2.0", "1.10-experimental", "2.1-experimental", "1.9-experimental")
_NOT_IN_BODY = (
    "type",
    "name",
    "dependsOn",
    "resources",
    "condition",
    "comments",
    "scope",
    "copy",
    "existing",
    "resourceGroup",
    "subscriptionId",
)


class InvalidTemplate(Exception):
    """The template or its parameters are invalid (Azure answers 400 with this code)."""

    def __init__(self, message: str, code: str = "InvalidTemplate") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(exc: ExpressionError) -> InvalidTemplate:
    """An expression error as the deployment's 400 answer (unsupported features keep their code)."""
    if isinstance(exc, Unsupported):
        return InvalidTemplate(str(exc), exc.code)
    return InvalidTemplate(f"Deployment template validation failed: '{exc}'")


def user_functions(template: Mapping[str, Any]) -> dict[str, Any]:
    """``{"namespace.member": definition}`` (lower case) from the template's ``functions``."""
    found: dict[str, Any] = {}
    for namespace in template.get("functions") or []:
        if not isinstance(namespace, dict) or not isinstance(namespace.get("members"), dict):
            raise InvalidTemplate(
                "Deployment template validation failed: each 'functions' entry needs a 'namespace' and 'members'."
            )
        for name, member in namespace["members"].items():
            found[f"{namespace.get('namespace')}.{name}".lower()] = member
    return found


def check_template(template: Any) -> None:
    """Structural checks and a parse of every expression, as Azure's preflight does."""
    if not isinstance(template, dict):
        raise InvalidTemplate(
            "The request content was invalid: the template must be a JSON object.", "InvalidRequestContent"
        )
    version = template.get("languageVersion")
    if version is not None and str(version) not in _LANGUAGE_VERSIONS:
        raise InvalidTemplate(
            f"Template languageVersion '{version}' is not supported by the strataflow sandbox.", "SandboxUnsupported"
        )
    for key in ("imports", "extensions"):
        if template.get(key):
            raise InvalidTemplate(
                f"The template's '{key}' section is not supported by the strataflow sandbox.", "SandboxUnsupported"
            )
    resources = template.get("resources", [])
    symbolic = version is not None
    if not isinstance(resources, list) and not (symbolic and isinstance(resources, dict)):
        raise InvalidTemplate("Deployment template validation failed: 'resources' must be an array.")
    functions = user_functions(template)
    for index, (_, resource) in enumerate(_flatten(declarations(template))):
        if not isinstance(resource, dict) or not all(k in resource for k in ("type", "name")):
            raise InvalidTemplate(
                f"Deployment template validation failed: the resource at index {index} must have 'type', "
                "'apiVersion' and 'name'."
            )
        if "apiVersion" not in resource and not resource.get("existing"):
            raise InvalidTemplate(
                f"Deployment template validation failed: the resource '{resource['name']}' must have 'apiVersion'."
            )
        loop = resource.get("copy")
        if loop is not None and (not isinstance(loop, dict) or "count" not in loop):
            raise InvalidTemplate(
                f"Deployment template validation failed: the copy of resource '{resource['name']}' must be an "
                "object with a 'name' and a 'count'."
            )
    try:
        sections = ("parameters", "variables", "resources", "outputs")
        check({k: v for k, v in template.items() if k in sections}, functions)
        for member in functions.values():
            check(member.get("output"), functions)
    except ExpressionError as exc:
        raise invalid(exc) from exc


def _flatten(decls: list[tuple[str | None, Any]]) -> list[tuple[str | None, Any]]:
    found: list[tuple[str | None, Any]] = []
    for symbolic, resource in decls:
        found.append((symbolic, resource))
        if isinstance(resource, dict) and isinstance(resource.get("resources"), list):
            found.extend(_flatten([(None, r) for r in resource["resources"]]))
    return found


def bind_parameters(template: dict[str, Any], supplied: Mapping[str, Any], scope: Scope) -> dict[str, Any]:
    """The deployment's parameter values: supplied ``{"name": {"value": v}}`` or defaults, checked."""
    declared: dict[str, Any] = template.get("parameters", {}) or {}
    lowered = {name.lower(): name for name in declared}
    unknown = [name for name in supplied if name.lower() not in lowered]
    if unknown:
        raise InvalidTemplate(
            f"Deployment template validation failed: 'The template parameters '{', '.join(unknown)}' in the parameters "
            "file are not valid; they are not present in the original template and can therefore not be provided "
            "at deployment time. The only supported parameters for this template are "
            f"'{', '.join(declared)}'.'",
        )
    values = _Parameters(declared, supplied, scope)
    scope.parameters = values
    bound = {name: values[name] for name in declared}
    scope.parameters = bound
    return bound


class _Parameters(Mapping[str, Any]):
    """Parameter values bound on first use, so a default may read a parameter declared after it."""

    def __init__(self, declared: dict[str, Any], supplied: Mapping[str, Any], scope: Scope) -> None:
        self.declared, self.supplied, self.scope = declared, supplied, scope
        self.bound: dict[str, Any] = {}
        self.binding: set[str] = set()

    def __getitem__(self, name: str) -> Any:
        if name not in self.bound:
            if name in self.binding:
                raise InvalidTemplate(
                    f"Deployment template validation failed: 'The parameter '{name}' refers to itself through "
                    "its default value.'"
                )
            self.binding.add(name)
            try:
                self.bound[name] = _parameter(name, self.declared[name], self.supplied, self.scope)
            finally:
                self.binding.discard(name)
        return self.bound[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.declared)

    def __len__(self) -> int:
        return len(self.declared)


def _parameter(name: str, spec: dict[str, Any], supplied: Mapping[str, Any], scope: Scope) -> Any:
    param_type = str(spec.get("type", "object" if "$ref" in spec else "string")).lower()
    given = next((v for k, v in supplied.items() if k.lower() == name.lower()), None)
    if isinstance(given, dict) and given.get("value", 0) is None and not spec.get("nullable"):
        given = None  # a null value is no value: the default applies
    if given is not None:
        if not isinstance(given, dict) or "value" not in given:
            if isinstance(given, dict) and "reference" in given:
                raise InvalidTemplate(
                    "A Key Vault parameter reference is not supported by the strataflow sandbox.", "SandboxUnsupported"
                )
            raise InvalidTemplate(
                f"The parameter '{name}' must be given as {{\"value\": ...}}.", "InvalidDeploymentParameterValue"
            )
        value = given["value"]
    elif "defaultValue" in spec:
        try:
            value = evaluate(spec["defaultValue"], scope, Frame(site="default"))
        except ExpressionError as exc:
            raise invalid(exc) from exc
    elif spec.get("nullable"):
        return None
    else:
        raise InvalidTemplate(
            f"Deployment template validation failed: 'The value for the template parameter '{name}' at line "
            "'1' and column '1' is not provided. Please see https://aka.ms/arm-create-parameter-file for usage "
            "details.'"
        )
    if value is None and spec.get("nullable"):
        return None
    value = _coerce(param_type, value)
    expected = _PY_TYPES.get(param_type)
    if expected is None:
        raise InvalidTemplate(
            f"Deployment template validation failed: the parameter '{name}' has unknown type '{param_type}'."
        )
    if "$ref" not in spec and kind(value) not in expected:
        raise InvalidTemplate(
            f"Deployment template validation failed: 'Template parameter JToken type is not valid. Expected "
            f"'{TYPE_NAMES[param_type]}'. Actual '{kind(value)}'. Please see https://aka.ms/arm-deploy for usage "
            f"details.' (parameter '{name}')"
        )
    _constraints(name, spec, value)
    return value


def _coerce(param_type: str, value: Any) -> Any:
    """ARM's conversions of supplied values: ``"42"`` for an int, ``"true"`` for a bool."""
    if param_type == "int" and isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if param_type == "bool" and isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


def _constraints(name: str, spec: dict[str, Any], value: Any) -> None:
    prefix = (
        f"Deployment template validation failed: 'The provided value for the template parameter '{name}' is not valid."
    )
    allowed = spec.get("allowedValues")
    if allowed is not None:
        items = value if isinstance(value, list) else [value]
        if any(item not in allowed for item in items):
            raise InvalidTemplate(
                f"Deployment template validation failed: 'The provided value '{value}' for the template parameter "
                f"'{name}' is not valid. The parameter value is not part of the allowed value(s): "
                f"'{','.join(str(a) for a in allowed)}'.'"
            )
    if isinstance(value, (str, list)):
        if "minLength" in spec and len(value) < int(spec["minLength"]):
            raise InvalidTemplate(
                f"{prefix} Length of the value should be greater than or equal to '{spec['minLength']}'.'"
            )
        if "maxLength" in spec and len(value) > int(spec["maxLength"]):
            raise InvalidTemplate(
                f"{prefix} Length of the value should be less than or equal to '{spec['maxLength']}'.'"
            )
    if isinstance(value, int) and not isinstance(value, bool):
        if "minValue" in spec and value < int(spec["minValue"]):
            raise InvalidTemplate(f"{prefix} The value should be greater than or equal to '{spec['minValue']}'.'")
        if "maxValue" in spec and value > int(spec["maxValue"]):
            raise InvalidTemplate(f"{prefix} The value should be less than or equal to '{spec['maxValue']}'.'")


def parameters_view(template: dict[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as a deployment GET shows them: typed, secure values left out."""
    view: dict[str, Any] = {}
    for name, spec in (template.get("parameters", {}) or {}).items():
        param_type = str(spec.get("type", "object" if "$ref" in spec else "string")).lower()
        entry: dict[str, Any] = {"type": TYPE_NAMES.get(param_type, param_type)}
        if param_type not in SECURE and name in values:
            entry["value"] = values[name]
        view[name] = entry
    return view


def materialize(item: Planned, scope: Scope, *, unknown_as_text: bool = False) -> dict[str, Any]:
    """The resource body the template asks for (no read-only properties).

    A nested deployment keeps its ``properties.template`` unevaluated: it is evaluated by the
    nested deployment itself, in the scope ``expressionEvaluationOptions`` chooses.
    """
    body: dict[str, Any] = {"id": item.id, "name": item.name, "type": item.type}
    for key, value in item.decl.items():
        if key in _NOT_IN_BODY:
            continue
        if key == "properties" and item.type.lower() == DEPLOYMENTS and isinstance(value, dict):
            raw = {k: v for k, v in value.items() if k != "template"}
            props = evaluate(raw, scope, item.frame, unknown_as_text=unknown_as_text)
            if "template" in value:
                nested = value["template"]
                expression = isinstance(nested, str) and is_expression(nested)
                props["template"] = evaluate(nested, scope, item.frame) if expression else copy.deepcopy(nested)
            body[key] = props
            continue
        body[key] = evaluate(value, scope, item.frame, unknown_as_text=unknown_as_text)
    body.setdefault("properties", {})
    return body


def evaluate_outputs(template: dict[str, Any], scope: Scope) -> dict[str, Any]:
    """Outputs as a deployment GET shows them; secure outputs carry no value, as on Azure."""
    outputs: dict[str, Any] = {}
    for name, spec in (template.get("outputs", {}) or {}).items():
        if "condition" in spec and not evaluate(spec["condition"], scope):
            continue
        output_type = str(spec.get("type", "object" if "$ref" in spec else "string")).lower()
        if isinstance(spec.get("copy"), dict):
            value: Any = expand_copy({"name": "", **spec["copy"]}, scope, ROOT, default=True)
        else:
            value = evaluate(spec.get("value"), scope)
        expected = _PY_TYPES.get(output_type)
        if expected is not None and "$ref" not in spec and kind(value) not in expected and value is not None:
            raise InvalidTemplate(
                f"The template output '{name}' is not valid: Template output JToken type is not valid. "
                f"Expected '{TYPE_NAMES[output_type]}'. Actual '{kind(value)}'.",
                "DeploymentOutputEvaluationFailed",
            )
        entry: dict[str, Any] = {"type": TYPE_NAMES.get(output_type, output_type)}
        if output_type not in SECURE:
            entry["value"] = value
        outputs[name] = entry
    return outputs


def plan(template: dict[str, Any], scope: Scope, base: str | None = None) -> Plan:
    """``plan_resources`` with expression errors turned into ``InvalidTemplate``."""
    try:
        return plan_resources(template, scope, base)
    except (ExpressionError, Unknown) as exc:
        if isinstance(exc, ExpressionError):
            raise invalid(exc) from exc
        raise InvalidTemplate(f"Deployment template validation failed: '{exc}'") from exc


# --- what-if -------------------------------------------------------------------------


def what_if(desired: list[dict[str, Any]], existing: list[dict[str, Any]], mode: str) -> list[dict[str, Any]]:
    """Azure's what-if change list: Create, Modify (with a delta), NoChange, Ignore or Delete."""
    changes: list[dict[str, Any]] = []
    current = {r["id"].lower(): r for r in existing}
    wanted = {d["id"].lower() for d in desired}
    for want in desired:
        have = current.get(want["id"].lower())
        if have is None:
            changes.append({"resourceId": want["id"], "changeType": "Create", "after": want})
            continue
        delta: list[dict[str, Any]] = []
        for key in _COMPARED:
            if key in want:
                _diff(want[key], have.get(key), key, delta)
        change = "Modify" if delta else "NoChange"
        after = _merged(have, want)
        changes.append({"resourceId": want["id"], "changeType": change, "before": have, "after": after, "delta": delta})
    for have in existing:
        key = have["id"].lower()
        if key in wanted:
            continue
        child_of_wanted = any(key.startswith(w + "/") for w in wanted)
        change_type = "Delete" if mode.lower() == "complete" and not child_of_wanted else "Ignore"
        changes.append({"resourceId": have["id"], "changeType": change_type, "before": have})
    return changes


def _diff(want: Any, have: Any, path: str, out: list[dict[str, Any]]) -> None:
    if isinstance(want, str) and is_expression(want):
        return  # known only after deployment: what-if cannot tell
    if have is None:
        out.append({"path": path, "propertyChangeType": "Create", "after": want})
    elif isinstance(want, dict) and isinstance(have, dict):
        lowered = {k.lower(): k for k in have}
        for key, value in want.items():
            found = lowered.get(key.lower())
            _diff(value, have[found] if found is not None else None, f"{path}.{key}", out)
    elif isinstance(want, list) and isinstance(have, list) and len(want) == len(have):
        for index, (w, h) in enumerate(zip(want, have, strict=True)):
            _diff(w, h, f"{path}[{index}]", out)
    elif path == "location" and str(want).lower().replace(" ", "") == str(have).lower().replace(" ", ""):
        return
    elif want != have:
        out.append({"path": path, "propertyChangeType": "Modify", "before": have, "after": want})


def _merged(have: Any, want: Any) -> Any:
    if isinstance(have, dict) and isinstance(want, dict):
        merged = dict(have)
        for key, value in want.items():
            merged[key] = _merged(have.get(key), value)
        return merged
    return copy.deepcopy(want)
