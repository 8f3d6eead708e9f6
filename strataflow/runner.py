"""Deploying one component: resolve it, skip it when unchanged, call its backend, build its record.

No Prefect here: the task wraps ``execute`` with a logger, the secret lookup and the state
write, so this logic is tested without a server. A backend error never escapes: it becomes
a ``failed`` report, and the record carries the last successful apply forward, so a
failure never loses what is deployed.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from strataflow import cancel, refs, templateparams, threads
from strataflow.backends import registry
from strataflow.backends.base import Action, Backend, ComponentRun, Drift, mask
from strataflow.config import Environment, Platform
from strataflow.errors import (
    BackendError,
    Cancelled,
    CommandTimeout,
    MissingOutput,
    StrataError,
    TemplateError,
    TransientError,
)
from strataflow.handoff import Handoff
from strataflow.records import DURATIONS_KEPT, MASK, Applied, ComponentRecord, Decision, DriftRecord, masked, now
from strataflow.releases import Bundle, verify_tree
from strataflow.report import ComponentReport
from strataflow.resolve import Resolved, SecretLookup, resolve

RETRIES = 3
"""Transient errors that reach the runner (the backends retry first) are retried this often."""
STOPPING = 5.0
"""Seconds a call past its timeout and grace gets, once told to stop, to come back (``_bounded``)."""


def timeout_grace(timeout: float) -> float:
    """Seconds the runner waits for a backend past the component's timeout: 5 s + 10%, at most 30 s.

    Backends enforce the timeout themselves and clean up (kill a command's process group,
    interrupt terraform); the grace lets them, then the runner stops waiting for a call that
    hangs (a cloud API that never answers).
    """
    return min(30.0, 5.0 + 0.1 * timeout)


@dataclass
class Job:
    """Everything needed to deploy one component in one run."""

    platform: Platform
    env: Environment
    cloud: str
    name: str
    action: Action
    upstream_outputs: dict[str, dict[str, Any]]
    sensitive_upstream: dict[str, frozenset[str]] = field(default_factory=dict)
    """Each upstream's sensitive output keys: masked in this run, kept out of its record."""
    previous: ComponentRecord | None = None
    force: bool = False
    flow_run_id: str | None = None
    actor: str | None = None
    sandbox: dict[str, Any] | None = None
    """Endpoint and credentials of the emulated cloud, when running in the sandbox."""
    state_dir: Path | None = None
    credentials: dict[str, Any] = field(default_factory=dict, repr=False)
    handoff: Handoff | None = field(default=None, repr=False)
    """Where the task hands its result to the scheduler before writing its record (see handoff.py)."""
    record_after: tuple[str, ...] = ()
    """Components of this run whose records must be written before this one's."""
    bundle: Bundle | None = None
    """The bundle deployed: its files are under ``platform.root_of(name)`` and are checked before the backend runs."""
    release: str | None = None
    """The release the run deploys (recorded on the component's record)."""
    how: str = "apply"
    """apply, promotion, rollback or break-glass (recorded)."""
    source: str | None = None
    """The environment promoted from (promotions)."""
    approval: Decision | None = None
    """Who approved the change (recorded on the component's record)."""


@dataclass(repr=False)
class Result:
    report: ComponentReport
    record: ComponentRecord | None
    """The new state record, or None when nothing changed (unchanged, plan)."""
    summary: list[str] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    """Real output values for downstream components (the report's are masked)."""
    sensitive: frozenset[str] = frozenset()
    """The keys of ``outputs`` that are sensitive."""

    def __repr__(self) -> str:
        # Prefect logs a failed task's state with its data: show no outputs there
        return f"Result({self.report.status})"


def build_run(job: Job, *, secret: SecretLookup | None, log: Callable[[str], None]) -> tuple[ComponentRun, Resolved]:
    """The backend's view of the job, and how it was resolved."""
    planning = job.action != "apply"
    if job.bundle is not None:
        verify_tree(job.bundle, job.platform.root_of(job.name))
    resolved = resolve(
        job.platform,
        job.env,
        job.cloud,
        job.name,
        job.upstream_outputs,
        planning=planning,
        secret=secret,
        sensitive=job.sensitive_upstream,
        bundle=job.bundle.digest if job.bundle is not None else None,
    )
    target = job.env.target(job.cloud)
    credentials = job.credentials
    if job.sandbox:
        target = target.model_copy(update={"endpoint_url": job.sandbox["endpoint_url"]})
        credentials = job.sandbox.get("credentials", {})
    secrets = resolved.secrets
    run = ComponentRun(
        env=job.env.name,
        cloud=job.cloud,
        component=job.name,
        action=job.action,
        impl=resolved.impl,
        parameters=resolved.parameters,
        config_dir=job.platform.root_of(job.name).resolve(),
        target=target,
        version=job.platform.components[job.name].version,
        digest=resolved.digest,
        flow_run_id=job.flow_run_id,
        actor=job.actor,
        timeout=resolved.timeout,
        sandbox=job.sandbox is not None,
        credentials=credentials,
        secrets=secrets,
        state_dir=job.state_dir,
        settings=job.env.settings_for(resolved.impl.backend),
        log=lambda line: log(mask(line, secrets)),
        scripts=resolved.scripts,
        script_values=resolved.script_values,
    )
    return run, resolved


def resolve_run(
    job: Job, *, secret: SecretLookup | None, log: Callable[[str], None]
) -> tuple[ComponentRun, Resolved]:
    """``build_run`` with the real values of sensitive upstream outputs (read again where recorded masked).

    For a look at a component outside ``execute`` (the drift check): it resolves as an apply does.
    """
    unreadable = _read_sensitive_upstream(job, secret, log)
    if unreadable:
        raise unreadable[0]
    return build_run(job, secret=secret, log=log)


def execute(job: Job, *, secret: SecretLookup | None = None, log: Callable[[str], None] = lambda _: None) -> Result:
    """Plan, apply or destroy one component; never raises for a component failure."""
    started = now()
    clock = time.monotonic()
    secrets: frozenset[str] = frozenset()

    def say(line: str) -> None:  # every line of this function's own goes through masking too
        log(mask(line, secrets))

    try:
        unreadable = _read_sensitive_upstream(job, secret, log)
        run, resolved = build_run(job, secret=secret, log=log)
        digest = resolved.digest
        secrets = run.secrets
        backend: Backend = registry.backend(run.impl.backend)
        if job.action in ("plan", "apply"):
            check_parameters(job.name, resolved, run.parameters)
        if _unchanged(job, digest, backend, run):
            say(f"{job.name}: unchanged (digest {digest}); not run again")
            applied = job.previous.applied if job.previous and job.action in ("apply", "plan") else None
            if applied is None:
                return _result(job, "unchanged", started, clock, {}, frozenset(), 0, None, None, write=False)
            outputs = dict(applied.outputs)
            if applied.sensitive and job.action == "apply":  # a plan shows them masked, as recorded
                outputs.update({k: v for k, v in backend.outputs(run).items() if k in applied.sensitive})
            return _result(
                job, "unchanged", started, clock, outputs, frozenset(applied.sensitive), 0, None, None, write=False
            )
        if unreadable and job.action != "plan":
            raise unreadable[0]
        outcome = _bounded(lambda: _with_retries(lambda: getattr(backend, job.action)(run), say), run.timeout, job.name)
    except Cancelled as exc:  # the run was cancelled (strataflow/cancel.py): recorded cancelled, never a success
        message = mask(str(exc), secrets)
        say(f"{job.name}: {job.action} cancelled: {message}")
        return _result(job, "cancelled", started, clock, {}, frozenset(), 0, message, None)
    except StrataError as exc:
        message = mask(str(exc), secrets)
        say(f"{job.name}: {job.action} failed: {message}")
        return _result(job, "failed", started, clock, {}, frozenset(), 0, message, None)
    except Exception as exc:  # noqa: BLE001 - a backend bug fails the component, not the run
        message = mask(f"unexpected {type(exc).__name__}: {exc}", secrets)
        say(f"{job.name}: {job.action} failed: {message}")
        return _result(job, "failed", started, clock, {}, frozenset(), 0, message, None)
    if job.action == "plan":
        status = "planned"
    else:
        status = "unchanged" if outcome.no_changes and job.action == "destroy" else "succeeded"
    result = _result(
        job,
        status,
        started,
        clock,
        outcome.outputs,
        outcome.sensitive | carrying_secrets(outcome.outputs, secrets),
        outcome.changes,
        None,
        resolved,
        write=job.action != "plan",
    )
    result.summary = [mask(line, secrets) for line in outcome.summary]
    return result


def carrying_secrets(outputs: dict[str, Any], secrets: frozenset[str]) -> frozenset[str]:
    """The keys of ``outputs`` whose values hold a secret in any form: stored and shown masked, like sensitive ones."""
    if not secrets:
        return frozenset()
    found = set()
    for key, value in outputs.items():
        texts = [text for _, text in refs.walk(value)]
        texts.append(json.dumps(value, sort_keys=True, default=str))
        texts.append(json.dumps(value, sort_keys=True, default=str, ensure_ascii=False))
        if any(mask(text, secrets) != text for text in texts):
            found.add(key)
    return frozenset(found)


def _read_sensitive_upstream(job: Job, secret: SecretLookup | None, log: Callable[[str], None]) -> list[MissingOutput]:
    """Replace the masked values of sensitive upstream outputs (from the state records) by the real ones.

    An upstream outside the run (``--resume``, ``--select``) gives its recorded outputs, where sensitive
    values are stored masked: they are read again from the upstream's backend, as an unchanged
    component's are, so the component never gets ``***`` as a value. Where the backend cannot read
    them again (a command's outputs exist only when it runs), the ones this component uses are
    returned as errors: it must not run with ``***`` as a value.
    """
    unreadable: list[MissingOutput] = []
    used = _outputs_used(job)
    for dep, keys in job.sensitive_upstream.items():
        known = job.upstream_outputs.get(dep, {})
        masked_keys = [key for key in keys if known.get(key) == MASK]
        if not masked_keys:
            continue
        upstream = replace(
            job, name=dep, action="plan", upstream_outputs={}, sensitive_upstream={}, previous=None, bundle=None
        )
        run, _ = build_run(upstream, secret=secret, log=log)
        values = registry.backend(run.impl.backend).outputs(run)
        job.upstream_outputs[dep] = {**known, **{key: values[key] for key in masked_keys if key in values}}
        for key in sorted(k for k in masked_keys if k not in values and (dep, k) in used):
            unreadable.append(
                MissingOutput(
                    f"{job.name} needs {dep}.outputs.{key}, which is sensitive (recorded masked) and which "
                    f"{dep}'s {run.impl.backend} backend cannot read again; apply {dep} with it: "
                    f"strata apply {job.env.name} --cloud {job.cloud} --select {dep}+ --force",
                    component=job.name,
                )
            )
    return unreadable


def _outputs_used(job: Job) -> set[tuple[str, str]]:
    """The (upstream, key) outputs the job's component references."""
    impl = job.platform.components[job.name].impl(job.cloud)
    found = refs.find([impl.model_dump() if impl else {}, job.env.override(job.name).parameters])
    return {(ref.name, str(ref.key)) for _, ref in found if isinstance(ref, refs.Ref) and ref.kind == "output"}


def _unchanged(job: Job, digest: str, backend: Backend, run: ComponentRun) -> bool:
    previous = job.previous
    if job.force:
        return False
    if job.action == "destroy":
        return previous is None or previous.state in ("destroyed", "never")
    if previous is None or previous.applied is None:
        return False
    if job.action not in ("apply", "plan") or previous.state != "applied" or previous.applied.digest != digest:
        return False
    return backend.exists(run)


def check_parameters(name: str, resolved: Resolved, parameters: dict[str, Any]) -> None:
    """The resolved parameters against what the template declares, before the backend is called.

    Validation checked what is known before anything runs; here upstream outputs and secrets
    have their values, so those are checked too (a value not known yet, in a plan, is not).
    Raises ``TemplateError`` (never retried) naming each problem; a secure value is never shown.
    """
    if resolved.declared is None:
        return
    issues = templateparams.check(resolved.declared, parameters, unknown=_not_known_yet)
    if issues:
        problems = "; ".join(issue.message for issue in issues)
        raise TemplateError(f"{name}: parameters refused before deploying: {problems}", component=name)


def _not_known_yet(value: Any) -> bool:
    """A value holding a plan's placeholder, or an upstream's masked output that could not be read again."""
    return any(refs.KNOWN_AFTER_APPLY in text or text == MASK for _, text in refs.walk(value))


def _bounded(call: Callable[[], Any], timeout: float | None, component: str) -> Any:
    """``call()`` under the run's cancellation; past the component's timeout and grace, stopped (CommandTimeout).

    With a timeout the call runs in a thread of its own with a token of its own, a child of the
    run's (``strataflow/cancel.py``). When the run is cancelled this waits for the backend to
    return: the backend stops on the token (no new cloud call, its waits end, its programs are
    interrupted), so no thread that may still call the cloud is left behind a run that ends.
    Past the timeout and grace the call's own token is cancelled, and the call gets
    ``STOPPING`` seconds more to come back. One that does not (blocked in a socket read, which
    Python cannot stop) is left behind fenced: its token is cancelled, so it sends nothing
    more; an operation it already sent carries on in the cloud anyway.
    """
    if timeout is None:
        return call()  # in this thread, under the run's token
    limit = timeout + timeout_grace(timeout)
    outcome: dict[str, Any] = {}
    finished = threading.Event()
    run = cancel.current()
    with run.child() as token:

        def target() -> None:
            try:
                with cancel.scope(token):
                    outcome["value"] = call()
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread below
                outcome["error"] = exc
            finally:
                finished.set()

        threads.start(target, name=f"strata-{component}")
        if not finished.wait(limit):
            token.cancel(f"{component} ran past its timeout of {timeout:g}s")
            if not finished.wait(STOPPING):
                waited = f"(waited {limit:g}s, and {STOPPING:g}s more after telling it to stop)"
                if run.cancelled():
                    raise Cancelled(
                        f"{component}: {run.reason}, and its backend call did not return {waited}; stopped waiting "
                        "for it: it can send nothing more, but what it sent carries on",
                        component=component,
                    )
                raise CommandTimeout(
                    f"{component}: its backend call did not return within its timeout of {timeout:g}s {waited}; "
                    "stopped waiting for it: it can send nothing more",
                    component=component,
                )
            error = outcome.get("error")
            if isinstance(error, Cancelled) and not run.cancelled():
                raise CommandTimeout(
                    f"{component}: ran past its timeout of {timeout:g}s and was stopped: {error}", component=component
                ) from error
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _with_retries(call: Callable[[], Any], log: Callable[[str], None]) -> Any:
    """``call()``, retrying TransientError (past the backends' own retries) with backoff; never once cancelled."""
    token = cancel.current()
    for attempt in range(RETRIES + 1):
        token.raise_if_cancelled("calling the backend")
        try:
            return call()
        except TransientError as exc:
            if attempt == RETRIES:
                raise
            delay = exc.retry_after if exc.retry_after is not None else min(2.0**attempt, 20.0)
            log(f"transient error, retrying in {delay:g}s: {exc}")  # a masking logger (execute's say)
            if token.wait(delay):
                raise Cancelled(f"{exc}; not retried: {token.reason}") from exc
    raise AssertionError("unreachable")


def _result(
    job: Job,
    status: str,
    started: Any,
    clock: float,
    outputs: dict[str, Any],
    sensitive: frozenset[str],
    changes: int,
    error: str | None,
    resolved: Resolved | None,
    write: bool = True,
) -> Result:
    duration = round(time.monotonic() - clock, 3)
    finished = now()
    report = ComponentReport(
        status=status,
        started_at=started,
        finished_at=finished,
        duration_s=duration,
        outputs=masked(outputs, sensitive),
        changes=changes,
        error=error,
    )
    record = (
        _record(job, status, started, finished, duration, outputs, sensitive, changes, error, resolved)
        if write and job.action != "plan"
        else None
    )
    return Result(report=report, record=record, outputs=outputs, sensitive=frozenset(sensitive))


def _record(
    job: Job,
    status: str,
    started: Any,
    finished: Any,
    duration: float,
    outputs: dict[str, Any],
    sensitive: frozenset[str],
    changes: int,
    error: str | None,
    resolved: Resolved | None,
) -> ComponentRecord:
    """The new state record of an apply or destroy."""
    previous = job.previous
    applied = previous.applied if previous else None
    durations = list(previous.durations) if previous else []
    if status == "succeeded" and job.action == "apply":
        assert resolved is not None
        applied = Applied(
            digest=resolved.digest,
            bundle=resolved.bundle,
            release=job.release,
            how=job.how,
            source=job.source,
            approval=job.approval,
            parameters=resolved.shown_parameters,
            version=job.platform.components[job.name].version,
            outputs=masked(outputs, sensitive),
            sensitive=sorted(sensitive),
            applied_at=finished,
            actor=job.actor,
            flow_run_id=job.flow_run_id,
        )
        durations = ([*durations, duration])[-DURATIONS_KEPT:]
    elif status in ("succeeded", "unchanged") and job.action == "destroy":
        applied = None
    return ComponentRecord(
        env=job.env.name,
        cloud=job.cloud,
        component=job.name,
        action=job.action,
        status=status,
        applied=applied,
        error=error,
        changes=changes,
        durations=durations,
        started_at=started,
        finished_at=finished,
        flow_run_id=job.flow_run_id,
        actor=job.actor,
        drift=previous.drift if previous and status != "succeeded" else None,
        sandbox=job.sandbox is not None,
    )


def drift_record(drift: Drift) -> DriftRecord:
    return DriftRecord(checked_at=now(), supported=drift.supported, drifted=drift.drifted, resources=drift.resources)


__all__ = [
    "BackendError",
    "Job",
    "Result",
    "build_run",
    "carrying_secrets",
    "check_parameters",
    "drift_record",
    "execute",
    "resolve_run",
]
