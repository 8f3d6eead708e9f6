"""Azure plumbing for the ``arm`` backend: credentials, shared clients, error mapping, formatting.

``clients_for`` makes the SDK clients once per endpoint, subscription, credential and
settings in this process (threads share them: Azure SDK clients are thread-safe).
``azure_errors`` is the one place Azure SDK exceptions become strataflow errors. The rest
turns deployments, what-if results and templates into outputs and summary lines.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenCredential, TokenRequestOptions
from azure.core.exceptions import AzureError, HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.mgmt.resource.deployments import DeploymentsMgmtClient
from azure.mgmt.resource.deployments.models import DeploymentParameter, DeploymentProperties
from azure.mgmt.resource.resources import ResourceManagementClient

from strataflow.backends import process
from strataflow.backends.base import ComponentRun, mask
from strataflow.config import AzureTarget
from strataflow.errors import BackendError, ResourceBusy, StrataError, TemplateError, TransientError
from strataflow.refs import KNOWN_AFTER_APPLY

DEFAULT_ENDPOINT = "https://management.azure.com"
SANDBOX_TOKEN = "strata-sandbox"  # noqa: S105 - the sandbox emulator accepts any bearer token
_TEMPLATE_CODES = frozenset(
    {
        "InvalidTemplate",
        "InvalidTemplateDeployment",
        "InvalidDeploymentParameterValue",
        "InvalidRequestContent",
        "DeploymentOutputEvaluationFailed",
        "MissingTemplateParameter",
    }
)
_BUSY_CODES = frozenset({"DeploymentActive", "DeploymentActiveAndUneditable", "ResourceGroupBeingDeleted"})
_SYMBOLS = {"Create": "+", "Delete": "-", "Modify": "~", "NoChange": "=", "Deploy": "!", "Unsupported": "?"}
_QUIET = frozenset({"NoChange", "Ignore"})
DRIFT_CHANGES = frozenset({"Create", "Delete", "Modify"})

_cache_lock = threading.Lock()
_clients: dict[str, Clients] = {}
_credentials: dict[str, TokenCredential] = {}
_verified: set[str] = set()


class StaticTokenCredential:
    """A ``TokenCredential`` that always presents the same bearer token (sandbox, tests, CI-issued tokens)."""

    def __init__(self, token: str, lifetime: int = 3600) -> None:
        self._token = token
        self._lifetime = lifetime

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        del scopes, claims, tenant_id, enable_cae, kwargs
        return AccessToken(self._token, int(time.time()) + self._lifetime)

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        del scopes, options
        return AccessTokenInfo(self._token, int(time.time()) + self._lifetime)

    def __repr__(self) -> str:
        return "StaticTokenCredential(token=***)"


@dataclass(frozen=True)
class Clients:
    """The SDK clients for one endpoint, subscription and credential; ``secrets`` are masked in errors."""

    key: str
    resources: ResourceManagementClient
    deploy: DeploymentsMgmtClient
    secrets: frozenset[str]


def plain(value: Any) -> Any:
    """``value`` with pydantic ``SecretStr`` values revealed (they go to Azure, never to a log)."""
    reveal = getattr(value, "get_secret_value", None)
    if callable(reveal):
        return reveal()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def has_unknown(value: Any) -> bool:
    if isinstance(value, str):
        return KNOWN_AFTER_APPLY in value
    if isinstance(value, dict):
        return any(has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(has_unknown(v) for v in value)
    return False


def _retry_after(exc: HttpResponseError) -> float | None:
    headers = getattr(exc.response, "headers", None) or {}
    for name, scale in (("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001), ("retry-after", 1.0)):
        text = headers.get(name)
        if not text:
            continue
        try:
            return max(0.0, float(text) * scale)
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(text).timestamp() - time.time())
            except (TypeError, ValueError):
                return None
    return None


def _code_and_message(exc: HttpResponseError) -> tuple[str, str]:
    error = exc.error
    code = (getattr(error, "code", None) or "").strip()
    message = (getattr(error, "message", None) or "").strip()
    if not code:
        code = f"HTTP {exc.status_code}" if exc.status_code else type(exc).__name__
    if not message:
        message = (exc.message or str(exc)).splitlines()[0] if (exc.message or str(exc)) else ""
    return code, message


@contextmanager
def azure_errors(run: ComponentRun, doing: str, secrets: frozenset[str] = frozenset()) -> Iterator[None]:
    """Map every Azure SDK exception to strataflow's tree, with no secret in any message."""
    hide = run.secrets | secrets
    context = {"env": run.env, "component": run.component}
    try:
        yield
    except StrataError:
        raise
    except HttpResponseError as exc:
        status = exc.status_code
        code, message = _code_and_message(exc)
        text = mask(f"{run.component}: {doing} failed: {code}: {message}", hide)
        if status is not None and (status in (408, 429) or status >= 500):
            raise TransientError(
                text, retry_after=_retry_after(exc), status=status, code=code, env=run.env, component=run.component
            ) from exc
        if code in _TEMPLATE_CODES:
            raise TemplateError(text, code=code, **context) from exc
        if code in _BUSY_CODES:
            raise ResourceBusy(text, code=code, **context) from exc
        if status is None or status == 401:
            raise BackendError(
                mask(f"{run.component}: {doing} failed: Azure authentication failed: {message}", hide),
                code=code,
                **context,
            ) from exc
        raise BackendError(text, status=status, code=code, **context) from exc
    except (ServiceRequestError, ServiceResponseError) as exc:
        text = mask(f"{run.component}: {doing} failed: cannot reach Azure Resource Manager: {exc.message}", hide)
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            raise BackendError(text + " (is ca_bundle set for this endpoint?)", **context) from exc
        raise TransientError(text, env=run.env, component=run.component) from exc
    except AzureError as exc:
        raise BackendError(mask(f"{run.component}: {doing} failed: {exc.message}", hide), **context) from exc


def deployment_properties(template: Any, parameters: dict[str, Any]) -> DeploymentProperties:
    """An Incremental deployment of ``template`` with each parameter wrapped as ``{"value": v}``."""
    wrapped = {name: DeploymentParameter(value=value) for name, value in parameters.items()}
    return DeploymentProperties(mode="Incremental", template=template, parameters=wrapped)


def _credential(creds: dict[str, Any], target: AzureTarget) -> TokenCredential:
    """The credential named by the block's keys (see the module docstring)."""
    if creds.get("token"):
        return StaticTokenCredential(str(creds["token"]))
    if creds.get("client_id") and creds.get("client_secret"):
        from azure.identity import ClientSecretCredential

        tenant = creds.get("tenant_id") or target.tenant_id
        if not tenant:
            raise BackendError("Azure credentials with client_id and client_secret also need tenant_id")
        return ClientSecretCredential(str(tenant), str(creds["client_id"]), str(creds["client_secret"]))
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def response_json(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def leaf_errors(error: dict[str, Any]) -> list[tuple[str, str]]:
    """The innermost ``(code, message)`` pairs of an Azure error (details nest)."""
    details = [d for d in error.get("details") or [] if isinstance(d, dict)]
    if details:
        return [leaf for d in details for leaf in leaf_errors(d)]
    if not error.get("code") and not error.get("message"):
        return []
    return [(str(error.get("code") or "Failed"), str(error.get("message") or "").strip())]


def unwrap_outputs(outputs: dict[str, Any]) -> tuple[dict[str, Any], frozenset[str]]:
    """``{"k": {"type": "String", "value": v}}`` -> ``{"k": v}``, and the secure outputs' keys."""
    values: dict[str, Any] = {}
    sensitive = set()
    for name, spec in outputs.items():
        if not isinstance(spec, dict):
            values[name] = spec
            continue
        if str(spec.get("type", "")).lower() in ("securestring", "secureobject"):
            sensitive.add(name)
        if "value" in spec:
            values[name] = spec["value"]
    return values, frozenset(sensitive)


def short(resource_id: str) -> str:
    """``Microsoft.Network/virtualNetworks/vnet-dev`` for a full resource id."""
    return resource_id.rsplit("/providers/", 1)[-1] if "/providers/" in resource_id else resource_id


def _resource_type(resource_id: str) -> str:
    parts = short(resource_id).split("/")
    return "/".join(parts[0:2] + parts[3::2])


def api_version_for(resource_id: str, versions: dict[str, str]) -> str:
    kind = _resource_type(resource_id).lower()
    while kind.count("/") >= 1:
        if versions.get(kind):
            return versions[kind]
        kind = kind.rsplit("/", 1)[0]
    raise BackendError(
        f"no API version known for {short(resource_id)}: it is not declared in the deployment's template"
    )


def change_lines(changes: list[dict[str, Any]]) -> tuple[list[str], int]:
    """What-if changes as summary lines (Ignore left out), and how many are real changes."""
    lines, counted = [], 0
    for change in changes:
        kind = str(change.get("changeType", ""))
        if kind not in _QUIET:
            counted += 1
        if kind == "Ignore":
            continue
        line = f"{_SYMBOLS.get(kind, '?')} {kind} {short(str(change.get('resourceId', '')))}"
        paths = [str(d.get("path")) for d in change.get("delta") or [] if d.get("path")]
        if kind == "Modify" and paths:
            line += f" (properties: {', '.join(paths)})"
        if kind == "Unsupported" and change.get("unsupportedReason"):
            line += f" ({change['unsupportedReason']})"
        lines.append(line)
    return lines, counted


def drift_line(change: dict[str, Any]) -> str:
    kind = str(change.get("changeType"))
    what = {"Create": "missing (deleted outside strataflow)", "Delete": "not in the template", "Modify": "changed"}[
        kind
    ]
    paths = [str(d.get("path")) for d in change.get("delta") or [] if d.get("path")]
    return f"{short(str(change.get('resourceId', '')))}: {what}" + (f" ({', '.join(paths)})" if paths else "")


def template_lines(template: dict[str, Any], verb: str) -> list[str]:
    """One line per resource the template declares (names may still be expressions)."""
    lines: list[str] = []

    def collect(resources: list[Any], parent: tuple[str, str] | None) -> None:
        for resource in resources:
            kind, name = str(resource.get("type", "?")), str(resource.get("name", "?"))
            if parent and "/" not in kind:
                kind, name = f"{parent[0]}/{kind}", f"{parent[1]}/{name}"
            lines.append(f"~ {kind} {name} {verb}")
            collect(resource.get("resources") or [], (kind, name))

    collect(list(template.get("resources") or []), None)
    return lines


def clients_for(
    run: ComponentRun, target: AzureTarget, *, polling_interval: float, sdk_retries: int, max_backoff: float
) -> Clients:
    """The process's clients for ``target`` and ``run.credentials``, made on first use."""
    endpoint = (target.endpoint_url or DEFAULT_ENDPOINT).rstrip("/")
    creds = {k: plain(v) for k, v in run.credentials.items() if v is not None}
    if run.sandbox and not creds.get("token") and not creds.get("client_secret"):
        creds["token"] = SANDBOX_TOKEN
    secrets = frozenset(str(creds[k]) for k in ("client_secret", "token") if creds.get(k))
    who = json.dumps([creds.get("tenant_id") or target.tenant_id, creds.get("client_id"), sorted(secrets)])
    fingerprint = hashlib.sha256(who.encode()).hexdigest()[:16]
    ca_bundle = creds.get("ca_bundle")
    subscription = str(target.subscription_id)
    key = json.dumps([endpoint, subscription, fingerprint, ca_bundle, polling_interval, sdk_retries, max_backoff])
    with _cache_lock:
        found = _clients.get(key)
        if found is None:
            credential = _credentials.get(fingerprint)
            if credential is None:
                credential = _credentials[fingerprint] = _credential(creds, target)
            options: dict[str, Any] = {
                "base_url": endpoint,
                "polling_interval": polling_interval,
                "retry_total": sdk_retries,
                "retry_backoff_factor": 0.8,
                "retry_backoff_max": max_backoff,
            }
            if ca_bundle:
                options["connection_verify"] = str(ca_bundle)
            found = _clients[key] = Clients(
                key,
                ResourceManagementClient(credential, subscription, **options),
                DeploymentsMgmtClient(credential, subscription, **options),
                secrets,
            )
    return found


def subscription_verified(clients: Clients, *, mark: bool = False) -> bool:
    """Whether these clients' subscription was already checked in this process (``mark``: it now is)."""
    with _cache_lock:
        if mark:
            _verified.add(clients.key)
        return clients.key in _verified


def load_template(run: ComponentRun) -> dict[str, Any]:
    """The component's ARM template as JSON (Bicep compiled with ``bicep build --stdout``)."""
    path = run.path
    context = {"env": run.env, "component": run.component}
    if not path.is_file():
        raise TemplateError(f"{run.component}: template {path} does not exist", **context)
    if path.suffix == ".bicep":
        bicep = shutil.which("bicep")
        if bicep is None:
            raise TemplateError(f"{run.component}: {path} is Bicep; install the bicep CLI or use ARM JSON", **context)
        out: list[str] = []
        done = process.run(
            [bicep, "build", "--stdout", str(path)], cwd=path.parent, env=os.environ, timeout=300, on_stdout=out.append
        )
        if done.code != 0 or done.timed_out:
            detail = "timed out after 300 s" if done.timed_out else "\n".join(done.stderr).strip()[:2000]
            raise TemplateError(f"{run.component}: bicep build {path.name} failed: {detail}", **context)
        text = "\n".join(out)
    else:
        text = path.read_text(encoding="utf-8")
    try:
        template = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"{path}:{exc.lineno}:{exc.colno}"
        raise TemplateError(f"{run.component}: {where}: invalid JSON: {exc.msg}", **context) from exc
    if not isinstance(template, dict):
        raise TemplateError(f"{run.component}: {path} is not an ARM template (a JSON object)", **context)
    return template
