"""The sandbox ARM emulator's state and the shape of its answers, shared by its route modules."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SANDBOX_SUBSCRIPTION = "00000000-0000-4000-8000-000000000001"
SANDBOX_TENANT = "00000000-0000-4000-8000-0000000000aa"


class ArmError(Exception):
    """An Azure error answer: an HTTP status and ``{"error": {"code", "message"}}``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}

    def reply(self) -> Reply:
        return Reply(self.status, {"error": {"code": self.code, "message": self.message}}, self.headers)


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Operation:
    """A ``Location``-polled operation: ``pending`` more 202 answers, then ``finish()``'s answer."""

    pending: int
    finish: Callable[[], Reply]
    result: Reply | None = None


@dataclass
class DeploymentRecord:
    """One deployment as ARM keeps it: template, parameters, state, outputs and operations."""

    sub: str
    group: str | None
    """The resource group, or None for a subscription deployment."""
    name: str
    template: dict[str, Any]
    mode: str
    tags: dict[str, str]
    parameters: dict[str, Any]
    state: str = "Accepted"
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    finished: dt.datetime | None = None
    correlation: str = field(default_factory=lambda: str(uuid.uuid4()))
    op: str = field(default_factory=lambda: uuid.uuid4().hex)
    outputs: dict[str, Any] = field(default_factory=dict)
    output_resources: list[str] = field(default_factory=list)
    operations: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    template_link: str | None = None
    """The URI the template came from (``templateLink``), if any."""
    location: str | None = None
    """A subscription deployment's location."""

    @property
    def id(self) -> str:
        where = f"/subscriptions/{self.sub}" + (f"/resourceGroups/{self.group}" if self.group else "")
        return f"{where}/providers/Microsoft.Resources/deployments/{self.name}"


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


def short_type_and_name(resource_id: str) -> tuple[str, str]:
    """``("Microsoft.Network/virtualNetworks/subnets", "vnet/nodes")`` for a resource id."""
    parts = resource_id.rsplit("/providers/", 1)[-1].split("/")
    return "/".join(parts[0:2] + parts[3::2]), "/".join(parts[2::2])


class Store:
    """Subscriptions, resource groups, resources, deployments and pending operations.

    Keys are lower case (ARM names are case-insensitive); every access holds ``lock``.
    """

    def __init__(self, subscriptions: list[str] | None = None, tenant_id: str = SANDBOX_TENANT) -> None:
        self.lock = threading.RLock()
        self.tenant_id = tenant_id
        self.subscriptions = {s.lower() for s in subscriptions or [SANDBOX_SUBSCRIPTION]}
        self.failure_marker: str | None = "fail"
        """A resource whose name contains this fails to deploy with ``InvalidResourceName`` (None: never)."""
        self.clear()

    def clear(self) -> None:
        with self.lock:
            self.groups: dict[tuple[str, str], dict[str, Any]] = {}
            self.resources: dict[str, dict[str, Any]] = {}
            self.deployments: dict[tuple[str, str, str], DeploymentRecord] = {}
            self.operations: dict[str, Operation] = {}

    def group(self, sub: str, rg: str) -> dict[str, Any]:
        found = self.groups.get((sub.lower(), rg.lower()))
        if found is None:
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
        return found

    def resource(self, resource_id: str) -> dict[str, Any]:
        found = self.resources.get(resource_id.lower())
        if found is None:
            kind, name = short_type_and_name(resource_id)
            parts = resource_id.split("/")
            group = parts[4] if len(parts) > 4 else "?"
            raise ArmError(
                404,
                "ResourceNotFound",
                f"The Resource '{kind}/{name}' under resource group '{group}' was not found. "
                "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
            )
        return found

    def drop_resources(self, resource_id: str) -> None:
        """Delete a resource and its children."""
        prefix = resource_id.lower()
        for key in [k for k in self.resources if k == prefix or k.startswith(prefix + "/")]:
            del self.resources[key]

    def resources_in(self, sub: str, rg: str | None = None) -> list[dict[str, Any]]:
        """The resources in a resource group (or, with ``rg`` None, in the whole subscription)."""
        prefix = f"/subscriptions/{sub}/" + (f"resourcegroups/{rg}/" if rg is not None else "")
        return [r for k, r in self.resources.items() if k.startswith(prefix.lower())]

    def deployment(self, sub: str, rg: str | None, name: str) -> DeploymentRecord:
        """A deployment at a resource group (or, with ``rg`` None, at the subscription)."""
        if rg is not None:
            self.group(sub, rg)
        found = self.deployments.get((sub.lower(), (rg or "").lower(), name.lower()))
        if found is None:
            raise ArmError(404, "DeploymentNotFound", f"Deployment '{name}' could not be found.")
        return found

    def start_operation(self, sub: str, base: str, finish: Callable[[], Reply], pending: int = 1) -> Reply:
        """Answer 202 with a ``Location`` that answers 202 ``pending`` times, then ``finish()``."""
        token = uuid.uuid4().hex
        self.operations[token] = Operation(pending, finish)
        return Reply(
            202, None, {"Location": f"{base}/subscriptions/{sub}/operationresults/{token}?api-version=2025-04-01"}
        )

    def poll_operation(self, token: str) -> Reply:
        operation = self.operations.get(token)
        if operation is None:
            raise ArmError(404, "OperationNotFound", f"The operation '{token}' could not be found.")
        if operation.pending > 0:
            operation.pending -= 1
            return Reply(202)
        if operation.result is None:
            operation.result = operation.finish()
        return operation.result
