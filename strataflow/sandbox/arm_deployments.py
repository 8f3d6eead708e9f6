"""Template deployments in the sandbox ARM emulator, with Azure's semantics.

PUT validates synchronously (400 ``InvalidTemplate``), answers 201 with an
``Azure-AsyncOperation`` URL, and the deployment moves Accepted -> Running -> Succeeded or
Failed on the next two polls (of that URL or of the deployment). Resources are created in
dependency order; one that fails (``Store.failure_marker`` in its name, or an expression
that cannot be evaluated) is recorded as a failed operation with its own error, its
dependents are skipped, its siblings still deploy (as on Azure, nothing is rolled back),
and the deployment fails with ``DeploymentFailed`` pointing at the operations list.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import uuid
from typing import Any

from strataflow.sandbox import arm_templates as tpl
from strataflow.sandbox.arm_expressions import ExpressionError, Scope, Unknown
from strataflow.sandbox.arm_store import ArmError, DeploymentRecord, Reply, Store, now

_FAILED = (
    "At least one resource deployment operation failed. Please list deployment operations for details. "
    "Please see https://aka.ms/arm-deployment-operations for usage details."
)
_BAD_NAME = (
    "Resource name {name} is invalid. The name can be up to 80 characters long. It must begin with a word "
    "character, and it must end with a word character or with '_'. The name may contain word characters or "
    "'.', '-', '_'."
)


class DeploymentRoutes:
    """``/subscriptions/{sub}/resourcegroups/{rg}/providers/Microsoft.Resources/deployments/{name}[/...]``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- evaluation -------------------------------------------------------------------

    def scope(self, sub: str, rg: str, template: dict[str, Any]) -> Scope:
        group = self.store.group(sub, rg)
        variables = template.get("variables", {}) or {}
        scope = Scope(sub, self.store.tenant_id, group["name"], group["location"], {}, variables)
        scope.reference = lambda target, full: self._reference(scope, template, target, full)
        return scope

    def _reference(self, scope: Scope, template: dict[str, Any], target: str, full: bool) -> Any:
        resource_id = target
        if not target.startswith("/"):  # a resource of this template, named by its name
            for item in tpl.plan_resources(template, scope):
                if target.lower() in (item.name.lower(), f"{item.type}/{item.name}".lower()):
                    resource_id = item.id
        found = self.store.resources.get(resource_id.lower())
        if found is None:
            raise Unknown(target)
        return copy.deepcopy(found if full else found.get("properties", {}))

    def prepare(self, sub: str, rg: str, payload: dict[str, Any]) -> tuple[dict[str, Any], Scope, list[tpl.Planned]]:
        """Preflight: the group exists, the template and parameters are valid (else 400)."""
        props = payload.get("properties") or {}
        if "templateLink" in props or "parametersLink" in props:
            raise ArmError(400, "InvalidTemplate", "The sandbox ARM emulator does not support templateLink.")
        template = props.get("template")
        scope = self.scope(sub, rg, template if isinstance(template, dict) else {})
        try:
            tpl.check_template(template)
            assert isinstance(template, dict)
            tpl.bind_parameters(template, props.get("parameters") or {}, scope)
            return template, scope, tpl.plan_resources(template, scope)
        except tpl.InvalidTemplate as exc:
            raise ArmError(400, exc.code, exc.message) from exc

    # --- routes -----------------------------------------------------------------------

    def put(self, sub: str, rg: str, name: str, payload: dict[str, Any], base: str) -> Reply:
        key = (sub.lower(), rg.lower(), name.lower())
        previous = self.store.deployments.get(key)
        if previous is not None and previous.state in ("Accepted", "Running"):
            raise ArmError(
                409,
                "DeploymentActive",
                f"Unable to edit or replace deployment '{name}': previous deployment from "
                f"'{previous.started.isoformat()}' is still active (state: {previous.state}).",
            )
        template, scope, _ = self.prepare(sub, rg, payload)
        props = payload.get("properties") or {}
        record = DeploymentRecord(
            sub,
            self.store.group(sub, rg)["name"],
            name,
            template,
            str(props.get("mode", "Incremental")),
            payload.get("tags") or {},
            dict(scope.parameters),
        )
        self.store.deployments[key] = record
        status_url = f"{base}{record.id}/operationStatuses/{record.op}?api-version=2026-06-01"
        return Reply(201, self.view(record), {"Azure-AsyncOperation": status_url})

    def get(self, sub: str, rg: str, name: str) -> Reply:
        record = self.store.deployment(sub, rg, name)
        self._advance(record)
        return Reply(200, self.view(record))

    def head(self, sub: str, rg: str, name: str) -> Reply:
        self.store.group(sub, rg)
        return Reply(204 if (sub.lower(), rg.lower(), name.lower()) in self.store.deployments else 404)

    def delete(self, sub: str, rg: str, name: str, base: str) -> Reply:
        self.store.group(sub, rg)
        key = (sub.lower(), rg.lower(), name.lower())
        if key not in self.store.deployments:
            return Reply(204)

        def finish() -> Reply:
            self.store.deployments.pop(key, None)
            return Reply(204)

        return self.store.start_operation(sub, base, finish)

    def status(self, sub: str, rg: str, name: str, op: str) -> Reply:
        record = self.store.deployment(sub, rg, name)
        if record.op != op:
            raise ArmError(404, "OperationNotFound", f"The operation '{op}' could not be found.")
        self._advance(record)
        body: dict[str, Any] = {"status": record.state}
        if record.error is not None:
            body["error"] = record.error
        return Reply(200, body)

    def operations(self, sub: str, rg: str, name: str) -> Reply:
        return Reply(200, {"value": self.store.deployment(sub, rg, name).operations})

    def action(self, sub: str, rg: str, name: str, action: str, payload: dict[str, Any], base: str) -> Reply:
        if action.lower() == "exporttemplate":
            return Reply(200, {"template": self.store.deployment(sub, rg, name).template})
        if action.lower() == "validate":
            return self._validate(sub, rg, name, payload)
        return self._what_if(sub, rg, payload, base)

    def _validate(self, sub: str, rg: str, name: str, payload: dict[str, Any]) -> Reply:
        try:
            template, scope, planned = self.prepare(sub, rg, payload)
        except ArmError as exc:
            if exc.status != 400:
                raise
            return exc.reply()
        props = {
            "provisioningState": "Succeeded",
            "mode": (payload.get("properties") or {}).get("mode", "Incremental"),
            "parameters": tpl.parameters_view(template, scope.parameters),
            "timestamp": now(),
            "validatedResources": [{"id": p.id} for p in planned],
        }
        deployment_id = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Resources/deployments/{name}"
        return Reply(
            200, {"id": deployment_id, "name": name, "type": "Microsoft.Resources/deployments", "properties": props}
        )

    def _what_if(self, sub: str, rg: str, payload: dict[str, Any], base: str) -> Reply:
        _, scope, planned = self.prepare(sub, rg, payload)
        desired = []
        for item in planned:
            try:
                desired.append(tpl.materialize(item, scope, unknown_as_text=True))
            except ExpressionError as exc:
                raise ArmError(400, "InvalidTemplate", f"Deployment template validation failed: '{exc}'") from exc
        mode = str((payload.get("properties") or {}).get("mode", "Incremental"))
        changes = tpl.what_if(desired, copy.deepcopy(self.store.resources_in(sub, rg)), mode)
        result = Reply(200, {"status": "Succeeded", "properties": {"changes": changes}})
        return self.store.start_operation(sub, base, lambda: result)

    # --- execution --------------------------------------------------------------------

    def _advance(self, record: DeploymentRecord) -> None:
        if record.state == "Accepted":
            record.state = "Running"
        elif record.state == "Running":
            self._execute(record)
            record.finished = dt.datetime.now(dt.UTC)

    def _execute(self, record: DeploymentRecord) -> None:
        """Create the template's resources in dependency order, one operation each."""
        scope = self.scope(record.sub, record.group, record.template)
        scope.parameters = record.parameters
        failed: set[str] = set()
        planned = tpl.plan_resources(record.template, scope)
        for item in planned:
            if any(d.lower() in failed for d in item.depends_on):
                failed.add(item.id.lower())
                continue
            error, body = self._materialize(item, scope)
            if error is not None:
                failed.add(item.id.lower())
                self._record(record, item, "Failed", "BadRequest", error)
                continue
            children = tpl.computed(body, scope)
            self.store.drop_resources(item.id)
            self.store.resources[item.id.lower()] = body
            for child in children:
                self.store.resources[child["id"].lower()] = child
            record.output_resources.append(item.id)
            self._record(record, item, "Succeeded", "OK", None)
        if failed:
            inner = [
                op["properties"]["statusMessage"]["error"]
                for op in record.operations
                if op["properties"]["provisioningState"] == "Failed"
            ]
            record.state = "Failed"
            record.error = {"code": "DeploymentFailed", "message": _FAILED, "details": inner}
            return
        if record.mode.lower() == "complete":
            keep = {i.id.lower() for i in planned}
            for resource in self.store.resources_in(record.sub, record.group):
                key = resource["id"].lower()
                if key not in keep and not any(key.startswith(k + "/") for k in keep):
                    self.store.drop_resources(key)
        try:
            record.outputs = tpl.evaluate_outputs(record.template, scope)
            record.state = "Succeeded"
        except (ExpressionError, Unknown, tpl.InvalidTemplate) as exc:
            record.state = "Failed"
            record.error = {
                "code": "DeploymentOutputEvaluationFailed",
                "message": f"Unable to evaluate template outputs: '{exc}'.",
            }

    def _materialize(self, item: tpl.Planned, scope: Scope) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """``(error, body)``: the resource's body, or why the resource provider refuses it."""
        try:
            body = tpl.materialize(item, scope)
        except (ExpressionError, Unknown) as exc:
            message = f"Unable to process template language expressions for resource '{item.id}': '{exc}'"
            return {"code": "InvalidTemplate", "message": message}, {}
        marker = self.store.failure_marker
        if marker and marker.lower() in item.name.lower():
            return {"code": "InvalidResourceName", "message": _BAD_NAME.format(name=item.name.split("/")[-1])}, body
        return None, body

    def _record(
        self, record: DeploymentRecord, item: tpl.Planned, state: str, status: str, error: dict[str, Any] | None
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

    def view(self, record: DeploymentRecord) -> dict[str, Any]:
        """The deployment as GET answers it."""
        end = record.finished or dt.datetime.now(dt.UTC)
        template_hash = hashlib.sha256(json.dumps(record.template, sort_keys=True).encode()).hexdigest()
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
        if record.state == "Succeeded":
            props["outputs"] = record.outputs
        if record.state in ("Succeeded", "Failed"):
            props["outputResources"] = [{"id": rid} for rid in record.output_resources]
        if record.error is not None:
            props["error"] = record.error
        return {
            "id": record.id,
            "name": record.name,
            "type": "Microsoft.Resources/deployments",
            "tags": record.tags,
            "properties": props,
        }
