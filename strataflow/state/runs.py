"""Run records: the history of an environment (who ran what, when, how it ended), and what to resume."""

from __future__ import annotations

from strataflow.errors import UsageError
from strataflow.records import OK_STATUSES, REDO_STATUSES, RunRecord, lock_name, now, run_key
from strataflow.state._api import api, connection, create_artifact, parse_records, read_paged
from strataflow.state.components import latest_components

RUN_ARTIFACT = "strata-run"
"""The artifact type of run records."""


def write_run(record: RunRecord, attach_to: str | None = None) -> None:
    """Record a run as it starts, changes (awaiting approval, ...) and ends.

    ``attach_to``: the flow run the record is shown on in the UI (default: the record's own).
    """
    summary = ", ".join(f"{name}: {status}" for name, status in sorted(record.components.items()))
    description = f"**{record.action}** `{record.env}` ({record.cloud}) by {record.actor}: {record.status}\n\n{summary}"
    with api(f"record the run of {record.env}"):
        create_artifact(
            run_key(record.env, record.cloud, record.sandbox),
            RUN_ARTIFACT,
            record.model_dump(mode="json"),
            description,
            attach_to or record.flow_run_id,
        )


def slot_taken(env: str, cloud: str, sandbox: bool = False) -> bool:
    """Whether the environment's lock is held right now (by a run whose lease has not expired)."""
    from prefect.exceptions import ObjectNotFound

    with api(f"read the lock of {env}"), connection() as client:
        try:
            limit = client.read_global_concurrency_limit_by_name(lock_name(env, cloud, sandbox))
        except ObjectNotFound:
            return False
    return bool(limit.active_slots >= limit.limit)


def run_history(env: str, cloud: str, limit: int, sandbox: bool = False) -> list[RunRecord]:
    """Runs of the environment, newest first, one entry per run (its latest record).

    A run still marked running that no longer holds the environment's lock (its process died
    and its lease expired, or a newer run took over) is shown as ``crashed``.
    """
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with api(f"read the history of {env}"), connection() as client:
        found = read_paged(
            client,
            ArtifactFilter(key=ArtifactFilterKey(any_=[run_key(env, cloud, sandbox)])),
            ArtifactSort.CREATED_DESC,
            limit * 2 + 2,
        )
    runs: list[RunRecord] = []
    seen: set[str] = set()
    for record in parse_records(found, RunRecord):
        ident = record.flow_run_id or f"{record.kind}-{record.started_at}"
        if ident not in seen:
            seen.add(ident)
            runs.append(record)
    runs.sort(key=lambda r: r.started_at or now(), reverse=True)
    runs = runs[:limit]
    running = [r for r in runs if r.kind == "orchestrate" and r.status == "running" and r.action != "plan"]
    if running:
        holder = running[0] if slot_taken(env, cloud, sandbox) else None
        for record in running:
            if record is not holder:
                record.status = "crashed"
                record.detail["crashed"] = "its process ended without recording the end (its lock's lease expired)"
    return runs


def resume_plan(env: str, cloud: str, sandbox: bool = False) -> tuple[RunRecord, list[str]]:
    """The latest apply/destroy run and the components it did not finish."""
    history = run_history(env, cloud, 20, sandbox)
    run = next((r for r in history if r.kind == "orchestrate" and r.action != "plan"), None)
    if run is None:
        raise UsageError(f"nothing to resume: no apply or destroy of {env} ({cloud}) is recorded")
    records = latest_components(env, cloud, run.planned, sandbox)
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


__all__ = ["RUN_ARTIFACT", "resume_plan", "run_history", "write_run"]
