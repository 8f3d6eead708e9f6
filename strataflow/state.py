"""State and audit trail, kept in Prefect's run history: the only module that reads or writes it.

Each component's state is a keyed artifact ``strata-<env>-<cloud>-<component>``: every
finished task writes a new version synchronously, so the Prefect UI shows the versions
and the latest one is the state. Each run writes ``strata-runs-<env>-<cloud>`` when it
starts and when it ends: that is the history. The environment lock is a Prefect global
concurrency limit held with a lease, so a crashed run frees it.
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from strataflow import threads
from strataflow.errors import LockedError, StateError

OK_STATUSES = frozenset({"succeeded", "unchanged"})
REDO_STATUSES = frozenset({"failed", "skipped", "cancelled"})
LEASE_SECONDS = 60.0
"""Prefect's minimum lease; renewed every 30 s, so a crashed run frees the lock within about a minute."""
DURATIONS_KEPT = 10
STATE_ARTIFACT = "strata-state"
RUN_ARTIFACT = "strata-run"


def now() -> datetime:
    return datetime.now(UTC)


class Applied(BaseModel):
    """What the last successful apply left deployed."""

    digest: str
    version: str | None = None
    outputs: dict[str, Any] = Field(default_factory=dict)
    sensitive: list[str] = Field(default_factory=list, description="Output keys stored masked.")
    parameters: dict[str, Any] = Field(default_factory=dict, description="Resolved parameters, secrets as references.")
    source_digest: str | None = Field(default=None, description="Digest of the template/module files alone.")
    applied_at: datetime
    actor: str | None = None
    flow_run_id: str | None = None


class DriftRecord(BaseModel):
    checked_at: datetime
    supported: bool
    drifted: bool
    resources: list[str] = Field(default_factory=list)


class ComponentRecord(BaseModel):
    """The latest known state of one component in one environment and cloud."""

    env: str
    cloud: str
    component: str
    action: str
    status: str
    applied: Applied | None = None
    error: str | None = None
    changes: int = 0
    durations: list[float] = Field(default_factory=list, description="Recent successful apply durations (s).")
    started_at: datetime | None = None
    finished_at: datetime | None = None
    flow_run_id: str | None = None
    actor: str | None = None
    drift: DriftRecord | None = None

    @property
    def state(self) -> Literal["applied", "failed", "destroyed", "never"]:
        if self.action == "destroy" and self.status in OK_STATUSES:
            return "destroyed"
        if self.status == "failed":
            return "failed"
        return "applied" if self.applied is not None else "never"

    def expected_duration(self) -> float | None:
        return statistics.median(self.durations) if self.durations else None


class RunRecord(BaseModel):
    """One orchestrator or promotion run: who ran what, when, and how it ended."""

    kind: Literal["orchestrate", "promote", "approval", "unlock", "drift"] = "orchestrate"
    env: str
    cloud: str
    action: str
    status: str
    flow_run_id: str | None = None
    actor: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    select: str | None = None
    planned: list[str] = Field(default_factory=list)
    components: dict[str, str] = Field(default_factory=dict)
    detail: dict[str, Any] = Field(default_factory=dict, description="Promotion, approval, reason...")


def applied_outputs(records: dict[str, ComponentRecord] | Any) -> dict[str, dict[str, Any]]:
    """The outputs of each component that is currently applied (for resolving its consumers)."""
    return {n: dict(r.applied.outputs) for n, r in records.items() if r.applied is not None and r.state == "applied"}


def component_key(env: str, cloud: str, component: str) -> str:
    return f"strata-{env}-{cloud}-{component}".lower()


def run_key(env: str, cloud: str) -> str:
    return f"strata-runs-{env}-{cloud}".lower()


_local = threading.local()


@contextlib.contextmanager
def _client() -> Iterator[Any]:
    """A Prefect client kept open per thread and API: one connection, not one per record."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    cached = getattr(_local, "client", None)
    if cached is None or cached[0] != url:
        client = get_client(sync_client=True)
        client.__enter__()
        cached = (url, client)
        _local.client = cached
    yield cached[1]


@contextlib.contextmanager
def _api(what: str) -> Iterator[None]:
    """Map Prefect client failures to StateError, naming what could not be done."""
    try:
        yield
    except (StateError, LockedError):
        raise
    except Exception as exc:
        from prefect.settings import PREFECT_API_URL

        raise StateError(
            f"cannot {what} at the Prefect API {PREFECT_API_URL.value()}: {type(exc).__name__}: {exc}"
        ) from exc


# --- component records ------------------------------------------------------------------


def _create(
    key: str, kind: str, data: dict[str, Any], description: str, flow_run_id: str | None, task_run_id: str | None
) -> None:
    from prefect.client.schemas.actions import ArtifactCreate

    artifact = ArtifactCreate(
        key=key,
        type=kind,
        data=data,
        description=description,
        flow_run_id=UUID(flow_run_id) if flow_run_id else None,
        task_run_id=UUID(task_run_id) if task_run_id else None,
    )
    with _client() as client:
        client.create_artifact(artifact)


def write_component(record: ComponentRecord, task_run_id: str | None = None) -> None:
    """Record a component's new state (synchronously, before its task reports finished)."""
    with _api(f"record the state of {record.component}"):
        _create(
            component_key(record.env, record.cloud, record.component),
            STATE_ARTIFACT,
            record.model_dump(mode="json"),
            _describe(record),
            record.flow_run_id,
            task_run_id,
        )


def _describe(record: ComponentRecord) -> str:
    lines = [f"**{record.component}** in `{record.env}` ({record.cloud}): {record.action} {record.status}"]
    if record.applied:
        lines.append(f"version `{record.applied.version or '-'}`, digest `{record.applied.digest}`")
    if record.error:
        lines.append(f"error: {record.error}")
    return "\n\n".join(lines)


def _records(artifacts: list[Any], model: type[BaseModel]) -> list[Any]:
    found = []
    for artifact in artifacts:
        if isinstance(artifact.data, dict):
            with contextlib.suppress(ValueError):
                found.append(model.model_validate(artifact.data))
    return found


def sensitive_keys(records: Mapping[str, ComponentRecord]) -> dict[str, frozenset[str]]:
    """Each applied component's sensitive output keys (their recorded values are masked)."""
    return {name: frozenset(r.applied.sensitive) for name, r in records.items() if r.applied is not None}


def latest_components(env: str, cloud: str, names: list[str]) -> dict[str, ComponentRecord]:
    """The latest record of each named component (absent when it was never run)."""
    if not names:
        return {}
    from prefect.client.schemas.filters import ArtifactCollectionFilter, ArtifactCollectionFilterKey

    keys = [component_key(env, cloud, n) for n in names]
    records: dict[str, ComponentRecord] = {}
    with _api(f"read the state of {env} ({cloud})"), _client() as client:
        for start in range(0, len(keys), 200):
            chunk = keys[start : start + 200]
            found = client.read_latest_artifacts(
                artifact_filter=ArtifactCollectionFilter(key=ArtifactCollectionFilterKey(any_=chunk)),
                limit=len(chunk),
            )
            for record in _records(found, ComponentRecord):
                if record.env == env and record.cloud == cloud:
                    records[record.component] = record
    return records


def component_history(env: str, cloud: str, component: str, limit: int) -> list[ComponentRecord]:
    """Every recorded action on one component, newest first."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with _api(f"read the history of {component} in {env}"), _client() as client:
        found = _read_paged(
            client,
            ArtifactFilter(key=ArtifactFilterKey(any_=[component_key(env, cloud, component)])),
            ArtifactSort.CREATED_DESC,
            limit,
        )
    return _records(found, ComponentRecord)


PAGE = 200
"""The most artifacts the Prefect API returns per request (PREFECT_SERVER_API_DEFAULT_LIMIT); more is HTTP 422."""


def _read_paged(client: Any, artifact_filter: Any, sort: Any, limit: int) -> list[Any]:
    """Up to ``limit`` artifacts, newest first, in pages the API accepts."""
    found: list[Any] = []
    while len(found) < limit:
        size = min(PAGE, limit - len(found))
        page = client.read_artifacts(artifact_filter=artifact_filter, sort=sort, limit=size, offset=len(found))
        found.extend(page)
        if len(page) < size:
            break
    return found


# --- run records -----------------------------------------------------------------------


def write_run(record: RunRecord) -> None:
    summary = ", ".join(f"{name}: {status}" for name, status in sorted(record.components.items()))
    description = f"**{record.action}** `{record.env}` ({record.cloud}) by {record.actor}: {record.status}\n\n{summary}"
    with _api(f"record the run of {record.env}"):
        _create(
            run_key(record.env, record.cloud),
            RUN_ARTIFACT,
            record.model_dump(mode="json"),
            description,
            record.flow_run_id,
            None,
        )


def run_history(env: str, cloud: str, limit: int) -> list[RunRecord]:
    """Runs of the environment, newest first, one entry per run (its latest record)."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with _api(f"read the history of {env}"), _client() as client:
        found = _read_paged(
            client,
            ArtifactFilter(key=ArtifactFilterKey(any_=[run_key(env, cloud)])),
            ArtifactSort.CREATED_DESC,
            limit * 2 + 2,
        )
    runs: list[RunRecord] = []
    seen: set[str] = set()
    for record in _records(found, RunRecord):
        ident = record.flow_run_id or f"{record.kind}-{record.started_at}"
        if ident not in seen:
            seen.add(ident)
            runs.append(record)
    runs.sort(key=lambda r: r.started_at or now(), reverse=True)
    return runs[:limit]


def latest_run(env: str, cloud: str, action: str | None = None) -> RunRecord | None:
    for record in run_history(env, cloud, 20):
        if record.kind == "orchestrate" and (action is None or record.action == action):
            return record
    return None


def resume_plan(env: str, cloud: str) -> tuple[RunRecord, list[str]]:
    """The latest apply/destroy run and the components it did not finish."""
    from strataflow.errors import UsageError

    run = next((r for r in run_history(env, cloud, 20) if r.kind == "orchestrate" and r.action != "plan"), None)
    if run is None:
        raise UsageError(f"nothing to resume: no apply or destroy of {env} ({cloud}) is recorded")
    records = latest_components(env, cloud, run.planned)
    redo = [
        name
        for name in run.planned
        if run.components.get(name) in REDO_STATUSES
        or (
            name not in run.components
            and not (
                name in records and records[name].flow_run_id == run.flow_run_id and records[name].status in OK_STATUSES
            )
        )
    ]
    return run, redo


# --- the environment lock ----------------------------------------------------------------


def lock_name(env: str, cloud: str) -> str:
    return f"strata-{env}-{cloud}".lower()


@contextlib.contextmanager
def environment_lock(
    env: str, cloud: str, flow_run_id: str | None, actor: str | None, wait: float = 0.0
) -> Iterator[None]:
    """Hold the one-run-per-environment lock; raise LockedError naming the holder when taken.

    The lock is a global concurrency limit of one slot, created on demand, held with a lease
    renewed every half lease: a run that dies frees it when the lease expires.
    """
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.client.schemas.objects import ConcurrencyLeaseHolder
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound, PrefectHTTPStatusError

    name = lock_name(env, cloud)
    holder = ConcurrencyLeaseHolder(type="flow_run", id=UUID(flow_run_id)) if flow_run_id else None
    deadline = time.monotonic() + wait
    with _api(f"take the lock {name}"), _client() as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with contextlib.suppress(ObjectAlreadyExists):
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
        while True:
            try:
                response = client.increment_concurrency_slots_with_lease(
                    [name], 1, "concurrency", LEASE_SECONDS, holder
                )
                break
            except PrefectHTTPStatusError as exc:
                if exc.response.status_code != 423:
                    raise
                if time.monotonic() >= deadline:
                    raise LockedError(_locked_message(env, cloud, wait), env=env) from None
                time.sleep(min(2.0, max(0.1, deadline - time.monotonic())))
    lease_id = UUID(response.json()["lease_id"])
    stop = threading.Event()
    threads.start(_renew, lease_id, stop, name=f"strata-lock-{name}")  # on the API that holds the lease
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(Exception), _client() as client:  # else the lease expires on its own
            client.release_concurrency_slots_with_lease(lease_id)


def _renew(lease_id: UUID, stop: threading.Event) -> None:
    """Renew the lock's lease until stopped; a failed renewal is retried at the next beat."""
    import logging

    while not stop.wait(LEASE_SECONDS / 2):
        try:
            with _client() as client:
                client.renew_concurrency_lease(lease_id, LEASE_SECONDS)
        except Exception as exc:  # noqa: BLE001 - keep trying while the run goes on
            logging.getLogger("strataflow").warning("could not renew the environment lock: %s", exc)


def _locked_message(env: str, cloud: str, wait: float) -> str:
    holder = lock_holder(env, cloud)
    who = ""
    if holder:
        who = f" by flow run {holder.get('flow_run_id')} ({holder.get('actor')}, since {holder.get('since')})"
    waited = f" after waiting {wait:g}s" if wait else ""
    return (
        f"{env} ({cloud}) is locked{who}{waited}; wait for it, pass --wait-lock SECONDS, "
        f"or if that run is dead: strata unlock {env} --cloud {cloud} --force"
    )


def lock_holder_if_held(env: str, cloud: str) -> dict[str, Any] | None:
    """Who holds the environment's lock right now, or None when nobody does."""
    from prefect.exceptions import ObjectNotFound

    with _api(f"read the lock of {env}"), _client() as client:
        try:
            limit = client.read_global_concurrency_limit_by_name(lock_name(env, cloud))
        except ObjectNotFound:
            return None
    if limit.active_slots < limit.limit:
        return None
    return lock_holder(env, cloud) or {"flow_run_id": "unknown", "actor": "unknown"}


def lock_holder(env: str, cloud: str) -> dict[str, Any] | None:
    """The run that took the environment's lock: the latest run record still marked running."""
    with contextlib.suppress(StateError):
        for record in run_history(env, cloud, 10):
            if record.kind == "orchestrate" and record.status == "running":
                return {"flow_run_id": record.flow_run_id, "actor": record.actor, "since": str(record.started_at)}
    return None


def force_unlock(env: str, cloud: str, actor: str | None) -> bool:
    """Drop the environment's lock whoever holds it; recorded in the history. True if one existed."""
    from prefect.exceptions import ObjectNotFound

    name = lock_name(env, cloud)
    holder = lock_holder(env, cloud)
    with _api(f"remove the lock {name}"), _client() as client:
        try:
            client.delete_global_concurrency_limit_by_name(name)
            existed = True
        except ObjectNotFound:
            existed = False
    write_run(
        RunRecord(
            kind="unlock",
            env=env,
            cloud=cloud,
            action="unlock",
            status="succeeded",
            actor=actor,
            started_at=now(),
            finished_at=now(),
            detail={"previous_holder": holder or {}},
        )
    )
    return existed


def read_flow_run(flow_run_id: str) -> dict[str, Any] | None:
    """A flow run's flow name, parameters, state and cloud tag, or None when there is none."""
    from prefect.exceptions import ObjectNotFound

    with _api(f"read flow run {flow_run_id}"), _client() as client:
        try:
            run = client.read_flow_run(UUID(flow_run_id))
        except ObjectNotFound:
            return None
        flow = client.read_flow(run.flow_id)
    cloud = next((t.split(":", 1)[1] for t in run.tags if t.startswith("cloud:")), None)
    return {
        "flow": flow.name,
        "parameters": dict(run.parameters),
        "state": run.state.type.value if run.state else None,
        "state_name": run.state.name if run.state else "unknown",
        "cloud": cloud or run.parameters.get("cloud") or "aws",
    }


def promotion_request(env: str, cloud: str, flow_run_id: str) -> dict[str, Any] | None:
    """The requester and approvers a promotion waiting for approval recorded, or None."""
    for record in run_history(env, cloud, 50):
        if record.kind == "promote" and record.flow_run_id == flow_run_id:
            if record.status != "awaiting approval":
                return None
            return {"requester": record.detail.get("requester"), "approvers": list(record.detail.get("approvers", []))}
    return None


def record_decision(
    env: str, cloud: str, promotion: str, decision: str, actor: str, comment: str, refused: str | None
) -> None:
    """Record an approval decision made from the command line (refused ones included)."""
    write_run(
        RunRecord(
            kind="approval",
            env=env,
            cloud=cloud,
            action=decision,
            status="refused" if refused else "sent",
            actor=actor,
            started_at=now(),
            finished_at=now(),
            detail={"promotion": promotion, "reason": refused, "comment": comment},
        )
    )


def resume_promotion(flow_run_id: str, decision: dict[str, Any]) -> None:
    """Resume a paused promotion with a decision (validated by the server against its input schema)."""
    from prefect.exceptions import FlowPauseTimeout, NotPausedError
    from prefect.flow_runs import resume_flow_run

    from strataflow.errors import UsageError

    try:
        resume_flow_run(UUID(flow_run_id), run_input=decision)
    except NotPausedError:
        raise UsageError(f"flow run {flow_run_id} is not paused") from None
    except FlowPauseTimeout:
        raise UsageError(f"flow run {flow_run_id} waited too long: its approval timed out") from None
    except RuntimeError as exc:
        raise UsageError(f"the server refused the decision: {exc}") from None


class Progress:
    """The run's progress artifact (0-100), kept up to date by a thread of its own.

    The scheduler only sets a count (``finished``): it never waits on the API for this. The
    artifact is created once the run has lasted ``every`` seconds (short runs get none) and
    updated every ``every`` seconds; ``close`` sets it to 100.
    """

    def __init__(self, flow_run_id: str | None, description: str, total: int, every: float = 2.0) -> None:
        self.count = 0
        self._total = max(1, total)
        self._flow_run_id = flow_run_id
        self._description = description
        self._every = every
        self._artifact_id: UUID | None = None
        self._stop = threading.Event()
        self._thread = threads.start(self._loop, name="strata-progress")  # on the flow's API

    def finished(self, count: int) -> None:
        self.count = count

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        if self._artifact_id is not None:
            self._post(100.0)

    def _loop(self) -> None:
        import logging

        while not self._stop.wait(self._every):
            try:
                self._post(100.0 * self.count / self._total)
            except Exception as exc:  # noqa: BLE001 - progress is a courtesy: the run goes on
                logging.getLogger("strataflow").warning("could not update the progress artifact: %s", exc)

    def _post(self, percent: float) -> None:
        from prefect.client.schemas.actions import ArtifactCreate, ArtifactUpdate

        with _api("update the progress artifact"), _client() as client:
            if self._artifact_id is None:
                artifact = client.create_artifact(
                    ArtifactCreate(
                        type="progress",
                        data=0.0,
                        description=self._description,
                        flow_run_id=UUID(self._flow_run_id) if self._flow_run_id else None,
                    )
                )
                self._artifact_id = artifact.id
            client.update_artifact(self._artifact_id, ArtifactUpdate(data=round(percent, 1)))


def tag_flow_run(flow_run_id: str | None, tags: list[str]) -> None:
    """Add ``tags`` to a flow run (so the UI and `prefect flow-run ls` can filter by environment)."""
    if not flow_run_id:
        return
    with _api("tag the flow run"), _client() as client:
        current = client.read_flow_run(UUID(flow_run_id))
        client.update_flow_run(UUID(flow_run_id), tags=sorted({*current.tags, *tags}))


def flow_run_url(flow_run_id: str | None) -> str | None:
    if not flow_run_id:
        return None
    from prefect.settings import PREFECT_UI_URL

    base = PREFECT_UI_URL.value()
    return f"{base}/runs/flow-run/{flow_run_id}" if base else None
