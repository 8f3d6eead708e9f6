"""ARM template semantics for the sandbox emulator: parameters, resources, outputs, what-if.

Pure functions over JSON-like values; the HTTP side lives in ``strataflow.sandbox.arm``.
Supported template features: ``parameters`` (types, ``defaultValue``, ``allowedValues``),
``variables``, ``resources`` (``condition``, ``dependsOn``, nested child ``resources``,
extension resources with ``scope``) and ``outputs``. ``copy`` loops, ``functions``,
``templateLink`` and symbolic-name templates (``languageVersion`` 2.0) are refused with
``InvalidTemplate``, naming the feature. A few resource providers' read-only properties are
filled in by ``computed`` (login servers, FQDNs, identity ids, ...), so outputs that read
them through ``reference()`` work as on Azure.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from strataflow.sandbox.arm_expressions import (
    ExpressionError,
    Scope,
    Unknown,
    check,
    evaluate,
    is_expression,
    resource_path,
)

TYPE_NAMES = {
    "string": "String",
    "securestring": "SecureString",
    "int": "Int",
    "bool": "Bool",
    "array": "Array",
    "object": "Object",
    "secureobject": "SecureObject",
}
_PY_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "securestring": str,
    "int": int,
    "bool": bool,
    "array": list,
    "object": dict,
    "secureobject": dict,
}
SECURE = frozenset({"securestring", "secureobject"})
_COMPARED = ("location", "tags", "sku", "kind", "identity", "zones", "properties")
_UNSUPPORTED = {
    "copy": "copy loops",
    "functions": "user-defined functions",
    "languageVersion": "symbolic-name templates",
}


class InvalidTemplate(Exception):
    """The template or its parameters are invalid (Azure answers 400 with this code)."""

    def __init__(self, message: str, code: str = "InvalidTemplate") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Planned:
    """One resource of a template, its id known, its body not yet evaluated."""

    decl: dict[str, Any]
    type: str
    name: str
    id: str
    depends_on: list[str]


def check_template(template: Any) -> None:
    """Structural checks and a parse of every expression, as Azure's preflight does."""
    if not isinstance(template, dict):
        raise InvalidTemplate(
            "The request content was invalid: the template must be a JSON object.", "InvalidRequestContent"
        )
    for key, feature in _UNSUPPORTED.items():
        if key in template:
            raise InvalidTemplate(f"The sandbox ARM emulator does not support {feature} ('{key}').")
    resources = template.get("resources", [])
    if not isinstance(resources, list):
        raise InvalidTemplate("Deployment template validation failed: 'resources' must be an array.")
    for index, resource in enumerate(_flatten_decls(resources)):
        if not isinstance(resource, dict) or not all(k in resource for k in ("type", "apiVersion", "name")):
            raise InvalidTemplate(
                f"Deployment template validation failed: the resource at index {index} "
                "must have 'type', 'apiVersion' and 'name'."
            )
        if "copy" in resource:
            raise InvalidTemplate("The sandbox ARM emulator does not support copy loops ('copy').")
    try:
        check({k: v for k, v in template.items() if k in ("parameters", "variables", "resources", "outputs")})
    except ExpressionError as exc:
        raise InvalidTemplate(f"Deployment template validation failed: '{exc}'") from exc


def _flatten_decls(resources: list[Any]) -> list[Any]:
    found: list[Any] = []
    for resource in resources:
        found.append(resource)
        if isinstance(resource, dict) and isinstance(resource.get("resources"), list):
            found.extend(_flatten_decls(resource["resources"]))
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
            "InvalidTemplate",
        )
    values: dict[str, Any] = {}
    scope.parameters = values
    for name, spec in declared.items():
        kind = str(spec.get("type", "string")).lower()
        given = next((v for k, v in supplied.items() if k.lower() == name.lower()), None)
        if given is not None:
            if not isinstance(given, dict) or "value" not in given:
                raise InvalidTemplate(
                    f"The parameter '{name}' must be given as {{\"value\": ...}}.", "InvalidDeploymentParameterValue"
                )
            value = given["value"]
        elif "defaultValue" in spec:
            try:
                value = evaluate(spec["defaultValue"], scope)
            except ExpressionError as exc:
                raise InvalidTemplate(f"Deployment template validation failed: '{exc}'") from exc
        else:
            raise InvalidTemplate(
                f"Deployment template validation failed: 'The value for the template parameter '{name}' at line "
                "'1' and column '1' is not provided. Please see https://aka.ms/arm-create-parameter-file for usage "
                "details.'"
            )
        expected = _PY_TYPES.get(kind)
        if expected is None:
            raise InvalidTemplate(
                f"Deployment template validation failed: the parameter '{name}' has unknown type '{kind}'."
            )
        if not isinstance(value, expected) or (kind == "int" and isinstance(value, bool)):
            raise InvalidTemplate(
                f"Deployment template validation failed: 'Template parameter JToken type is not valid. Expected "
                f"'{TYPE_NAMES[kind]}'. Actual '{_json_kind(value)}'. Please see https://aka.ms/arm-deploy for usage "
                f"details.' (parameter '{name}')"
            )
        allowed = spec.get("allowedValues")
        if allowed is not None and value not in allowed:
            raise InvalidTemplate(
                f"Deployment template validation failed: 'The provided value '{value}' for the template parameter "
                f"'{name}' is not valid. The parameter value is not part of the allowed value(s): "
                f"'{','.join(str(a) for a in allowed)}'.'"
            )
        values[name] = value
    return values


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    names: dict[type, str] = {str: "String", list: "Array", dict: "Object"}
    return names.get(type(value), "Null")


def parameters_view(template: dict[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as a deployment GET shows them: typed, secure values left out."""
    view: dict[str, Any] = {}
    for name, spec in (template.get("parameters", {}) or {}).items():
        kind = str(spec.get("type", "string")).lower()
        entry: dict[str, Any] = {"type": TYPE_NAMES.get(kind, kind)}
        if kind not in SECURE and name in values:
            entry["value"] = values[name]
        view[name] = entry
    return view


def plan_resources(template: dict[str, Any], scope: Scope) -> list[Planned]:
    """The template's resources (conditions applied, children flattened) in dependency order."""
    planned: list[Planned] = []
    try:
        _collect(template.get("resources", []), scope, planned, parent=None)
        by_id = {p.id.lower(): p for p in planned}
        for item in planned:
            raw = [evaluate(d, scope) for d in item.decl.get("dependsOn", [])]
            item.depends_on = [*item.depends_on, *(_resolve(str(d), planned) for d in raw)]
            item.depends_on = [d for d in item.depends_on if d.lower() in by_id]
    except (ExpressionError, Unknown) as exc:
        raise InvalidTemplate(f"Deployment template validation failed: '{exc}'") from exc
    return _topological(planned)


def _collect(resources: list[Any], scope: Scope, out: list[Planned], parent: Planned | None) -> None:
    for decl in resources:
        if "condition" in decl and not evaluate(decl["condition"], scope):
            continue
        kind, name = str(evaluate(decl["type"], scope)), str(evaluate(decl["name"], scope))
        depends: list[str] = []
        if parent is not None and "/" not in kind:
            kind, name = f"{parent.type}/{kind}", f"{parent.name}/{name}"
            depends.append(parent.id)
        base = scope.group_id
        if "scope" in decl:  # an extension resource: on a resource id, or 'NS/type/name' in this group
            target = str(evaluate(decl["scope"], scope))
            parts = target.strip("/").split("/")
            base = (
                target
                if target.startswith("/")
                else base + resource_path("/".join(parts[0:2] + parts[3::2]), parts[2::2])
            )
        resource_id = base + resource_path(kind, name.split("/"))
        item = Planned(decl, kind, name, resource_id, depends)
        out.append(item)
        if isinstance(decl.get("resources"), list):
            _collect(decl["resources"], scope, out, item)


def _resolve(dependency: str, planned: list[Planned]) -> str:
    lowered = dependency.lower()
    for item in planned:
        full = f"{item.type}/{item.name}".lower()
        if lowered in (item.id.lower(), full, item.name.lower()) or item.id.lower().endswith("/" + lowered):
            return item.id
    raise InvalidTemplate(
        f"Deployment template validation failed: 'The resource '{dependency}' is not defined in the template.'"
    )


def _topological(planned: list[Planned]) -> list[Planned]:
    done: list[Planned] = []
    placed: set[str] = set()
    pending = list(planned)
    while pending:
        ready = [p for p in pending if all(d.lower() in placed for d in p.depends_on if d.lower() != p.id.lower())]
        if not ready:
            names = ", ".join(p.name for p in pending)
            raise InvalidTemplate(
                f"Deployment template validation failed: 'Circular dependency detected on resources: '{names}'.'"
            )
        for item in ready:
            done.append(item)
            placed.add(item.id.lower())
            pending.remove(item)
    return done


def materialize(item: Planned, scope: Scope, *, unknown_as_text: bool = False) -> dict[str, Any]:
    """The resource body the template asks for (no read-only properties)."""
    body: dict[str, Any] = {"id": item.id, "name": item.name, "type": item.type}
    for key, value in item.decl.items():
        if key in ("type", "name", "dependsOn", "resources", "condition", "comments", "scope", "copy"):
            continue
        body[key] = evaluate(value, scope, unknown_as_text=unknown_as_text)
    body.setdefault("properties", {})
    return body


def evaluate_outputs(template: dict[str, Any], scope: Scope) -> dict[str, Any]:
    """Outputs as a deployment GET shows them; secure outputs carry no value, as on Azure."""
    outputs: dict[str, Any] = {}
    for name, spec in (template.get("outputs", {}) or {}).items():
        if "condition" in spec and not evaluate(spec["condition"], scope):
            continue
        kind = str(spec.get("type", "string")).lower()
        value = evaluate(spec.get("value"), scope)
        expected = _PY_TYPES.get(kind)
        if expected is not None and not isinstance(value, expected):
            raise InvalidTemplate(
                f"The template output '{name}' is not valid: expected '{TYPE_NAMES[kind]}', got '{_json_kind(value)}'.",
                "DeploymentOutputEvaluationFailed",
            )
        entry: dict[str, Any] = {"type": TYPE_NAMES.get(kind, kind)}
        if kind not in SECURE:
            entry["value"] = value
        outputs[name] = entry
    return outputs


# --- resource providers' read-only properties ----------------------------------------


def _guid_of(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts).lower()))


def _short_hash(text: str, size: int = 8) -> str:
    return hashlib.sha256(text.lower().encode()).hexdigest()[:size]


def _identity(resource: dict[str, Any], scope: Scope) -> list[dict[str, Any]]:
    props = resource["properties"]
    props.setdefault("tenantId", scope.tenant_id)
    props.setdefault("principalId", _guid_of(resource["id"], "principal"))
    props.setdefault("clientId", _guid_of(resource["id"], "client"))
    return []


def _registry(resource: dict[str, Any], scope: Scope) -> list[dict[str, Any]]:
    resource["properties"].setdefault("loginServer", f"{resource['name'].lower()}.azurecr.io")
    return []


def _cluster(resource: dict[str, Any], scope: Scope) -> list[dict[str, Any]]:
    props, location = resource["properties"], str(resource.get("location", scope.location)).lower()
    prefix = props.get("dnsPrefix", resource["name"])
    props.setdefault("fqdn", f"{prefix}-{_short_hash(resource['id'])}.hcp.{location}.azmk8s.io")
    props.setdefault("nodeResourceGroup", f"MC_{scope.resource_group}_{resource['name']}_{location}")
    props.setdefault("kubernetesVersion", "1.29.9")
    props.setdefault("powerState", {"code": "Running"})
    kubelet = (
        f"{scope.group_id}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{resource['name']}-agentpool"
    )
    props.setdefault(
        "identityProfile",
        {
            "kubeletidentity": {
                "resourceId": kubelet,
                "clientId": _guid_of(kubelet, "client"),
                "objectId": _guid_of(kubelet, "principal"),
            }
        },
    )
    if (props.get("oidcIssuerProfile") or {}).get("enabled"):
        props["oidcIssuerProfile"]["issuerURL"] = (
            f"https://{location}.oic.prod-aks.azure.com/{scope.tenant_id}/{_guid_of(resource['id'])}/"
        )
    return []


def _workspace(resource: dict[str, Any], scope: Scope) -> list[dict[str, Any]]:
    resource["properties"].setdefault("customerId", _guid_of(resource["id"], "customer"))
    return []


def _public_ip(resource: dict[str, Any], scope: Scope) -> list[dict[str, Any]]:
    props, digest = resource["properties"], hashlib.sha256(resource["id"].lower().encode()).digest()
    props.setdefault("ipAddress", f"20.{digest[0]}.{digest[1]}.{digest[2] or 1}")
    dns = props.get("dnsSettings") or {}
    if dns.get("domainNameLabel"):
        location = str(resource.get("location", scope.location)).lower().replace(" ", "")
        dns.setdefault("fqdn", f"{dns['domainNameLabel']}.{location}.cloudapp.azure.com")
    return []


def _virtual_network(resource: dict[str, Any], scope: Scope) -> list[dict[str, Any]]:
    children = []
    for subnet in resource["properties"].get("subnets", []) or []:
        subnet_id = f"{resource['id']}/subnets/{subnet.get('name')}"
        subnet["id"] = subnet_id
        subnet.setdefault("properties", {})["provisioningState"] = "Succeeded"
        children.append(
            {
                "id": subnet_id,
                "name": f"{resource['name']}/{subnet.get('name')}",
                "type": "Microsoft.Network/virtualNetworks/subnets",
                "apiVersion": resource.get("apiVersion"),
                "properties": copy.deepcopy(subnet["properties"]),
            }
        )
    return children


_COMPUTED: dict[str, Callable[[dict[str, Any], Scope], list[dict[str, Any]]]] = {
    "microsoft.managedidentity/userassignedidentities": _identity,
    "microsoft.containerregistry/registries": _registry,
    "microsoft.containerservice/managedclusters": _cluster,
    "microsoft.operationalinsights/workspaces": _workspace,
    "microsoft.network/publicipaddresses": _public_ip,
    "microsoft.network/virtualnetworks": _virtual_network,
}


def computed(resource: dict[str, Any], scope: Scope) -> list[dict[str, Any]]:
    """Fill in the provider's read-only properties; returns child resources it creates."""
    resource.setdefault("properties", {})["provisioningState"] = "Succeeded"
    if "location" in resource:
        resource["location"] = str(resource["location"]).lower().replace(" ", "")
    hook = _COMPUTED.get(resource["type"].lower())
    return hook(resource, scope) if hook else []


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
        kind = "Delete" if mode.lower() == "complete" and not child_of_wanted else "Ignore"
        changes.append({"resourceId": have["id"], "changeType": kind, "before": have})
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
