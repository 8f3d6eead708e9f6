"""Template deployments in the sandbox ARM emulator, with Azure's semantics.

PUT validates synchronously (400 ``InvalidTemplate``, or ``SandboxUnsupported`` for a
feature the sandbox lacks), answers 201 with an ``Azure-AsyncOperation`` URL, and the
deployment moves Accepted -> Running -> Succeeded or Failed on the next two polls (of that
URL or of the deployment). Deployments go to a resource group or, at
``/subscriptions/{sub}/providers/Microsoft.Resources/deployments/{name}``, to the
subscription. Execution (``arm_engine``): resources are created in dependency order; one
that fails (``Store.failure_marker`` in its name, or an expression that cannot be evaluated)
is recorded as a failed operation with its own error, its dependents are skipped, its
siblings still deploy (as on Azure, nothing is rolled back), and the deployment fails with
``DeploymentFailed`` pointing at the operations list.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from strataflow.sandbox import arm_templates as tpl
from strataflow.sandbox.arm_engine import Engine, Run, deployment_view
from strataflow.sandbox.arm_json import loads_lenient
from strataflow.sandbox.arm_links import fetch_json, link_uri
from strataflow.sandbox.arm_store import ArmError, DeploymentRecord, Reply, Store, now
from strataflow.sandbox.arm_values import ExpressionError, Unknown

FAILED_MESSAGE = (
    "At least one resource deployment operation failed. Please list deployment operations for details. "
    "Please see https://aka.ms/arm-deployment-operations for usage details."
)


def _template_of(props: dict[str, Any]) -> tuple[Any, str | None, dict[str, Any]]:
    """``(template, link, parameters)`` of a deployment's properties, following loopback links."""
    template, link = props.get("template"), None
    if isinstance(template, str):  # a template sent as text (comments and all)
        try:
            template = loads_lenient(template)
        except ValueError as exc:
            raise tpl.InvalidTemplate(f"The template is not valid JSON: {exc}.", "InvalidRequestContent") from exc
    if isinstance(props.get("templateLink"), dict):
        link = link_uri(props["templateLink"], None)
        template = fetch_json(link)
    parameters = props.get("parameters") or {}
    if isinstance(props.get("parametersLink"), dict):
        document = fetch_json(link_uri(props["parametersLink"], None)) or {}
        parameters = document.get("parameters", {}) if isinstance(document, dict) else {}
    return template, link, parameters


class DeploymentRoutes:
    """``/subscriptions/{sub}[/resourcegroups/{rg}]/providers/Microsoft.Resources/deployments/{name}[/...]``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = Engine(store)

    @staticmethod
    def _key(sub: str, rg: str | None, name: str) -> tuple[str, str, str]:
        return (sub.lower(), (rg or "").lower(), name.lower())

    def prepare(self, sub: str, rg: str | None, name: str, payload: dict[str, Any], *, strict: bool = False) -> Run:
        """Preflight: the group exists, the template and parameters are valid (else 400)."""
        props = payload.get("properties") or {}
        if rg is not None:
            self.store.group(sub, rg)
        elif not payload.get("location"):
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        try:
            template, link, parameters = _template_of(props)
            tpl.check_template(template)
            assert isinstance(template, dict)
            record = DeploymentRecord(
                sub,
                self.store.group(sub, rg)["name"] if rg is not None else None,
                name,
                template,
                str(props.get("mode", "Incremental")),
                payload.get("tags") or {},
                {},
            )
            record.template_link = link
            record.location = str(payload["location"]).lower().replace(" ", "") if rg is None else None
            run = self.engine.new_run(record, template, strict=strict)
            record.parameters = tpl.bind_parameters(template, parameters, run.scope)
            self.engine.bind(run)
            run.plan = tpl.plan(template, run.scope, run.base)
            return run
        except tpl.InvalidTemplate as exc:
            raise ArmError(400, exc.code, exc.message) from exc

    # --- routes -----------------------------------------------------------------------

    def put(self, sub: str, rg: str | None, name: str, payload: dict[str, Any], base: str) -> Reply:
        """Create or replace a deployment: validated now, run over the next polls."""
        key = self._key(sub, rg, name)
        previous = self.store.deployments.get(key)
        if previous is not None and previous.state in ("Accepted", "Running"):
            raise ArmError(
                409,
                "DeploymentActive",
                f"Unable to edit or replace deployment '{name}': previous deployment from "
                f"'{previous.started.isoformat()}' is still active (state: {previous.state}).",
            )
        record = self.prepare(sub, rg, name, payload).record
        self.store.deployments[key] = record
        status_url = f"{base}{record.id}/operationStatuses/{record.op}?api-version=2026-06-01"
        return Reply(201, deployment_view(record), {"Azure-AsyncOperation": status_url})

    def get(self, sub: str, rg: str | None, name: str) -> Reply:
        """The deployment (each GET advances a running one)."""
        record = self.store.deployment(sub, rg, name)
        self._advance(record)
        return Reply(200, deployment_view(record))

    def list(self, sub: str, rg: str | None) -> Reply:
        """Every deployment at the group (or subscription), nested ones included."""
        if rg is not None:
            self.store.group(sub, rg)
        found = [r for k, r in self.store.deployments.items() if k[:2] == (sub.lower(), (rg or "").lower())]
        for record in found:
            self._advance(record)
        return Reply(200, {"value": [deployment_view(r) for r in found]})

    def head(self, sub: str, rg: str | None, name: str) -> Reply:
        """204 when the deployment exists, else 404."""
        if rg is not None:
            self.store.group(sub, rg)
        return Reply(204 if self._key(sub, rg, name) in self.store.deployments else 404)

    def delete(self, sub: str, rg: str | None, name: str, base: str) -> Reply:
        """Delete the deployment record (not its resources), as a polled operation."""
        if rg is not None:
            self.store.group(sub, rg)
        key = self._key(sub, rg, name)
        if key not in self.store.deployments:
            return Reply(204)

        def finish() -> Reply:
            self.store.deployments.pop(key, None)
            return Reply(204)

        return self.store.start_operation(sub, base, finish)

    def status(self, sub: str, rg: str | None, name: str, op: str) -> Reply:
        """The ``Azure-AsyncOperation`` status of a deployment."""
        record = self.store.deployment(sub, rg, name)
        if record.op != op:
            raise ArmError(404, "OperationNotFound", f"The operation '{op}' could not be found.")
        self._advance(record)
        body: dict[str, Any] = {"status": record.state}
        if record.error is not None:
            body["error"] = record.error
        return Reply(200, body)

    def operations(self, sub: str, rg: str | None, name: str) -> Reply:
        """The deployment's operations, one per resource."""
        return Reply(200, {"value": self.store.deployment(sub, rg, name).operations})

    def action(self, sub: str, rg: str | None, name: str, action: str, payload: dict[str, Any], base: str) -> Reply:
        """``exportTemplate``, ``validate`` or ``whatIf``."""
        if action.lower() == "exporttemplate":
            return Reply(200, {"template": self.store.deployment(sub, rg, name).template})
        if action.lower() == "validate":
            return self._validate(sub, rg, name, payload)
        return self._what_if(sub, rg, name, payload, base)

    def _validate(self, sub: str, rg: str | None, name: str, payload: dict[str, Any]) -> Reply:
        try:
            run = self.prepare(sub, rg, name, payload)
        except ArmError as exc:
            if exc.status != 400:
                raise
            return exc.reply()
        props = {
            "provisioningState": "Succeeded",
            "mode": (payload.get("properties") or {}).get("mode", "Incremental"),
            "parameters": tpl.parameters_view(run.template, run.record.parameters),
            "timestamp": now(),
            "validatedResources": [{"id": p.id} for p in run.plan.items if not p.existing],
        }
        return Reply(
            200, {"id": run.record.id, "name": name, "type": "Microsoft.Resources/deployments", "properties": props}
        )

    def _what_if(self, sub: str, rg: str | None, name: str, payload: dict[str, Any], base: str) -> Reply:
        run = self.prepare(sub, rg, name, payload)
        desired = []
        for item in run.plan.items:
            if item.existing:
                continue
            try:
                desired.append(tpl.materialize(item, run.scope, unknown_as_text=True))
            except ExpressionError as exc:
                error = tpl.invalid(exc)
                raise ArmError(400, error.code, error.message) from exc
        mode = str((payload.get("properties") or {}).get("mode", "Incremental"))
        existing = self.store.resources_in(sub, rg) if rg is not None else []
        changes = tpl.what_if(desired, copy.deepcopy(existing), mode)
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
        run = self.engine.new_run(record, record.template, strict=True)
        run.scope.parameters = record.parameters
        self.engine.bind(run)
        try:
            run.plan = tpl.plan(record.template, run.scope, run.base)
        except tpl.InvalidTemplate as exc:
            record.state = "Failed"
            record.error = {"code": exc.code, "message": exc.message}
            return
        try:
            self.engine.execute(run)
        except Unknown as exc:  # pragma: no cover - the engine defers these itself
            record.state = "Failed"
            record.error = {"code": "InvalidTemplate", "message": f"'{exc}' was never deployed."}
            return
        if record.state == "Succeeded" and record.mode.lower() == "complete" and record.group is not None:
            keep = {rid.lower() for rid in record.output_resources}
            for resource in self.store.resources_in(record.sub, record.group):
                key = resource["id"].lower()
                if key not in keep and not any(key.startswith(k + "/") for k in keep):
                    self.store.drop_resources(key)
