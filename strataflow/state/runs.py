"""Run records: the history of an environment (who ran what, when, how it ended), and what to resume."""

from __future__ import annotations

from strataflow.errors import UsageError
from strataflow.records import OK_STATUSES, REDO_STATUSES, RunRecord, now, run_key
from strataflow.state._api import api, connection, create_artifact, parse_records, read_paged
from strataflow.state.components import latest_components

RUN_ARTIFACT = "strata-run"
"""The artifact type of run records."""


def write_run(record: RunRecord) -> None:
    """Record a run as it starts, changes (awaiting approval, ...) and ends."""
    summary = ", ".join(f"{name}: {status}" for name, status in sorted(record.components.items()))
    description = f"**{record.action}** `{record.env}` ({record.cloud}) by {record.actor}: {record.status}\n\n{summary}"
    with api(f"record the run of {record.env}"):
        create_artifact(
            run_key(record.env, record.cloud), RUN_ARTIFACT, record.model_dump(mode="json"), description, record.flow_run_id
        )


def run_history(env: str, cloud: str, limit: int) -> list[RunRecord]:
    """Runs of the environment, newest first, one entry per run (its latest record)."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with api(f"read the history of {env}"), connection() as client:
        found = read_paged(
            client,
            ArtifactFilter(key=ArtifactFilterKey(any_=[run_key(env, cloud)])),
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
    return runs[:limit]


def resume_plan(env: str, cloud: str) -> tuple[RunRecord, list[str]]:
    """The latest apply/destroy run and the components it did not finish."""
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


__all__ = ["RUN_ARTIFACT", "resume_plan", "run_history", "write_run"]
