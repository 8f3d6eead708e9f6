"""Running a template deployment in the sandbox emulator: resources, nested deployments, outputs.

A ``Run`` is one deployment being evaluated: its scope, its plan and, for a nested
deployment, its parent. Its ``reference``/``lister`` hooks answer ``reference()`` and
``list*()`` from the store: a resource of the template is named by its (symbolic) name or
id; one not deployed yet makes the engine try it again after the others (the implicit
dependency Azure derives); one that does not exist fails with ``ResourceNotFound``.

``Engine.execute`` creates resources in dependency order, one operation each. A nested
deployment (``Microsoft.Resources/deployments`` with ``properties.template`` or a loopback
``templateLink``) becomes a deployment of its own at its target resource group: with
``expressionEvaluationOptions.scope`` ``inner`` it gets its parameters from
``properties.parameters``, with ``outer`` (the default) its expressions see the parent's
parameters and variables; either way its resources really are created and its outputs are
readable with ``reference('name').outputs.x.value``.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from strataflow.sandbox import arm_templates as tpl
from strataflow.sandbox.arm_eval import Ctx, Scope
from strataflow.sandbox.arm_links import fetch_json, link_uri
from strataflow.sandbox.arm_plan import DEPLOYMENTS, GROUPS, Plan, Planned
from strataflow.sandbox.arm_resources import computed, list_result
from strataflow.sandbox.arm_store import ArmError, DeploymentRecord, Store, now, short_type_and_name
from strataflow.sandbox.arm_values import ExpressionError, NotFound, Unknown

FAILED = (
    "At least one resource deployment operation failed. Please list deployment operations for details. "
    "Please see https://aka.ms/arm-deployment-operations for usage details."
)
_BAD_NAME = (
    "Resource name {name} is invalid. The name can be up to 80 characters long. It must begin with a word "
    "character, and it must end with a word character or with '_'. The name may contain word characters or "
    "'.', '-', '_'."
)
_DEPLOYMENT_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)(?:/resourceGroups/(?P<rg>[^/]+))?/providers/Microsoft\.Resources/deployments/"
    r"(?P<name>[^/]+)$",
    re.IGNORECASE,
)


@dataclass
class Run:
    """One deployment being evaluated: where it deploys, what it sees and what it created."""

    store: Store
    record: DeploymentRecord
    template: dict[str, Any]
    scope: Scope
    strict: bool
    parent: Run | None = None
    plan: Plan = field(default_factory=Plan)
    base: str = ""

    def planned(self, target: str) -> Planned | None:
        """The planned resource ``target`` names, in this run or a parent's."""
        run: Run | None = self
        while run is not None:
            found = run.plan.find(target)
            if found is not None:
                return found
            run = run.parent
        return None

    def skipped(self, target: str) -> bool:
        """Whether ``target`` names a resource whose condition is false (here or in a parent)."""
        run: Run | None = self
        while run is not None:
            if run.plan.is_skipped(target):
                return True
            run = run.parent
        return False

    def resolve(self, target: str) -> str:
        """The resource id a ``reference()``/``list*()`` target names."""
        if target.startswith("/"):
            return target
        item = self.planned(target)
        if item is not None:
            return item.id
        if self.skipped(target):
            raise NotFound(f"The resource '{target}' is not deployed: its condition is false.")
        raise ExpressionError(
            f"The template reference '{target}' is not valid: could not find template resource or resource copy "
            "with this name. Please see https://aka.ms/arm-function-reference for usage details."
        )

    def missing(self, resource_id: str) -> Exception:
        """What reading a resource that is not in the store raises."""
        planned = any(i.id.lower() == resource_id.lower() for i in _chain_items(self))
        if planned or not self.strict:
            return Unknown(resource_id)
        kind, name = short_type_and_name(resource_id)
        parts = resource_id.split("/")
        where = f"resource group '{parts[4]}'" if len(parts) > 4 and parts[3].lower() == "resourcegroups" else "scope"
        return NotFound(
            f"The Resource '{kind}/{name}' under {where} was not found. "
            "For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        )

    def reference(self, ctx: Ctx, target: str, api_version: str | None, full: bool) -> Any:
        """``reference()``: a resource's (or nested deployment's) properties, or its whole body when ``full``."""
        if target.startswith("resourceinfo:"):
            items = self.plan.symbol(target.split(":", 1)[1])
            if not items:
                raise ExpressionError(f"The symbolic name '{target.split(':', 1)[1]}' is not defined.")
            item = items[0]
            return {"id": item.id, "name": item.name, "type": item.type, "apiVersion": item.api_version}
        if target.startswith("references:"):
            items = self.plan.symbol(target.split(":", 1)[1])
            return [self.reference(ctx, item.id, None, full) for item in items]
        symbols = self.plan.symbol(target) if not target.startswith("/") else []
        resource_id = symbols[0].id if symbols else self.resolve(target)
        deployment = _DEPLOYMENT_ID.match(resource_id)
        if deployment is not None:
            groups = deployment.groupdict()
            key = (groups["sub"].lower(), (groups["rg"] or "").lower(), groups["name"].lower())
            record = self.store.deployments.get(key)
            if record is None or record.state != "Succeeded":
                raise self.missing(resource_id)
            view = deployment_view(record)
            return view if full else view["properties"]
        found = self.store.resources.get(resource_id.lower())
        if found is None:
            raise self.missing(resource_id)
        return copy.deepcopy(found if full else found.get("properties", {}))

    def lister(self, ctx: Ctx, action: str, target: str, api_version: str | None, body: Any) -> Any:
        """``list*()``: the provider's answer to the action on an existing resource."""
        resource_id = self.resolve(target)
        found = self.store.resources.get(resource_id.lower())
        if found is None:
            found = _implied(self.store, resource_id)
        if found is None:
            raise self.missing(resource_id)
        return list_result(action.lower(), found, self.scope)


def _chain_items(run: Run) -> list[Planned]:
    items: list[Planned] = []
    current: Run | None = run
    while current is not None:
        items.extend(current.plan.items)
        current = current.parent
    return items


def _implied(store: Store, resource_id: str) -> dict[str, Any] | None:
    """A child resource every parent has (``authorizationRules/RootManageSharedAccessKey``, ``host/default``)."""
    parts = resource_id.rstrip("/").split("/")
    provider = [i for i, p in enumerate(parts) if p.lower() == "providers"]
    if not provider or len(parts) - provider[-1] < 6:
        return None
    parent_id = "/".join(parts[:-2])
    if parent_id.lower() not in store.resources and _implied(store, parent_id) is None:
        return None
    kind, name = short_type_and_name(resource_id)
    return {"id": resource_id, "name": name, "type": kind, "properties": {}}


def deployment_view(record: DeploymentRecord) -> dict[str, Any]:
    """The deployment as GET answers it."""
    end = record.finished or dt.datetime.now(dt.UTC)
    template_hash = hashlib.sha256(json.dumps(record.template, sort_keys=True, default=str).encode()).hexdigest()
    props: dict[str, Any] = {
        "templateHash": str(int(template_hash[:15], 16)),
        "parameters": tpl.parameters_view(record.template, record.parameters),
        "mode": record.mode,
        "provisioningState": record.state,
        "timestamp": now(),
        "duration": f"PT{(end - record.started).total_seconds():.3f}S",
        "correlationId": record.correlation,
        "providers": [],
        "dependencies": [],
    }
    if record.template_link:
        props["templateLink"] = {"uri": record.template_link}
    if record.state == "Succeeded":
        props["outputs"] = record.outputs
    if record.state in ("Succeeded", "Failed"):
        props["outputResources"] = [{"id": rid} for rid in record.output_resources]
    if record.error is not None:
        props["error"] = record.error
    view = {
        "id": record.id,
        "name": record.name,
        "type": "Microsoft.Resources/deployments",
        "tags": record.tags,
        "properties": props,
    }
    if record.location:
        view["location"] = record.location
    return view


class Engine:
    """Builds scopes for deployments and executes them against the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def new_run(
        self, record: DeploymentRecord, template: dict[str, Any], *, strict: bool, parent: Run | None = None
    ) -> Run:
        """A run of ``template`` for ``record`` with a fresh scope (parameters not yet bound)."""
        group = self.store.group(record.sub, record.group) if record.group else None
        location = group["location"] if group else (record.location or "westeurope")
        scope = Scope(
            record.sub,
            self.store.tenant_id,
            group["name"] if group else None,
            location,
            {},
            template.get("variables") or {},
            tpl.user_functions(template),
            group=group,
            symbolic=template.get("languageVersion") is not None,
        )
        run = Run(self.store, record, template, scope, strict, parent, base=scope.group_id)
        self.bind(run)
        return run

    def bind(self, run: Run) -> None:
        """Point the run's scope at its hooks and its ``deployment()`` value."""
        run.scope.reference = run.reference
        run.scope.lister = run.lister
        record = run.record
        props: dict[str, Any] = {
            "template": {k: v for k, v in run.template.items() if k in ("$schema", "contentVersion", "metadata")},
            "templateHash": deployment_view(record)["properties"]["templateHash"],
            "parameters": tpl.parameters_view(run.template, record.parameters),
            "mode": record.mode,
            "provisioningState": "Running",
        }
        if record.template_link:
            props["templateLink"] = {"uri": record.template_link, "contentVersion": "1.0.0.0"}
        value: dict[str, Any] = {"name": record.name, "properties": props}
        if record.location:
            value["location"] = record.location
        run.scope.deployment = value

    # --- execution ------------------------------------------------------------------

    def execute(self, run: Run) -> None:
        """Create the run's resources in dependency order, then evaluate its outputs."""
        record = run.record
        failed: set[str] = set()
        done: set[str] = set()
        pending = [i for i in run.plan.items if not i.existing]
        waiting = {i.id.lower() for i in pending}
        progress = True
        while pending and progress:
            progress = False
            for item in list(pending):
                deps = [d.lower() for d in item.depends_on]
                if any(d in failed for d in deps):
                    failed.add(item.id.lower())
                    pending.remove(item)
                    progress = True
                    continue
                if any(d in waiting and d not in done for d in deps):
                    continue
                try:
                    ok = self._deploy(run, item)
                except Unknown:
                    continue
                (done if ok else failed).add(item.id.lower())
                pending.remove(item)
                progress = True
        for item in pending:
            failed.add(item.id.lower())
            message = f"Unable to process template language expressions for resource '{item.id}': it reads a resource that was not deployed."
            self._record(record, item, "Failed", "BadRequest", {"code": "InvalidTemplate", "message": message})
        if failed:
            inner = [
                op["properties"]["statusMessage"]["error"]
                for op in record.operations
                if op["properties"]["provisioningState"] == "Failed"
            ]
            record.state = "Failed"
            record.error = {"code": "DeploymentFailed", "message": FAILED, "details": inner}
            return
        try:
            record.outputs = tpl.evaluate_outputs(run.template, run.scope)
            record.state = "Succeeded"
        except (ExpressionError, Unknown, tpl.InvalidTemplate) as exc:
            record.state = "Failed"
            code = (
                exc.code
                if isinstance(exc, (ExpressionError, tpl.InvalidTemplate))
                else "DeploymentOutputEvaluationFailed"
            )
            record.error = {
                "code": code if code != "InvalidTemplate" else "DeploymentOutputEvaluationFailed",
                "message": f"Unable to evaluate template outputs: '{exc}'.",
            }

    def _deploy(self, run: Run, item: Planned) -> bool:
        """Deploy one resource; False (and a failed operation) when it fails. ``Unknown``: try later."""
        kind = item.type.lower()
        try:
            body = tpl.materialize(item, run.scope)
        except ExpressionError as exc:
            message = f"Unable to process template language expressions for resource '{item.id}': '{exc}'"
            self._record(run.record, item, "Failed", "BadRequest", {"code": exc.code, "message": message})
            return False
        if kind == DEPLOYMENTS:
            return self._nested(run, item, body)
        marker = self.store.failure_marker
        if marker and marker.lower() in item.name.lower():
            error = {"code": "InvalidResourceName", "message": _BAD_NAME.format(name=item.name.split("/")[-1])}
            self._record(run.record, item, "Failed", "BadRequest", error)
            return False
        if kind == GROUPS:
            sub = item.id.split("/")[2]
            key = (sub.lower(), item.name.lower())
            group = self.store.groups.get(key) or {
                "id": item.id,
                "name": item.name,
                "type": "Microsoft.Resources/resourceGroups",
                "location": str(body.get("location", run.scope.location)).lower().replace(" ", ""),
                "tags": body.get("tags") or {},
                "properties": {"provisioningState": "Succeeded"},
            }
            self.store.groups[key] = group
            self._record(run.record, item, "Succeeded", "OK", None)
            return True
        children = computed(body, run.scope)
        self.store.drop_resources(item.id)
        self.store.resources[item.id.lower()] = body
        for child in children:
            self.store.resources[child["id"].lower()] = child
        run.record.output_resources.append(item.id)
        self._record(run.record, item, "Succeeded", "OK", None)
        return True

    def _nested(self, run: Run, item: Planned, body: dict[str, Any]) -> bool:
        props = body.get("properties") or {}
        target = _DEPLOYMENT_ID.match(item.id)
        assert target is not None
        sub, rg, name = target.group("sub"), target.group("rg"), target.group("name")
        try:
            if rg is not None:
                self.store.group(sub, rg)
            link = None
            template = props.get("template")
            if isinstance(props.get("templateLink"), dict):
                link = link_uri(props["templateLink"], run.record.template_link)
                template = fetch_json(link)
            parameters = props.get("parameters") or {}
            if isinstance(props.get("parametersLink"), dict):
                parameters = (fetch_json(link_uri(props["parametersLink"], run.record.template_link)) or {}).get(
                    "parameters", {}
                )
            tpl.check_template(template)
            assert isinstance(template, dict)
            record = DeploymentRecord(sub, rg, name, template, str(props.get("mode", "Incremental")), {}, {})
            record.template_link = link
            record.location = body.get("location") if rg is None else None
            scope_option = (props.get("expressionEvaluationOptions") or {}).get("scope", "outer")
            inner = link is not None or str(scope_option).lower() == "inner"  # linked templates: always inner
            nested = self._nested_run(run, record, template, inner, parameters)
        except tpl.InvalidTemplate as exc:
            self._record(run.record, item, "Failed", "BadRequest", {"code": exc.code, "message": exc.message})
            return False
        except ExpressionError as exc:
            self._record(run.record, item, "Failed", "BadRequest", {"code": exc.code, "message": str(exc)})
            return False
        except ArmError as exc:  # the target resource group is missing
            self._record(run.record, item, "Failed", "NotFound", {"code": exc.code, "message": exc.message})
            return False
        self.store.deployments[(sub.lower(), (rg or "").lower(), name.lower())] = nested.record
        record.state = "Running"
        self.execute(nested)
        record.finished = dt.datetime.now(dt.UTC)
        run.record.output_resources.extend(record.output_resources)
        if record.state != "Succeeded":
            error = {"code": "DeploymentFailed", "message": FAILED, "details": [record.error or {}]}
            self._record(run.record, item, "Failed", "Conflict", error)
            return False
        self._record(run.record, item, "Succeeded", "OK", None)
        return True

    def _nested_run(
        self, parent: Run, record: DeploymentRecord, template: dict[str, Any], inner: bool, parameters: Any
    ) -> Run:
        if inner:
            run = self.new_run(record, template, strict=parent.strict, parent=parent)
            record.parameters = tpl.bind_parameters(template, parameters, run.scope)
            self.bind(run)
        else:
            scope = parent.scope.child()
            run = Run(self.store, record, template, scope, parent.strict, parent, base=_base_of(record))
            record.parameters = dict(parent.scope.parameters)
            self.bind(run)
            run.scope.deployment = parent.scope.deployment
        run.base = _base_of(record)
        run.plan = tpl.plan(template, run.scope, run.base)
        return run

    def _record(
        self, record: DeploymentRecord, item: Planned, state: str, status: str, error: dict[str, Any] | None
    ) -> None:
        props: dict[str, Any] = {
            "provisioningOperation": "Create",
            "provisioningState": state,
            "timestamp": now(),
            "duration": "PT0.1S",
            "trackingId": str(uuid.uuid4()),
            "serviceRequestId": str(uuid.uuid4()),
            "statusCode": status,
            "targetResource": {"id": item.id, "resourceType": item.type, "resourceName": item.name},
        }
        if error is not None:
            props["statusMessage"] = {"status": "Failed", "error": error}
        operation_id = uuid.uuid4().hex[:16].upper()
        record.operations.append(
            {"id": f"{record.id}/operations/{operation_id}", "operationId": operation_id, "properties": props}
        )


def _base_of(record: DeploymentRecord) -> str:
    return f"/subscriptions/{record.sub}" + (f"/resourceGroups/{record.group}" if record.group else "")
