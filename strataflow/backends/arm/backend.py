"""Azure Resource Manager backend: one template deployment per component, in a resource group.

A component's ARM JSON template (or Bicep, compiled with ``bicep build --stdout``) is
deployed in Incremental mode as deployment ``deployment_name(run)`` into ``impl.resource_group``
(a group the component owns: created in the environment's location, deleted on destroy) or
else the environment's ``resource_group`` (default ``strata-<env>``; created when missing).

- plan: validate, then what-if, one summary line per resource; with inputs that are only
  known after an upstream's apply, the template's resources are listed instead.
- apply: create-or-update and poll to the end; outputs unwrapped; a failure is raised with
  the failing operation's own error code and message.
- destroy: delete the owned group, or the deployment's resources (in reverse) and record.
- drift: what-if of the applied template and parameters against what exists now.

Clients (``ResourceManagementClient`` from azure-mgmt-resource, ``DeploymentsMgmtClient`` from
azure-mgmt-resource-deployments) are made once per endpoint, subscription and credential
in this process and shared by threads. ``run.credentials`` keys: ``tenant_id`` +
``client_id`` + ``client_secret`` (a service principal), or ``token`` (a fixed bearer
token: the sandbox and tests), plus ``ca_bundle`` (a PEM file to trust, for a local
endpoint); none means ``DefaultAzureCredential`` (or, in a ``--sandbox`` run, a dummy token).
Before plan, apply, destroy and drift, the credential must see ``target.subscription_id``
(checked once per process; else ``AccountMismatch``, before any change). azure-mgmt-resource
26 ships no subscriptions client, so that check is one ``GET /subscriptions/{id}`` sent
through the resources client's pipeline (same credential, retries and TLS settings).
Long-running operations are polled every ``polling_interval`` seconds when Azure sends no
Retry-After (``ArmBackend(polling_interval=...)`` or ``$STRATA_ARM_POLLING_INTERVAL``).

Every Azure SDK exception is mapped in ``support.azure_errors``; transient ones (429, 5xx,
dropped connections) are retried by ``_call`` with backoff, on top of the SDK's own bounded
retry policy (which honours Retry-After).

A cancelled run (``strataflow/cancel.py``) makes no new call: ``_call`` checks the token first,
and the long-running operations carry a request hook that refuses every request once it is
set (the SDK poller's own polls included, so its thread ends). Their waits are slices of
``POLL_SLICE`` seconds with the token checked between them; when it is set the wait raises
Cancelled saying the deployment (or deletion) was left running: Azure carries on with it,
strataflow does not cancel it, and ``--resume`` finishes the work.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from azure.core.exceptions import ResourceNotFoundError
from azure.core.rest import HttpRequest
from azure.mgmt.resource.deployments.models import (
    Deployment,
    DeploymentWhatIf,
    DeploymentWhatIfProperties,
    DeploymentWhatIfSettings,
)

from strataflow import cancel
from strataflow.backends.arm import ArmImpl
from strataflow.backends.arm.support import (
    DEFAULT_ENDPOINT,
    DRIFT_CHANGES,
    Clients,
    api_version_for,
    azure_errors,
    change_lines,
    clients_for,
    deployment_properties,
    drift_line,
    has_unknown,
    leaf_errors,
    load_template,
    plain,
    response_json,
    short,
    subscription_verified,
    template_lines,
    unwrap_outputs,
)
from strataflow.backends.base import ComponentRun, Drift, Outcome, mask
from strataflow.config import AzureTarget
from strataflow.errors import (
    AccountMismatch,
    BackendError,
    Cancelled,
    CommandTimeout,
    DeploymentFailed,
    TemplateError,
    TransientError,
)

SUBSCRIPTIONS_API_VERSION = "2022-12-01"
POLLING_ENV = "STRATA_ARM_POLLING_INTERVAL"
POLL_SLICE = 0.5
"""Seconds between looks at the run's cancellation while waiting for a long-running operation."""
T = TypeVar("T")


class _Refused(Cancelled):
    """The request hook refused to send a request: the run is cancelled."""


def _refusing(token: cancel.Token) -> Callable[[Any], None]:
    """A request hook (``raw_request_hook``) that sends nothing once ``token`` is cancelled."""

    def hook(request: Any) -> None:
        del request
        if token.cancelled():
            raise _Refused(f"{token.reason}; the request was not sent")

    return hook


def _waited(poller: Any, token: cancel.Token, timeout: float | None, stopped: Callable[[str], Cancelled]) -> bool:
    """Wait for ``poller``: True when it is done, False at ``timeout``; ``stopped(status)`` is raised when cancelled.

    The poller's thread re-raises its own failure here, as ``LROPoller.wait`` does.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while not poller.done():
            if token.cancelled():
                raise stopped(str(poller.status()))
            remaining = POLL_SLICE if deadline is None else min(POLL_SLICE, deadline - time.monotonic())
            if remaining <= 0:
                return False
            poller.wait(remaining)
        poller.wait(0)  # what ended the poller's thread, if it failed
    except _Refused:  # the hook refused the poller's next poll
        raise stopped(str(poller.status())) from None
    return True


def deployment_name(run: ComponentRun) -> str:
    """The component's deployment: its own ``deployment_name`` or ``strata-<env>-<component>``."""
    impl = run.impl
    return (impl.deployment_name if isinstance(impl, ArmImpl) else None) or run.default_name


class ArmBackend:
    """The ``arm`` backend (see the module docstring)."""

    def __init__(
        self,
        *,
        polling_interval: float | None = None,
        sdk_retries: int = 3,
        attempts: int = 2,
        backoff: float = 2.0,
        max_backoff: float = 60.0,
    ) -> None:
        """``polling_interval``: seconds between LRO polls when Azure sends no Retry-After
        (default ``$STRATA_ARM_POLLING_INTERVAL``, else 1 s against a custom endpoint and 5 s
        against Azure; the SDK's own default is 30 s). ``sdk_retries``: the SDK's retries of one
        request on 408/429/5xx (it honours Retry-After). ``attempts``: tries of a whole call
        when the SDK has given up on a transient error, ``backoff`` doubling up to ``max_backoff``.
        """
        self.polling_interval = polling_interval
        self.sdk_retries = sdk_retries
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.max_backoff = max_backoff

    # --- the protocol ------------------------------------------------------------------

    def plan(self, run: ComponentRun) -> Outcome:
        clients, target = self._connect(run)
        self._check_subscription(run, clients, target)
        template = load_template(run)
        group, owned = self._group(run)
        if has_unknown(run.parameters):
            run.log("some inputs are known only after an upstream's apply: listing the template's resources")
            lines = template_lines(template, "will be created/updated")
            return Outcome(changes=len(lines), summary=lines)
        exists = self._group_exists(run, clients, group)
        if not exists:
            lines = template_lines(template, "will be created")
            if owned:
                lines.insert(0, f"+ Create Microsoft.Resources/resourceGroups/{group} ({target.location})")
            else:  # the environment's group is every component's: not one component's change, said once per run
                run.log(f"resource group {group} does not exist yet: the first component of {run.env} to apply creates it")
            return Outcome(changes=len(lines), summary=lines)
        parameters = plain(run.parameters)
        deployment = Deployment(properties=deployment_properties(template, parameters))
        run.log(f"validating {deployment_name(run)} in {group}")
        self._call(
            run,
            clients,
            "validating the template",
            lambda: self._through(
                run,
                "validating the template",
                clients.deploy.deployments.begin_validate,
                group,
                deployment_name(run),
                deployment,
            ),
        )
        run.log(f"what-if of {deployment_name(run)} in {group}")
        changes = self._what_if(run, clients, group, template, parameters)
        lines, counted = change_lines(changes)
        return Outcome(changes=counted, summary=lines, no_changes=counted == 0)

    def apply(self, run: ComponentRun) -> Outcome:
        clients, target = self._connect(run)
        self._check_subscription(run, clients, target)
        template = load_template(run)
        group, _ = self._ensure_group(run, clients, target)
        tags = {
            "strata-env": run.env,
            "strata-component": run.component,
            "strata-version": run.version,
            "strata-digest": run.digest,
        }
        deployment = Deployment(
            properties=deployment_properties(template, plain(run.parameters)),
            tags={k: v[:256] for k, v in tags.items() if v},
        )
        run.log(f"deploying {deployment_name(run)} into {group} (Incremental)")
        started = time.monotonic()
        token = cancel.current()
        poller = self._call(
            run,
            clients,
            "starting the deployment",
            lambda: clients.deploy.deployments.begin_create_or_update(
                group, deployment_name(run), deployment, raw_request_hook=_refusing(token)
            ),
        )

        def stopped(status: str) -> Cancelled:
            name = deployment_name(run)
            return Cancelled(
                f"{run.component}: deployment {name} in resource group {group} was left {status}: strataflow "
                f"stopped waiting for it ({token.reason}) and did not cancel it; Azure carries on with it. Watch it "
                f"(az deployment group show -g {group} -n {name}), then `strata apply {run.env} --cloud azure "
                "--resume`",
                env=run.env,
                component=run.component,
            )

        try:
            with azure_errors(run, "deploying", clients.secrets):
                if not _waited(poller, token, run.timeout, stopped):
                    raise CommandTimeout(
                        f"{run.component}: deployment {deployment_name(run)} still running after {run.timeout:g} s",
                        env=run.env,
                        component=run.component,
                    )
                result = poller.result()
        except BackendError as exc:
            if isinstance(exc, CommandTimeout):
                raise
            raise self._failure(run, clients, group) or exc from exc.__cause__
        raw = result.as_dict().get("properties", {})
        outputs, sensitive = unwrap_outputs(raw.get("outputs") or {})
        resources = [short(r.get("id", "")) for r in raw.get("outputResources") or []]
        state, elapsed = raw.get("provisioningState"), time.monotonic() - started
        run.log(f"deployment {deployment_name(run)} {state} in {elapsed:.1f} s: {len(resources)} resources")
        return Outcome(
            changes=len(resources), outputs=outputs, summary=[f"deployed {r}" for r in resources], sensitive=sensitive
        )

    def destroy(self, run: ComponentRun) -> Outcome:
        clients, target = self._connect(run)
        self._check_subscription(run, clients, target)
        group, owned = self._group(run)
        exists = self._group_exists(run, clients, group)
        if not exists:
            return Outcome(no_changes=True, summary=[f"resource group {group} does not exist"])
        if owned:
            run.log(f"deleting resource group {group} (owned by {run.component})")
            self._call(
                run,
                clients,
                "deleting the resource group",
                lambda: self._through(
                    run, "deleting the resource group", clients.resources.resource_groups.begin_delete, group
                ),
            )
            return Outcome(changes=1, summary=[f"- Delete Microsoft.Resources/resourceGroups/{group}"])
        deployment = self._deployment(run, clients, group)
        if deployment is None:
            return Outcome(no_changes=True, summary=[f"deployment {deployment_name(run)} does not exist"])
        versions = self._api_versions(run, clients, group)
        resources = [str(r.get("id", "")) for r in deployment.get("properties", {}).get("outputResources") or []]
        lines = []
        for resource_id in reversed(resources):
            self._delete_resource(run, clients, resource_id, api_version_for(resource_id, versions))
            lines.append(f"- Delete {short(resource_id)}")
        self._call(
            run,
            clients,
            "deleting the deployment record",
            lambda: self._through(
                run,
                "deleting the deployment record",
                clients.deploy.deployments.begin_delete,
                group,
                deployment_name(run),
            ),
        )
        return Outcome(changes=len(lines), summary=lines, no_changes=not lines)

    def _group_exists(self, run: ComponentRun, clients: Any, group: str) -> bool:
        return bool(
            self._call(
                run,
                clients,
                "checking the resource group",
                lambda: clients.resources.resource_groups.check_existence(group),
            )
        )

    def outputs(self, run: ComponentRun) -> dict[str, Any]:
        clients, _ = self._connect(run)
        deployment = self._deployment(run, clients, self._group(run)[0])
        if deployment is None:
            return {}
        return unwrap_outputs(deployment.get("properties", {}).get("outputs") or {})[0]

    def exists(self, run: ComponentRun) -> bool:
        clients, _ = self._connect(run)
        deployment = self._deployment(run, clients, self._group(run)[0])
        return deployment is not None and deployment.get("properties", {}).get("provisioningState") == "Succeeded"

    def drift(self, run: ComponentRun) -> Drift:
        clients, target = self._connect(run)
        self._check_subscription(run, clients, target)
        group, _ = self._group(run)
        exists = self._group_exists(run, clients, group)
        if not exists:
            return Drift(
                supported=True, drifted=True, resources=[f"Microsoft.Resources/resourceGroups/{group}: missing"]
            )
        deployment = self._deployment(run, clients, group)
        if deployment is None:
            return Drift(supported=True, drifted=True, resources=[f"deployment {deployment_name(run)}: missing"])
        exported = self._call(
            run,
            clients,
            "exporting the applied template",
            lambda: clients.deploy.deployments.export_template(group, deployment_name(run)),
        )
        applied = deployment.get("properties", {}).get("parameters") or {}
        current = plain(run.parameters)
        parameters = {
            name: spec["value"] if "value" in spec else current.get(name)
            for name, spec in applied.items()
            if "value" in spec or name in current
        }
        changes = self._what_if(run, clients, group, exported.template, parameters)
        drifted = [drift_line(c) for c in changes if c.get("changeType") in DRIFT_CHANGES]
        return Drift(supported=True, drifted=bool(drifted), resources=drifted)

    # --- helpers -----------------------------------------------------------------------

    @staticmethod
    def _through(run: ComponentRun, doing: str, begin: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``begin(*args, **kwargs)`` (a long-running operation) waited for to its result; stopped when cancelled."""
        token = cancel.current()
        poller = begin(*args, raw_request_hook=_refusing(token), **kwargs)

        def stopped(status: str) -> Cancelled:
            return Cancelled(
                f"{run.component}: {doing} was left {status}: strataflow stopped waiting for it ({token.reason}) "
                f"and did not cancel it; Azure carries on with it. Run `strata {run.action} {run.env} --cloud azure "
                "--resume` once it is over",
                env=run.env,
                component=run.component,
            )

        _waited(poller, token, None, stopped)
        return poller.result()

    def _call(self, run: ComponentRun, clients: Clients, doing: str, fn: Callable[[], T]) -> T:
        """``fn()`` with Azure errors mapped, retrying transient ones with backoff (bounded); none once cancelled."""
        token = cancel.current()
        for attempt in range(1, self.attempts + 1):
            token.raise_if_cancelled(f"{doing} ({run.component})")
            try:
                with azure_errors(run, doing, clients.secrets):
                    return fn()
            except TransientError as exc:
                if attempt >= self.attempts:
                    raise
                delay = exc.retry_after if exc.retry_after is not None else self.backoff * 2 ** (attempt - 1)
                delay = min(delay, self.max_backoff)
                run.log(f"{exc.message}; retrying in {delay:.1f} s (attempt {attempt + 1} of {self.attempts})")
                if token.wait(delay):
                    raise Cancelled(
                        f"{exc.message}; not retried: {token.reason}", env=run.env, component=run.component
                    ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _connect(self, run: ComponentRun) -> tuple[Clients, AzureTarget]:
        target = run.target
        context = {"env": run.env, "component": run.component}
        if not isinstance(target, AzureTarget) or not isinstance(run.impl, ArmImpl):
            raise BackendError(
                f"{run.component}: the arm backend needs an Azure target and an arm component", **context
            )
        if not target.subscription_id:
            raise BackendError(
                f"{run.component}: environment '{run.env}' declares no Azure subscription; "
                f"set clouds.azure.subscription_id in environments/{run.env}.yaml",
                **context,
            )
        interval = self._interval((target.endpoint_url or DEFAULT_ENDPOINT).rstrip("/"))
        clients = clients_for(
            run, target, polling_interval=interval, sdk_retries=self.sdk_retries, max_backoff=self.max_backoff
        )
        return clients, target

    def _interval(self, endpoint: str) -> float:
        if self.polling_interval is not None:
            return self.polling_interval
        configured = os.environ.get(POLLING_ENV)
        if configured:
            return float(configured)
        return 5.0 if endpoint == DEFAULT_ENDPOINT else 1.0

    def _check_subscription(self, run: ComponentRun, clients: Clients, target: AzureTarget) -> None:
        """Refuse, before any change, credentials that cannot see the environment's subscription."""
        subscription = str(target.subscription_id)
        if subscription_verified(clients):
            return
        run.log(f"checking access to subscription {subscription}")
        request = HttpRequest(
            "GET", f"/subscriptions/{subscription}", params={"api-version": SUBSCRIPTIONS_API_VERSION}
        )

        def get() -> Any:
            response = clients.resources.send_request(request)
            if response.status_code not in (200, 403, 404):
                response.raise_for_status()
            return response

        response = self._call(run, clients, "checking the subscription", get)
        body = response_json(response)
        seen = str(body.get("subscriptionId", "")) if response.status_code == 200 else ""
        if seen.lower() != subscription.lower():
            error = body.get("error") or {}
            why = f"{error.get('code', 'HTTP ' + str(response.status_code))}: {error.get('message', '')}".rstrip(": ")
            raise AccountMismatch(
                f"{run.component}: the Azure credentials cannot use subscription {subscription} of environment "
                f"'{run.env}' ({why}); nothing was changed",
                env=run.env,
                component=run.component,
                subscription=subscription,
            )
        subscription_verified(clients, mark=True)

    def _group(self, run: ComponentRun) -> tuple[str, bool]:
        """The deployment's resource group, and whether the component owns it."""
        impl, target = run.impl, run.target
        owned = getattr(impl, "resource_group", None)
        if owned:
            return str(owned), True
        return (getattr(target, "resource_group", None) or f"strata-{run.env}"), False

    def _ensure_group(self, run: ComponentRun, clients: Clients, target: AzureTarget) -> tuple[str, bool]:
        group, owned = self._group(run)
        groups = clients.resources.resource_groups
        tags = {"managed-by": "strataflow", "strata-env": run.env}
        if owned:
            run.log(f"ensuring resource group {group} in {target.location} (owned by {run.component})")
            body = {"location": target.location, "tags": {**tags, "strata-component": run.component}}
            self._call(run, clients, "creating the resource group", lambda: groups.create_or_update(group, body))
        elif not self._call(run, clients, "checking the resource group", lambda: groups.check_existence(group)):
            run.log(f"creating shared resource group {group} in {target.location}")
            self._call(
                run,
                clients,
                "creating the resource group",
                lambda: groups.create_or_update(group, {"location": target.location, "tags": tags}),
            )
        return group, owned

    def _delete_resource(self, run: ComponentRun, clients: Clients, resource_id: str, api_version: str) -> None:
        run.log(f"deleting {short(resource_id)}")
        self._call(
            run,
            clients,
            f"deleting {short(resource_id)}",
            lambda: self._through(
                run,
                f"deleting {short(resource_id)}",
                clients.resources.resources.begin_delete_by_id,
                resource_id,
                api_version=api_version,
            ),
        )

    def _what_if(
        self, run: ComponentRun, clients: Clients, group: str, template: Any, parameters: dict[str, Any]
    ) -> list[dict[str, Any]]:
        props = deployment_properties(template, parameters)
        request = DeploymentWhatIf(
            properties=DeploymentWhatIfProperties(
                mode=props.mode,
                template=props.template,
                parameters=props.parameters,
                what_if_settings=DeploymentWhatIfSettings(result_format="FullResourcePayloads"),
            )
        )
        result = self._call(
            run,
            clients,
            "what-if",
            lambda: self._through(
                run, "what-if", clients.deploy.deployments.begin_what_if, group, deployment_name(run), request
            ),
        )
        raw = result.as_dict()
        if raw.get("error"):
            error = raw["error"]
            raise TemplateError(
                mask(
                    f"{run.component}: what-if failed: {error.get('code')}: {error.get('message')}",
                    run.secrets | clients.secrets,
                ),
                env=run.env,
                component=run.component,
            )
        return list((raw.get("properties") or {}).get("changes") or [])

    def _deployment(self, run: ComponentRun, clients: Clients, group: str) -> dict[str, Any] | None:
        def get() -> dict[str, Any] | None:
            try:
                return clients.deploy.deployments.get(group, deployment_name(run)).as_dict()
            except ResourceNotFoundError:
                return None

        return self._call(run, clients, "reading the deployment", get)

    def _failure(self, run: ComponentRun, clients: Clients, group: str) -> DeploymentFailed | None:
        """The deployment's failure, with each failed operation's own code and message (None: not failed)."""
        deployment = self._deployment(run, clients, group)
        props = (deployment or {}).get("properties", {})
        if props.get("provisioningState") not in ("Failed", "Canceled"):
            return None
        operations = self._call(
            run,
            clients,
            "listing the deployment operations",
            lambda: [op.as_dict() for op in clients.deploy.deployment_operations.list(group, deployment_name(run))],
        )
        reasons = []
        for operation in operations:
            op = operation.get("properties") or {}
            if op.get("provisioningState") != "Failed":
                continue
            status = op.get("statusMessage")
            error = status.get("error", status) if isinstance(status, dict) else {"message": str(status or "")}
            where = short((op.get("targetResource") or {}).get("id", ""))
            reasons += [f"{code}: {message}" + (f" ({where})" if where else "") for code, message in leaf_errors(error)]
        if not reasons:
            reasons = [f"{code}: {message}" for code, message in leaf_errors(props.get("error") or {})]
        if props.get("provisioningState") == "Canceled":
            reasons = reasons or ["the deployment was canceled"]
        text = mask(
            f"{run.component}: deployment {deployment_name(run)} failed: " + "; ".join(reasons),
            run.secrets | clients.secrets,
        )
        run.log(text)
        return DeploymentFailed(text, env=run.env, component=run.component, deployment=deployment_name(run))

    def _api_versions(self, run: ComponentRun, clients: Clients, group: str) -> dict[str, str]:
        """Resource type (lower case) -> API version, from the deployment's own template."""
        exported = self._call(
            run,
            clients,
            "exporting the applied template",
            lambda: clients.deploy.deployments.export_template(group, deployment_name(run)),
        )
        versions: dict[str, str] = {}

        def collect(resources: list[Any], parent: str | None) -> None:
            for resource in resources:
                kind = str(resource.get("type", ""))
                if parent and "/" not in kind:
                    kind = f"{parent}/{kind}"
                if not kind.startswith("["):
                    versions.setdefault(kind.lower(), str(resource.get("apiVersion", "")))
                collect(resource.get("resources") or [], kind)

        collect(list((exported.template or {}).get("resources") or []), None)
        return versions
