"""The sandbox ARM emulator's request handling, and the handle tests drive it with.

``ArmEmulator.handle`` serves one request: it checks the bearer token (401), answers with
an injected fault if one is pending, requires ``api-version`` (400), then routes to
subscriptions, resource groups, resources (here) or deployments (``arm_deployments``).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from strataflow.sandbox.arm_deployments import DeploymentRoutes
from strataflow.sandbox.arm_json import loads_lenient
from strataflow.sandbox.arm_store import SANDBOX_TENANT, ArmError, Reply, Store

_GROUP = r"/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)"
_DEPLOYMENTS = _GROUP + r"(?:/providers/microsoft\.resources)?/deployments"
_DEPLOYMENT = _DEPLOYMENTS + r"/(?P<name>[^/]+)"
_SUB_DEPLOYMENTS = r"/subscriptions/(?P<sub>[^/]+)/providers/microsoft\.resources/deployments"
_SUB_DEPLOYMENT = _SUB_DEPLOYMENTS + r"/(?P<name>[^/]+)"
_ROUTES = [
    ("subscription", r"/subscriptions/(?P<sub>[^/]+)"),
    ("operation", r"/subscriptions/(?P<sub>[^/]+)/operationresults/(?P<op>[^/]+)"),
    ("subscription_resources", r"/subscriptions/(?P<sub>[^/]+)/resources"),
    ("groups", r"/subscriptions/(?P<sub>[^/]+)/resourcegroups"),
    ("group", _GROUP),
    ("group_resources", _GROUP + r"/resources"),
    ("deployments", _DEPLOYMENTS),
    ("deployments", _SUB_DEPLOYMENTS),
    ("deployment", _DEPLOYMENT),
    ("deployment", _SUB_DEPLOYMENT),
    ("deployment_action", _DEPLOYMENT + r"/(?P<action>validate|whatif|exporttemplate)"),
    ("deployment_action", _SUB_DEPLOYMENT + r"/(?P<action>validate|whatif|exporttemplate)"),
    ("deployment_operations", _DEPLOYMENT + r"/operations"),
    ("deployment_operations", _SUB_DEPLOYMENT + r"/operations"),
    ("deployment_status", _DEPLOYMENT + r"/operationstatuses/(?P<op>[^/]+)"),
    ("deployment_status", _SUB_DEPLOYMENT + r"/operationstatuses/(?P<op>[^/]+)"),
    ("resource", _GROUP + r"/providers/(?P<rest>.+)"),
    ("sub_resource", r"/subscriptions/(?P<sub>[^/]+)/providers/(?P<rest>(?!microsoft\.resources/deployments).+)"),
]
_COMPILED = [(name, re.compile(pattern + "$", re.IGNORECASE)) for name, pattern in _ROUTES]
_FAULT_CODES = {429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable"}
_FAULT_MESSAGES = {
    429: "Number of requests exceeded the limit. Please retry after the time in the Retry-After header.",
    500: "Encountered internal server error. Diagnostic information: timestamp '', tracking id ''.",
    503: "The service is unavailable. Please retry.",
}


@dataclass
class Fault:
    """Answer the next ``count`` matching requests with ``status`` instead of serving them."""

    status: int = 429
    count: int = 1
    retry_after: float | None = None
    code: str | None = None
    message: str | None = None
    method: str | None = None
    path_contains: str | None = None


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    status: int


class ArmEmulator(Store):
    """The emulated control plane; thread-safe. Tests use the public methods below."""

    def __init__(self, subscriptions: list[str] | None = None, tenant_id: str = SANDBOX_TENANT) -> None:
        self.faults: list[Fault] = []
        self.requests: list[RequestRecord] = []
        super().__init__(subscriptions, tenant_id)
        self.deploy = DeploymentRoutes(self)

    # --- the test-facing handle -------------------------------------------------------

    def reset(self) -> None:
        """Forget every group, deployment, resource, fault and request."""
        with self.lock:
            self.clear()
            self.faults.clear()
            self.requests.clear()

    def inject_fault(
        self,
        status: int = 429,
        count: int = 1,
        *,
        retry_after: float | None = None,
        code: str | None = None,
        message: str | None = None,
        method: str | None = None,
        path_contains: str | None = None,
    ) -> None:
        """Answer the next ``count`` requests matching ``method`` and ``path_contains`` with ``status``.

        429 and 5xx answers carry Azure's codes and messages unless ``code``/``message`` are
        given; ``retry_after`` (seconds) adds a ``Retry-After`` header.
        """
        with self.lock:
            self.faults.append(Fault(status, count, retry_after, code, message, method, path_contains))

    def patch_resource(self, resource_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change a resource out of band: deep-merge ``changes`` (e.g. ``{"properties": {...}}``)."""
        with self.lock:
            resource = self.resource(resource_id)
            _deep_merge(resource, changes)
            return copy.deepcopy(resource)

    def delete_resource(self, resource_id: str) -> None:
        """Delete a resource (and its children) out of band."""
        with self.lock:
            self.resource(resource_id)
            self.drop_resources(resource_id)

    def find_resource(self, resource_id: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.resources.get(resource_id.lower())
            return copy.deepcopy(found) if found else None

    def find_group(self, name: str, sub: str | None = None) -> dict[str, Any] | None:
        with self.lock:
            for (group_sub, group), record in self.groups.items():
                if group == name.lower() and (sub is None or group_sub == sub.lower()):
                    return copy.deepcopy(record)
            return None

    def requests_to(self, method: str | None = None, contains: str = "") -> list[RequestRecord]:
        """The requests served so far, filtered by method and a case-insensitive path fragment."""
        with self.lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and contains.lower() in r.path.lower()
            ]

    # --- dispatch ---------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes, base: str) -> Reply:
        """Serve one request (``headers`` with lower-case names; ``base`` is ``https://host:port``)."""
        url = urlsplit(target)
        path = "/" + url.path.strip("/")
        with self.lock:
            if path.startswith("/_emulator/"):
                return self._control(method, path, body)
            try:
                reply = self._serve(method, path, parse_qs(url.query), headers, body, base)
            except ArmError as exc:
                reply = exc.reply()
            self.requests.append(RequestRecord(method, path, reply.status))
            return reply

    def _serve(
        self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes, base: str
    ) -> Reply:
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            challenge = 'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token"'
            message = "Authentication failed. The 'Authorization' header is missing or not a bearer token."
            raise ArmError(401, "AuthenticationFailed", message, {"WWW-Authenticate": challenge})
        self._fault(method, path)
        if "api-version" not in query:
            message = "The api-version query parameter (?api-version=) is required for all requests."
            raise ArmError(400, "MissingApiVersionParameter", message)
        try:
            payload = loads_lenient(body) if body else {}
        except ValueError as exc:
            raise ArmError(400, "InvalidRequestContent", f"The request content was not valid JSON: {exc}") from exc
        for route, pattern in _COMPILED:
            match = pattern.match(path)
            if match is None:
                continue
            args = match.groupdict()
            if args["sub"].lower() not in self.subscriptions:
                raise ArmError(404, "SubscriptionNotFound", f"The subscription '{args['sub']}' could not be found.")
            return self._route(route, method, args, payload, base)
        raise ArmError(404, "NotFound", f"The sandbox ARM emulator has no {method} {path}.")

    def _route(self, route: str, method: str, args: dict[str, str], payload: Any, base: str) -> Reply:
        sub = args["sub"]
        rg = args.get("rg")
        name = args.get("name", "")
        deploy = self.deploy
        handlers: dict[tuple[str, str], Any] = {
            ("subscription", "GET"): lambda: self._subscription(sub),
            ("operation", "GET"): lambda: self.poll_operation(args["op"]),
            ("subscription_resources", "GET"): lambda: self._list_resources(sub, None),
            ("groups", "GET"): lambda: Reply(
                200, {"value": [g for (s, _), g in self.groups.items() if s == sub.lower()]}
            ),
            ("group", "PUT"): lambda: self._put_group(sub, args["rg"], payload),
            ("group", "GET"): lambda: Reply(200, self.group(sub, args["rg"])),
            ("group", "HEAD"): lambda: Reply(204 if (sub.lower(), args["rg"].lower()) in self.groups else 404),
            ("group", "DELETE"): lambda: self._delete_group(sub, args["rg"], base),
            ("group_resources", "GET"): lambda: self._list_resources(sub, args["rg"]),
            ("deployments", "GET"): lambda: deploy.list(sub, rg),
            ("deployment", "PUT"): lambda: deploy.put(sub, rg, name, payload, base),
            ("deployment", "GET"): lambda: deploy.get(sub, rg, name),
            ("deployment", "HEAD"): lambda: deploy.head(sub, rg, name),
            ("deployment", "DELETE"): lambda: deploy.delete(sub, rg, name, base),
            ("deployment_action", "POST"): lambda: deploy.action(sub, rg, name, args["action"], payload, base),
            ("deployment_operations", "GET"): lambda: deploy.operations(sub, rg, name),
            ("deployment_status", "GET"): lambda: deploy.status(sub, rg, name, args["op"]),
            ("resource", "GET"): lambda: Reply(200, self.resource(self._resource_id(args))),
            ("resource", "HEAD"): lambda: Reply(204 if self._resource_id(args).lower() in self.resources else 404),
            ("resource", "DELETE"): lambda: self._delete_resource(self._resource_id(args)),
            ("sub_resource", "GET"): lambda: Reply(
                200, self.resource(f"/subscriptions/{sub}/providers/{args['rest']}")
            ),
        }
        handler = handlers.get((route, method))
        if handler is None:
            raise ArmError(405, "MethodNotAllowed", f"The sandbox ARM emulator does not support {method} here.")
        return handler()  # type: ignore[no-any-return]

    def _fault(self, method: str, path: str) -> None:
        for fault in self.faults:
            if fault.method not in (None, method) or (fault.path_contains or "").lower() not in path.lower():
                continue
            fault.count -= 1
            if fault.count <= 0:
                self.faults.remove(fault)
            code = fault.code or _FAULT_CODES.get(fault.status, "BadRequest")
            message = fault.message or _FAULT_MESSAGES.get(fault.status, "The request is invalid.")
            headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            raise ArmError(fault.status, code, message, headers)

    def _control(self, method: str, path: str, body: bytes) -> Reply:
        """``/_emulator/...``: the handle's methods over HTTP, for an emulator in another process."""
        payload = json.loads(body) if body else {}
        try:
            if (method, path) == ("POST", "/_emulator/faults"):
                names = {"retryAfter": "retry_after", "pathContains": "path_contains"}
                options = {names.get(k, k): v for k, v in payload.items() if k not in ("status", "count")}
                self.inject_fault(int(payload.get("status", 429)), int(payload.get("count", 1)), **options)
                return Reply(204)
            if (method, path) == ("POST", "/_emulator/resources"):
                if payload.get("delete"):
                    self.delete_resource(str(payload["id"]))
                    return Reply(204)
                return Reply(200, self.patch_resource(str(payload["id"]), payload.get("changes", {})))
            if (method, path) == ("GET", "/_emulator/requests"):
                return Reply(200, {"value": [asdict(r) for r in self.requests]})
            if (method, path) == ("POST", "/_emulator/reset"):
                self.reset()
                return Reply(204)
        except ArmError as exc:
            return exc.reply()
        except (KeyError, TypeError, ValueError) as exc:
            return ArmError(400, "InvalidRequestContent", f"bad emulator control request: {exc}").reply()
        return ArmError(404, "NotFound", f"no emulator control {method} {path}").reply()

    # --- subscriptions, resource groups, resources -------------------------------------

    def _subscription(self, sub: str) -> Reply:
        return Reply(
            200,
            {
                "id": f"/subscriptions/{sub}",
                "subscriptionId": sub,
                "tenantId": self.tenant_id,
                "displayName": "Strata sandbox",
                "state": "Enabled",
                "authorizationSource": "RoleBased",
                "subscriptionPolicies": {"quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"},
            },
        )

    def _put_group(self, sub: str, rg: str, payload: dict[str, Any]) -> Reply:
        location = str(payload.get("location", "")).lower().replace(" ", "")
        if not location:
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        existing = self.groups.get((sub.lower(), rg.lower()))
        if existing is None:
            group = {
                "id": f"/subscriptions/{sub}/resourceGroups/{rg}",
                "name": rg,
                "type": "Microsoft.Resources/resourceGroups",
                "location": location,
                "tags": payload.get("tags") or {},
                "properties": {"provisioningState": "Succeeded"},
            }
            self.groups[(sub.lower(), rg.lower())] = group
            return Reply(201, group)
        if existing["properties"]["provisioningState"] == "Deleting":
            message = f"The resource group '{rg}' is in deprovisioning state and cannot perform this operation."
            raise ArmError(409, "ResourceGroupBeingDeleted", message)
        if existing["location"] != location:
            message = (
                f"Invalid resource group location '{location}'. "
                f"The Resource group already exists in location '{existing['location']}'."
            )
            raise ArmError(409, "InvalidResourceGroupLocation", message)
        existing["tags"] = payload.get("tags") or existing.get("tags") or {}
        return Reply(200, existing)

    def _delete_group(self, sub: str, rg: str, base: str) -> Reply:
        group = self.group(sub, rg)
        group["properties"]["provisioningState"] = "Deleting"

        def finish() -> Reply:
            self.groups.pop((sub.lower(), rg.lower()), None)
            self.drop_resources(group["id"])
            for key in [k for k in self.deployments if k[:2] == (sub.lower(), rg.lower())]:
                del self.deployments[key]
            return Reply(200)

        return self.start_operation(sub, base, finish)

    def _list_resources(self, sub: str, rg: str | None) -> Reply:
        """Resources - List (by group or subscription); child resources are listed too."""
        if rg is not None:
            self.group(sub, rg)
        return Reply(200, {"value": [copy.deepcopy(r) for r in self.resources_in(sub, rg)]})

    def _resource_id(self, args: dict[str, str]) -> str:
        self.group(args["sub"], args["rg"])
        return f"/subscriptions/{args['sub']}/resourceGroups/{args['rg']}/providers/{args['rest']}"

    def _delete_resource(self, resource_id: str) -> Reply:
        if resource_id.lower() not in self.resources:
            return Reply(204)
        self.drop_resources(resource_id)
        return Reply(200)


def _deep_merge(target: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
