"""AWS CloudFormation: plan, apply, destroy, outputs, exists and drift of one stack (boto3).

apply validates the template (CloudFormation's own message, never retried), refuses other
accounts, then creates or updates the stack and polls it, logging its events; what each
stack status and botocore error means is in support.py. plan is a change
set, described then deleted; parameters still ``(known after apply)`` keep their previous
value, or the plan lists the template's resources. "No updates" is a result (``_Op.unchanged``);
botocore errors are mapped in ``translated``, transient ones retried with backoff in ``_Op.call``.

Emulators (moto) fail a resource synchronously inside CreateStack and leave the stack
CREATE_IN_PROGRESS: that is a ``DeploymentFailed`` and the stack is deleted, as AWS's rollback
would. Without ListImports importers are found in the other stacks' templates; without drift
detection ``drift`` answers ``supported=False``.

A cancelled run (``strataflow/cancel.py``) makes no new call: each one checks the token first,
and botocore's ``before-send`` checks it again (so botocore's own retries stop too). Waits
(a stack settling, a change set, drift detection, a retry's backoff) sleep on the token and
wake at once. A stack being created, updated or deleted is left as it is, neither deleted nor
rolled back: CloudFormation carries on, and ``Cancelled`` says in which state it was left and
that ``--resume`` waits for it to settle and takes it from there.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import suppress
from typing import Any

from botocore import xform_name
from botocore.config import Config

from strataflow import cancel
from strataflow.backends.base import ComponentRun, Drift, Outcome, mask
from strataflow.backends.cloudformation import CloudFormationImpl
from strataflow.backends.cloudformation.clients import (
    cache_lock,
    clear_caches,
    client,
    client_key,
    secret_text,
    validated_templates,
    verified_accounts,
)
from strataflow.backends.cloudformation.drift import parameter_drift
from strataflow.backends.cloudformation.support import (
    Json,
    Missing,
    NoChanges,
    StackAction,
    Standing,
    Unsupported,
    change_line,
    for_emulator,
    import_name,
    load_template,
    result_of,
    says_no_changes,
    stack_outputs,
    standing,
    template_imports,
    translated,
)
from strataflow.config import AwsTarget
from strataflow.errors import (
    AccountMismatch,
    BackendError,
    Cancelled,
    CommandTimeout,
    DeploymentFailed,
    ResourceBusy,
    TemplateError,
)
from strataflow.refs import KNOWN_AFTER_APPLY, as_text

MAX_TEMPLATE_BODY = 51_200
"""Bytes CloudFormation accepts inline; larger templates go through the template bucket."""
_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=60)
_STACK_TYPE = "AWS::CloudFormation::Stack"
_DOING: dict[StackAction, str] = {"create": "creating", "update": "updating", "delete": "deleting"}


def _refuse_when_cancelled(**kwargs: Any) -> None:
    """botocore's ``before-send``: no request leaves once the calling thread's run is cancelled (retries included)."""
    del kwargs
    token = cancel.current()
    if token.cancelled():
        raise Cancelled(f"{token.reason}; the request was not sent")


def _fenced(aws: Any) -> Any:
    """``aws`` (a cached boto3 client) with the cancellation check on every request it sends (registered once)."""
    aws.meta.events.register("before-send", _refuse_when_cancelled, unique_id="strata-cancel")
    return aws


# --- one operation on one stack -------------------------------------------------------


class _Op:
    """One backend operation on one run's stack: calls with retries, waiting, events."""

    def __init__(self, backend: CloudFormationBackend, run: ComponentRun) -> None:
        if not isinstance(run.target, AwsTarget) or not isinstance(run.impl, CloudFormationImpl):
            raise BackendError(f"{run.component}: not a CloudFormation component on AWS", component=run.component)
        self.backend, self.run, self.target, self.impl = backend, run, run.target, run.impl
        self.name = run.impl.stack_name or run.default_name
        self.secrets = frozenset(run.secrets | {s for s in map(secret_text, run.credentials.values()) if s})
        self.context: Json = {"env": run.env, "component": run.component, "stack": self.name}
        default_poll = 0.2 if self.target.endpoint_url else 2.0
        self.poll = default_poll if backend.poll_interval is None else backend.poll_interval
        self.timeout = float(run.timeout or self.impl.timeout or backend.wait_timeout)
        self.token = cancel.current()
        self._body: str | None = None

    def log(self, line: str) -> None:
        self.run.log(mask(line, self.secrets))

    def call(self, operation: str, service: str = "cloudformation", subject: str = "", **kwargs: Any) -> Json:
        """``operation`` with errors mapped; transient errors retried with exponential backoff and jitter."""
        attempts, base = max(1, self.backend.attempts), self.backend.backoff
        emulator = bool(self.target.endpoint_url)
        for attempt in range(1, attempts + 1):
            self.token.raise_if_cancelled(f"{operation} on {subject or self.name}")
            try:
                with translated(operation, subject=subject or self.name, secrets=self.secrets, emulator=emulator):
                    aws = _fenced(client(service, self.target, self.run.credentials))
                    return dict(getattr(aws, xform_name(operation))(**kwargs))
            except BackendError as exc:
                exc.context.update(self.context)
                if not exc.retryable or attempt == attempts:
                    raise
                delay = min(base * 2 ** (attempt - 1), 30.0) + random.uniform(0, base)  # noqa: S311 - jitter
                self.log(f"{exc}; retrying in {delay:.1f} s (attempt {attempt + 1} of {attempts})")
                if self.token.wait(delay):
                    raise Cancelled(f"{exc}; not retried: {self.token.reason}", **self.context) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def pages(self, operation: str, key: str, **kwargs: Any) -> Iterator[Any]:
        while True:
            page = self.call(operation, **kwargs)
            yield from page.get(key, [])
            if not page.get("NextToken"):
                return
            kwargs["NextToken"] = page["NextToken"]

    def body(self) -> str:
        if self._body is None:
            try:
                self._body = self.run.path.read_text(encoding="utf-8")
            except OSError as exc:
                raise TemplateError(
                    f"{self.name}: cannot read template {self.run.path}: {exc}", **self.context
                ) from exc
        return self._body

    def template(self) -> dict[str, str]:
        """TemplateBody, or TemplateURL after uploading a template over 51,200 bytes to the template bucket.

        An emulator (an ``endpoint_url``: the sandbox's moto) gets the template strataflow parsed, as
        JSON: moto cannot read YAML short tags with mapping operands (``!GetAZs {Ref: ...}``). AWS
        gets the template as written.
        """
        body, bucket = self.body(), self.target.template_bucket
        if self.target.endpoint_url:
            body = json.dumps(for_emulator(load_template(body), self.target.region), separators=(",", ":"), default=str)
        if len(body.encode()) <= MAX_TEMPLATE_BODY:
            return {"TemplateBody": body}
        if not bucket:
            raise TemplateError(
                f"{self.run.path} is over CloudFormation's {MAX_TEMPLATE_BODY}-byte limit for inline templates; "
                "set template_bucket in the environment's aws settings",
                **self.context,
            )
        key = f"strataflow/{self.name}/{hashlib.sha256(body.encode()).hexdigest()[:20]}.template"
        self.call("PutObject", service="s3", Bucket=bucket, Key=key, Body=body.encode())
        return {"TemplateURL": f"https://{bucket}.s3.{self.target.region}.amazonaws.com/{key}"}

    def validate(self, template: Mapping[str, str]) -> None:
        """validate_template, once per template content per process."""
        digest = hashlib.sha256(self.body().encode()).hexdigest()
        with cache_lock:
            if digest in validated_templates:
                return
        self.call("ValidateTemplate", subject=str(self.impl.template), **template)
        with cache_lock:
            validated_templates.add(digest)

    def unknown(self) -> list[str]:
        return sorted(k for k, v in self.run.parameters.items() if v is not None and KNOWN_AFTER_APPLY in as_text(v))

    def stack_args(self, template: Mapping[str, str], previous: frozenset[str] = frozenset()) -> Json:
        """Name, template, parameters (unknown ones keep their previous value), capabilities and tags."""
        parameters: list[Json] = []
        for key, value in sorted(self.run.parameters.items()):
            if value is None:
                continue
            if KNOWN_AFTER_APPLY not in as_text(value):
                parameters.append({"ParameterKey": key, "ParameterValue": as_text(value)})
            elif key in previous:
                parameters.append({"ParameterKey": key, "UsePreviousValue": True})
            else:
                raise BackendError(f"{self.name}: {key} is not known before its upstream is applied", **self.context)
        tags = {**self.impl.tags, "strata:env": self.run.env, "strata:component": self.run.component}
        if self.run.flow_run_id:
            tags["strata:flow-run"] = self.run.flow_run_id
        return {
            "StackName": self.name,
            "Parameters": parameters,
            "Capabilities": self.impl.capabilities,
            "Tags": [{"Key": k, "Value": str(v)} for k, v in tags.items()],
            **template,
        }

    def describe(self, stack: str | None = None) -> Json | None:
        """The stack (by name or id), or None when there is none."""
        try:
            found = self.call("DescribeStacks", StackName=stack or self.name).get("Stacks", [])
        except Missing:
            return None
        return dict(found[0]) if found else None

    def settled(self) -> Json | None:
        """The stack once no other operation is in progress on it (None: there is none)."""
        deadline = time.monotonic() + self.timeout
        stack = self.describe()
        while stack is not None and standing(stack["StackStatus"]) is Standing.BUSY:
            if time.monotonic() > deadline:
                raise ResourceBusy(f"another operation holds stack {self.name}: {stack['StackStatus']}", **self.context)
            self.log(f"{stack['StackStatus']} {self.name}: waiting for another operation to finish")
            if self.token.wait(self.poll):
                raise Cancelled(
                    f"stack {self.name} is {stack['StackStatus']} (another operation holds it): stopped waiting for it "
                    f"({self.token.reason}); nothing was changed",
                    **self.context,
                )
            stack = self.describe(stack["StackId"])
        return None if stack is None or standing(stack["StackStatus"]) is Standing.GONE else stack

    def events(self, stack_id: str, known: set[str]) -> list[Json]:
        """Events newer than ``known`` (which they join), oldest first; without ``known``, the newest page."""
        fresh: list[Json] = []
        kwargs: Json = {"StackName": stack_id}
        with suppress(Missing):
            while True:
                page = self.call("DescribeStackEvents", **kwargs)
                new = [e for e in page.get("StackEvents", []) if e["EventId"] not in known]
                fresh.extend(new)
                if not known or len(new) < len(page.get("StackEvents", [])) or not page.get("NextToken"):
                    break
                kwargs["NextToken"] = page["NextToken"]
        known.update(e["EventId"] for e in fresh)
        return fresh[::-1]

    def wait(self, stack_id: str, action: StackAction, known: set[str]) -> tuple[Json, list[Json]]:
        """Poll until the stack settles, logging its events; raise unless ``action`` succeeded.

        Cancelled: it stops at once, between polls or before the next call, and raises
        ``left``: the stack stays as CloudFormation has it.
        """
        deadline = time.monotonic() + self.timeout
        seen: list[Json] = []
        status = f"{action.upper()}_IN_PROGRESS"  # what the operation just accepted made it
        while True:
            try:
                self.token.raise_if_cancelled(f"polling stack {self.name}")
                stack = self.describe(stack_id) or {"StackId": stack_id, "StackStatus": "DELETE_COMPLETE"}
                status = stack["StackStatus"]
                fresh = self.events(stack_id, known)
            except Cancelled:
                raise self.left(action, status) from None
            for event in fresh:
                seen.append(event)
                status, why = event["ResourceStatus"], event.get("ResourceStatusReason")
                reason = f": {why}" if why and "FAILED" in status else ""
                self.log(f"{status} {event['LogicalResourceId']} {event.get('ResourceType')}{reason}")
            if standing(stack["StackStatus"]) is not Standing.BUSY:
                result_of(action, stack["StackStatus"], self.reason(seen, stack), **self.context)
                return stack, seen
            if time.monotonic() > deadline:
                raise CommandTimeout(
                    f"stack {self.name} is still {stack['StackStatus']} after {self.timeout:.0f} s; CloudFormation "
                    "carries on: look at its events, then apply again",
                    **self.context,
                )
            if self.token.wait(self.poll):
                raise self.left(action, stack["StackStatus"])

    def left(self, action: StackAction, status: str) -> Cancelled:
        """The run was cancelled while CloudFormation worked on the stack: say where it was left, and what to do."""
        command = "destroy" if action == "delete" else "apply"
        return Cancelled(
            f"stack {self.name} was left {status}: strataflow stopped waiting while CloudFormation was "
            f"{_DOING[action]} it ({self.token.reason}), and neither deleted nor rolled it back; CloudFormation "
            f"carries on with it. Watch it (aws cloudformation describe-stack-events --stack-name {self.name}), "
            f"then `strata {command} {self.run.env} --cloud aws --resume`, which waits for it to settle and goes on "
            "from there",
            **self.context,
        )

    def reason(self, events: list[Json], stack: Mapping[str, Any]) -> str:
        """The first failing resource's reason (the later ones are 'cancelled'), else the stack's; masked."""
        for event in events:
            why = str(event.get("ResourceStatusReason") or "")
            if event["ResourceStatus"].endswith("FAILED") and why and "cancelled" not in why:
                failed = f"{event['LogicalResourceId']} ({event.get('ResourceType')}) {event['ResourceStatus']}"
                return mask(f"{failed}: {why}", self.secrets)
        return mask(str(stack.get("StackStatusReason") or "CloudFormation gave no reason"), self.secrets)

    def check_account(self) -> None:
        """Refuse credentials that reach another account than the environment's (once per client and account)."""
        expected = self.target.account_id
        key = (*client_key(self.target, self.run.credentials), expected or "")
        with cache_lock:
            if not expected or key in verified_accounts:
                return
        actual = str(self.call("GetCallerIdentity", service="sts").get("Account"))
        if actual != expected:
            raise AccountMismatch(
                f"the credentials of environment {self.run.env} reach AWS account {actual}, but the environment "
                f"deploys to account {expected}; stack {self.name} was not touched",
                **self.context,
            )
        with cache_lock:
            verified_accounts.add(key)

    def unchanged(self, stack: Mapping[str, Any]) -> Outcome:
        """The one place that says the stack already is what was asked for."""
        self.log(f"{self.name}: no changes")
        return Outcome(no_changes=True, outputs=stack_outputs(stack))

    def parameter_drift(self, stack: Mapping[str, Any]) -> list[str]:
        """Stack parameters someone changed behind strataflow's back (an update-stack by hand), by meaning;
        the values of secret and NoEcho ones are never shown (``drift.parameter_drift``)."""
        deployed = {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters", [])}
        declared = load_template(self.body()).get("Parameters") or {}
        return parameter_drift(self.run.parameters, deployed, declared, self.secrets)

    def same_as_deployed(self, stack: Mapping[str, Any], args: Json) -> bool:
        """Template, parameters and tags but the flow run's equal the stack's: UpdateStack would only retag it."""
        tags = [
            {t["Key"]: t["Value"] for t in ts or [] if t["Key"] != "strata:flow-run"}
            for ts in (stack.get("Tags"), args["Tags"])
        ]
        current = self.call("GetTemplate", StackName=stack["StackId"], TemplateStage="Original").get("TemplateBody")
        body: Any = self.body()
        if isinstance(current, dict):  # botocore decodes JSON templates
            with suppress(ValueError):
                body = json.loads(body)
        declared = load_template(self.body()).get("Parameters") or {}
        wanted = {k: as_text(v["Default"]) for k, v in declared.items() if isinstance(v, dict) and "Default" in v}
        wanted |= {p["ParameterKey"]: p["ParameterValue"] for p in args["Parameters"]}
        now = {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters", [])}
        resolved = any("ResolvedValue" in p for p in stack.get("Parameters", []))  # SSM values resolve anew on update
        return tags[0] == tags[1] and current == body and now == wanted and not resolved

    def create(self, args: Json) -> Outcome:
        try:
            created = self.call("CreateStack", ClientRequestToken=f"strata-create-{uuid.uuid4()}", **args)
        except DeploymentFailed:  # an emulator failed a resource and left the stack CREATE_IN_PROGRESS
            with suppress(BackendError):
                left = self.describe()
                if left is not None and left["StackStatus"] == "CREATE_IN_PROGRESS":
                    self.call("DeleteStack", StackName=left["StackId"])
            raise
        stack, _ = self.wait(created["StackId"], "create", set())
        resources = list(self.pages("ListStackResources", "StackResourceSummaries", StackName=stack["StackId"]))
        summary = [f"+ Add {r['LogicalResourceId']} ({r['ResourceType']})" for r in resources]
        return Outcome(changes=len(resources), outputs=stack_outputs(stack), summary=summary)

    def update(self, stack: Mapping[str, Any], args: Json) -> Outcome:
        if self.same_as_deployed(stack, args):
            return self.unchanged(stack)
        known = {e["EventId"] for e in self.events(stack["StackId"], set())}
        try:
            self.call("UpdateStack", ClientRequestToken=f"strata-update-{uuid.uuid4()}", **args)
        except NoChanges:
            return self.unchanged(stack)
        final, events = self.wait(stack["StackId"], "update", known)
        changed: dict[str, str] = {}
        for event in events:
            status, logical = event["ResourceStatus"], event["LogicalResourceId"]
            if logical != self.name and status.endswith("_COMPLETE"):
                sign = {"CREATE": "+ Add", "DELETE": "- Remove"}.get(status.split("_")[0], "~ Modify")
                changed[logical] = f"{sign} {logical} ({event.get('ResourceType')})"
        return Outcome(changes=len(changed) or 1, outputs=stack_outputs(final), summary=list(changed.values()))

    def delete(self, stack: Mapping[str, Any]) -> None:
        known = {e["EventId"] for e in self.events(stack["StackId"], set())}
        self.call("DeleteStack", StackName=stack["StackId"], ClientRequestToken=f"strata-delete-{uuid.uuid4()}")
        self.wait(stack["StackId"], "delete", known)

    def importers(self, stack: Mapping[str, Any]) -> list[str]:
        """The stacks importing any of ``stack``'s exports."""
        exports = {str(o["ExportName"]) for o in stack.get("Outputs", []) if o.get("ExportName")}
        found: set[str] = set()
        try:
            for export in sorted(exports):
                with suppress(Missing):  # AWS: "Export ... is not imported by any stack"
                    found.update(self.pages("ListImports", "Imports", ExportName=export))
        except Unsupported:
            return self.importers_by_template(exports, str(stack["StackId"]))
        return sorted(found)

    def importers_by_template(self, exports: set[str], own_id: str) -> list[str]:
        """For endpoints without ListImports: the other stacks whose templates import one of ``exports``."""
        found = []
        for other in self.pages("DescribeStacks", "Stacks"):
            if other["StackId"] == own_id or standing(other["StackStatus"]) in (Standing.GONE, Standing.STILLBORN):
                continue
            values = {p["ParameterKey"]: str(p.get("ParameterValue")) for p in other.get("Parameters", [])}
            values |= {"AWS::StackName": other["StackName"], "AWS::Region": self.target.region}
            try:
                body = self.call("GetTemplate", StackName=other["StackId"]).get("TemplateBody")
                names = list(template_imports(body if isinstance(body, dict) else load_template(str(body))))
            except (BackendError, ValueError) as exc:
                raise DeploymentFailed(
                    f"stack {self.name} cannot be destroyed safely: the template of stack {other['StackName']} "
                    f"cannot be read to see whether it imports {self.name}'s exports ({exc})",
                    **self.context,
                ) from exc
            if any(import_name(name, values) in exports for name in names):
                found.append(str(other["StackName"]))
        return sorted(found)

    def preview(self, status: str | None, unknown: list[str]) -> Outcome:
        """What creating the stack would add, read from the template (when no change set is possible)."""
        resources = load_template(self.body()).get("Resources") or {}
        first = f"stack {self.name} will be created"
        if status is not None:
            first = f"stack {self.name} is {status}: it will be deleted and created again"
        if unknown:
            first += f" (parameters known after apply: {', '.join(unknown)})"
        types = {name: spec.get("Type") if isinstance(spec, dict) else None for name, spec in resources.items()}
        lines = [f"+ Add {name} ({kind})" for name, kind in types.items()]
        return Outcome(changes=len(lines), summary=[first, *lines])

    def change_set(self, kind: str, args: Json, stack: Mapping[str, Any] | None) -> Outcome:
        """Create a change set, describe it into an Outcome, delete it (and a CREATE's empty stack)."""
        name = f"strata-plan-{uuid.uuid4().hex[:16]}"
        try:
            created = self.call("CreateChangeSet", ChangeSetName=name, ChangeSetType=kind, **args)
        except NoChanges:
            return self.unchanged(stack or {})
        try:
            deadline = time.monotonic() + self.timeout
            found = self.call("DescribeChangeSet", ChangeSetName=created["Id"])
            while found["Status"] not in ("CREATE_COMPLETE", "FAILED"):
                if time.monotonic() > deadline:
                    raise CommandTimeout(f"{self.name}: change set still {found['Status']}", **self.context)
                if self.token.wait(self.poll):
                    raise Cancelled(
                        f"{self.name}: stopped waiting for change set {name} ({self.token.reason}); it is left "
                        "as it is (a plan changes nothing)",
                        **self.context,
                    )
                found = self.call("DescribeChangeSet", ChangeSetName=created["Id"])
            reason = str(found.get("StatusReason") or "")
            if found["Status"] == "FAILED" and says_no_changes(reason):
                return self.unchanged(stack or {})
            if found["Status"] == "FAILED":
                raise TemplateError(f"{self.name}: the change set failed: {reason}", **self.context)
            changes = list(found.get("Changes", []))
            while found.get("NextToken"):
                found = self.call("DescribeChangeSet", ChangeSetName=created["Id"], NextToken=found["NextToken"])
                changes.extend(found.get("Changes", []))
            lines = [change_line(c) for c in changes if c.get("Type", "Resource") == "Resource"]
            stack_only = f"~ Modify {self.name} ({_STACK_TYPE}): no resource changes (parameters, outputs or tags)"
            return Outcome(changes=len(lines), summary=lines or [stack_only])
        finally:
            with suppress(BackendError):
                self.call("DeleteChangeSet", ChangeSetName=created["Id"])
            with suppress(BackendError):
                left = self.describe(created["StackId"]) if kind == "CREATE" else None
                if left is not None and left["StackStatus"] == "REVIEW_IN_PROGRESS":
                    self.call("DeleteStack", StackName=created["StackId"])


# --- the backend ----------------------------------------------------------------------


class CloudFormationBackend:
    """Deploys a component as one CloudFormation stack (``strata-<env>-<component>`` by default).

    ``poll_interval``: seconds between polls (None: 2 s against AWS, 0.2 s against an
    endpoint_url); ``attempts`` per API call under throttling or 5xx, the first retry after
    ``backoff`` seconds, doubling, plus jitter; ``wait_timeout``: seconds to wait for a stack
    when the run sets no timeout.
    """

    def __init__(
        self,
        *,
        poll_interval: float | None = None,
        attempts: int = 4,
        backoff: float = 1.0,
        wait_timeout: float = 3600.0,
    ) -> None:
        self.poll_interval = poll_interval
        self.attempts = attempts
        self.backoff = backoff
        self.wait_timeout = wait_timeout

    def plan(self, run: ComponentRun) -> Outcome:
        op = _Op(self, run)
        template = op.template()
        op.validate(template)
        stack, unknown = op.settled(), op.unknown()
        status = stack["StackStatus"] if stack else None
        if stack is None or standing(status) is Standing.STILLBORN:
            if unknown or (stack is not None and status != "REVIEW_IN_PROGRESS"):
                return op.preview(status, unknown)
            return op.change_set("CREATE", op.stack_args(template), None)
        previous = frozenset(p["ParameterKey"] for p in stack.get("Parameters", []))
        if set(unknown) - previous:
            line = f"~ Modify {op.name} ({_STACK_TYPE}): parameters known after apply: {', '.join(unknown)}"
            return Outcome(changes=1, summary=[line])
        return op.change_set("UPDATE", op.stack_args(template, previous), stack)

    def apply(self, run: ComponentRun) -> Outcome:
        op = _Op(self, run)
        template = op.template()
        op.validate(template)
        stack = op.settled()
        op.check_account()
        args = op.stack_args(template)
        kind = standing(stack["StackStatus"] if stack else None)
        if stack is not None and kind is Standing.STUCK:
            reason = op.reason(op.events(stack["StackId"], set()), stack)
            raise DeploymentFailed(f"stack {op.name} is {stack['StackStatus']}: {reason}; {kind.value}", **op.context)
        if stack is not None and kind is Standing.STILLBORN:
            op.log(f"{op.name} is {stack['StackStatus']}: {kind.value}")
            op.delete(stack)
            stack = None
        return op.create(args) if stack is None else op.update(stack, args)

    def destroy(self, run: ComponentRun) -> Outcome:
        op = _Op(self, run)
        stack = op.settled()
        if stack is None:
            return Outcome(no_changes=True, summary=[f"stack {op.name} does not exist: nothing to destroy"])
        op.check_account()
        importers = op.importers(stack)
        if importers:
            raise DeploymentFailed(
                f"stack {op.name} cannot be destroyed: its exports are imported by {', '.join(importers)}; "
                "destroy those first",
                **op.context,
            )
        resources = list(op.pages("ListStackResources", "StackResourceSummaries", StackName=stack["StackId"]))
        op.delete(stack)
        summary = [f"- Remove {r['LogicalResourceId']} ({r['ResourceType']})" for r in resources]
        return Outcome(changes=len(resources), summary=summary)

    def outputs(self, run: ComponentRun) -> dict[str, Any]:
        return stack_outputs(_Op(self, run).describe())

    def exists(self, run: ComponentRun) -> bool:
        stack = _Op(self, run).describe()
        return stack is not None and standing(stack["StackStatus"]) not in (Standing.GONE, Standing.STILLBORN)

    def drift(self, run: ComponentRun) -> Drift:
        op = _Op(self, run)
        stack = op.describe()
        if stack is None or standing(stack["StackStatus"]) in (Standing.GONE, Standing.STILLBORN):
            return Drift(supported=True, drifted=True, resources=[f"{op.name} ({_STACK_TYPE}): DELETED"])
        changed = op.parameter_drift(stack)
        try:
            detection = op.call("DetectStackDrift", StackName=stack["StackId"])["StackDriftDetectionId"]
        except Unsupported:  # an emulator: the stack's own parameters are all that can be compared
            return Drift(supported=True, drifted=bool(changed), resources=changed)
        deadline = time.monotonic() + op.timeout
        status = op.call("DescribeStackDriftDetectionStatus", StackDriftDetectionId=detection)
        while status["DetectionStatus"] == "DETECTION_IN_PROGRESS":
            if time.monotonic() > deadline:
                raise CommandTimeout(f"drift detection of stack {op.name} took over {op.timeout:.0f} s", **op.context)
            if op.token.wait(op.poll):
                raise Cancelled(
                    f"drift detection of stack {op.name}: stopped waiting ({op.token.reason})", **op.context
                )
            status = op.call("DescribeStackDriftDetectionStatus", StackDriftDetectionId=detection)
        filters = {"StackResourceDriftStatusFilters": ["MODIFIED", "DELETED"]}
        drifts = op.pages("DescribeStackResourceDrifts", "StackResourceDrifts", StackName=stack["StackId"], **filters)
        resources = [f"{d['LogicalResourceId']} ({d['ResourceType']}): {d['StackResourceDriftStatus']}" for d in drifts]
        drifted = status.get("StackDriftStatus") == "DRIFTED" or bool(resources) or bool(changed)
        return Drift(supported=True, drifted=drifted, resources=changed + resources)


__all__ = ["CloudFormationBackend", "clear_caches", "client"]
