"""Component records: each component's state in an environment, as versions of a keyed artifact."""

from __future__ import annotations

from strataflow.records import ComponentRecord, component_key
from strataflow.state._api import PAGE, api, connection, create_artifact, parse_records, read_paged

STATE_ARTIFACT = "strata-state"
"""The artifact type of component records."""


def write_component(record: ComponentRecord, task_run_id: str | None = None) -> None:
    """Record a component's new state (synchronously, before its task reports finished)."""
    with api(f"record the state of {record.component}"):
        create_artifact(
            component_key(record.env, record.cloud, record.component, record.sandbox),
            STATE_ARTIFACT,
            record.model_dump(mode="json"),
            _describe(record),
            record.flow_run_id,
            task_run_id,
        )


def _describe(record: ComponentRecord) -> str:
    where = f"`{record.env}` ({record.cloud}{', sandbox' if record.sandbox else ''})"
    lines = [f"**{record.component}** in {where}: {record.action} {record.status}"]
    if record.applied:
        applied = record.applied
        lines.append(f"version `{applied.version or '-'}`, digest `{applied.digest}`, bundle `{(applied.bundle or '-')[:12]}`")
        if applied.approval is not None:
            lines.append(f"approved by {applied.approval.who()}")
    if record.error:
        lines.append(f"error: {record.error}")
    return "\n\n".join(lines)


def latest_components(env: str, cloud: str, names: list[str], sandbox: bool = False) -> dict[str, ComponentRecord]:
    """The latest record of each named component (absent when it was never run), on the cloud or the sandbox."""
    if not names:
        return {}
    from prefect.client.schemas.filters import ArtifactCollectionFilter, ArtifactCollectionFilterKey

    keys = [component_key(env, cloud, n, sandbox) for n in names]
    records: dict[str, ComponentRecord] = {}
    with api(f"read the state of {env} ({cloud})"), connection() as client:
        for start in range(0, len(keys), 200):
            chunk = keys[start : start + 200]
            found = client.read_latest_artifacts(
                artifact_filter=ArtifactCollectionFilter(key=ArtifactCollectionFilterKey(any_=chunk)),
                limit=len(chunk),
            )
            for record in parse_records(found, ComponentRecord):
                if record.env == env and record.cloud == cloud and record.sandbox == sandbox:
                    records[record.component] = record
    return records


def all_components(env: str, cloud: str, sandbox: bool = False) -> dict[str, ComponentRecord]:
    """The latest record of every component ever recorded in the environment, in the config or not."""
    from prefect.client.schemas.filters import ArtifactCollectionFilter, ArtifactCollectionFilterKey

    prefix = component_key(env, cloud, "", sandbox)
    records: dict[str, ComponentRecord] = {}
    with api(f"read the state of {env} ({cloud})"), connection() as client:
        offset = 0
        while True:
            page = client.read_latest_artifacts(
                artifact_filter=ArtifactCollectionFilter(key=ArtifactCollectionFilterKey(like_=prefix)),
                limit=PAGE,
                offset=offset,
            )
            for record in parse_records(page, ComponentRecord):
                if record.env == env and record.cloud == cloud and record.sandbox == sandbox:
                    records[record.component] = record
            if len(page) < PAGE:
                return records
            offset += PAGE


def component_history(
    env: str, cloud: str, component: str, limit: int, sandbox: bool = False
) -> list[ComponentRecord]:
    """Every recorded action on one component, newest first."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with api(f"read the history of {component} in {env}"), connection() as client:
        found = read_paged(
            client,
            ArtifactFilter(key=ArtifactFilterKey(any_=[component_key(env, cloud, component, sandbox)])),
            ArtifactSort.CREATED_DESC,
            limit,
        )
    return parse_records(found, ComponentRecord)


__all__ = ["STATE_ARTIFACT", "all_components", "component_history", "latest_components", "write_component"]
