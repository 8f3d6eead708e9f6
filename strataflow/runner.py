"""Deploying one component: resolve it, skip it when unchanged, call its backend, build its record.

No Prefect here: the task wraps ``execute`` with a logger, the secret lookup and the state
write, so this logic is tested without a server. A backend error never escapes: it becomes
a ``failed`` report, and the record carries the last successful apply forward, so a
failure never loses what is deployed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from strataflow import threads
from strataflow.backends import registry
from strataflow.backends.base import Action, Backend, ComponentRun, Drift, mask
from strataflow.config import Environment, Platform
from strataflow.errors import BackendError, CommandTimeout, StrataError, TransientError
from strataflow.handoff import Handoff
from strataflow.records import DURATIONS_KEPT, MASK, Applied, ComponentRecord, DriftRecord, masked, now
from strataflow.report import ComponentReport
from strataflow.resolve import Resolved, SecretLookup, resolve

RETRIES = 3
"""Transient errors that reach the runner (the backends retry first) are retried this often."""


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
    resolved = resolve(
        job.platform,
        job.env,
        job.cloud,
        job.name,
        job.upstream_outputs,
        planning=planning,
        secret=secret,
        sensitive=job.sensitive_upstream,
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
        config_dir=job.platform.root.resolve(),
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
    )
    return run, resolved


def execute(job: Job, *, secret: SecretLookup | None = None, log: Callable[[str], None] = lambda _: None) -> Result:
    """Plan, apply or destroy one component; never raises for a component failure."""
    started = now()
    clock = time.monotonic()
    secrets: frozenset[str] = frozenset()
    try:
        _read_sensitive_upstream(job, secret, log)
        run, resolved = build_run(job, secret=secret, log=log)
        digest = resolved.digest
        secrets = run.secrets
        backend: Backend = registry.backend(run.impl.backend)
        if _unchanged(job, digest, backend, run):
            log(f"{job.name}: unchanged (digest {digest}); not run again")
            applied = job.previous.applied if job.previous and job.action == "apply" else None
            if applied is None:
                return _result(job, "unchanged", started, clock, {}, frozenset(), 0, None, None, write=False)
            outputs = dict(applied.outputs)
            if applied.sensitive:
                outputs.update({k: v for k, v in backend.outputs(run).items() if k in applied.sensitive})
            return _result(
                job, "unchanged", started, clock, outputs, frozenset(applied.sensitive), 0, None, None, write=False
            )
        outcome = _bounded(lambda: _with_retries(lambda: getattr(backend, job.action)(run), log), run.timeout, job.name)
    except StrataError as exc:
        message = mask(str(exc), secrets)
        log(f"{job.name}: {job.action} failed: {message}")
        return _result(job, "failed", started, clock, {}, frozenset(), 0, message, None)
    except Exception as exc:  # noqa: BLE001 - a backend bug fails the component, not the run
        message = mask(f"unexpected {type(exc).__name__}: {exc}", secrets)
        log(f"{job.name}: {job.action} failed: {message}")
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
        outcome.sensitive,
        outcome.changes,
        None,
        resolved,
        write=job.action != "plan",
    )
    result.summary = [mask(line, secrets) for line in outcome.summary]
    return result


def _read_sensitive_upstream(job: Job, secret: SecretLookup | None, log: Callable[[str], None]) -> None:
    """Replace the masked values of sensitive upstream outputs (from the state records) by the real ones.

    An upstream outside the run (``--resume``, ``--select``) gives its recorded outputs, where sensitive
    values are stored masked: they are read again from the upstream's backend, as an unchanged
    component's are, so the component never gets ``***`` as a value.
    """
    for dep, keys in job.sensitive_upstream.items():
        known = job.upstream_outputs.get(dep, {})
        masked_keys = [key for key in keys if known.get(key) == MASK]
        if not masked_keys:
            continue
        upstream = replace(job, name=dep, action="plan", upstream_outputs={}, sensitive_upstream={}, previous=None)
        run, _ = build_run(upstream, secret=secret, log=log)
        values = registry.backend(run.impl.backend).outputs(run)
        job.upstream_outputs[dep] = {**known, **{key: values[key] for key in masked_keys if key in values}}


def _unchanged(job: Job, digest: str, backend: Backend, run: ComponentRun) -> bool:
    previous = job.previous
    if job.force:
        return False
    if job.action == "destroy":
        return previous is None or previous.state in ("destroyed", "never")
    if previous is None or previous.applied is None:
        return False
    if job.action != "apply" or previous.state != "applied" or previous.applied.digest != digest:
        return False
    return backend.exists(run)


def _bounded(call: Callable[[], Any], timeout: float | None, component: str) -> Any:
    """``call()``, but given up on (CommandTimeout) when it outlives the component's timeout and grace.

    The call goes on in a daemon thread: Python cannot stop a thread blocked in a socket read,
    and a cloud operation, once sent, carries on in the cloud anyway.
    """
    if timeout is None:
        return call()
    limit = timeout + timeout_grace(timeout)
    outcome: dict[str, Any] = {}
    finished = threading.Event()

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread below
            outcome["error"] = exc
        finally:
            finished.set()

    threads.start(target, name=f"strata-{component}")
    if not finished.wait(limit):
        raise CommandTimeout(
            f"{component}: its backend call did not return within its timeout of {timeout:g}s "
            f"(waited {limit:g}s); stopped waiting for it",
            component=component,
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _with_retries(call: Callable[[], Any], log: Callable[[str], None]) -> Any:
    for attempt in range(RETRIES + 1):
        try:
            return call()
        except TransientError as exc:
            if attempt == RETRIES:
                raise
            delay = exc.retry_after if exc.retry_after is not None else min(2.0**attempt, 20.0)
            log(f"transient error, retrying in {delay:g}s: {exc}")
            time.sleep(delay)
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
            parameters=resolved.shown_parameters,
            source_digest=resolved.source_digest,
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
    )


def drift_record(drift: Drift) -> DriftRecord:
    return DriftRecord(checked_at=now(), supported=drift.supported, drifted=drift.drifted, resources=drift.resources)


__all__ = ["BackendError", "Job", "Result", "build_run", "drift_record", "execute"]
