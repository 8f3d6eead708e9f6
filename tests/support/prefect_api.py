"""The Prefect API from a test: flows run in this process, and everything it holds about runs (to grep for secrets)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def run_flow(config: Path, env: str, **params: Any) -> dict[str, Any]:
    """The orchestrator flow run in this process; its report."""
    from flows.orchestrate import orchestrate

    state = orchestrate(env=env, config_dir=str(config), return_state=True, **params)
    report = state.result(raise_on_failure=False)
    assert isinstance(report, dict), report
    return report


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {name: c["status"] for name, c in report["components"].items()}



def flow_run_family(client: Any, flow_run_id: str) -> list[str]:
    """The flow run and its subflow runs."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    found = [flow_run_id]
    children = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[uuid.UUID(flow_run_id)]))
    )
    for child in children:
        found.extend(flow_run_family(client, str(child.id)))
    return found


def everything(flow_run_ids: list[str], artifact_keys: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    """Logs, artifacts (by flow run and by key, every version), flow and task run states and parameters
    of the flow runs (and their subflows), as the Prefect API returns them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )

    found: dict[str, Any] = {"logs": [], "artifacts": [], "flow_runs": [], "task_runs": []}
    with get_client(sync_client=True) as client:
        ids = [i for run in flow_run_ids for i in flow_run_family(client, run)]
        uuids = [uuid.UUID(i) for i in ids]
        offset = 0
        while True:
            page = client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=uuids)), limit=200, offset=offset
            )
            found["logs"].extend(log.model_dump(mode="json") for log in page)
            if len(page) < 200:
                break
            offset += 200
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=uuids))
        )
        if artifact_keys:
            artifacts += client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=list(artifact_keys)))
            )
        found["artifacts"] = [a.model_dump(mode="json") for a in artifacts]
        for run in client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=uuids))):
            found["flow_runs"].append(run.model_dump(mode="json"))
            for state in client.read_flow_run_states(run.id):
                found["flow_runs"].append(state.model_dump(mode="json"))
        for task_run in client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=uuids))):
            found["task_runs"].append(task_run.model_dump(mode="json"))
    return found


@contextlib.contextmanager
def api(url: str) -> Iterator[None]:
    """Talk to the Prefect API at ``url`` in this process for a while."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield
