"""Flow runs as strataflow sees them: read one, tag one, its UI link, and its progress artifact."""

from __future__ import annotations

import logging
import threading
from typing import Any
from uuid import UUID

from strataflow import threads
from strataflow.state._api import api, connection


def read_flow_run(flow_run_id: str) -> dict[str, Any] | None:
    """A flow run's flow name, parameters, state and cloud tag, or None when there is none."""
    from prefect.exceptions import ObjectNotFound

    with api(f"read flow run {flow_run_id}"), connection() as client:
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


def tag_flow_run(flow_run_id: str | None, tags: list[str]) -> None:
    """Add ``tags`` to a flow run (so the UI and `prefect flow-run ls` can filter by environment)."""
    if not flow_run_id:
        return
    with api("tag the flow run"), connection() as client:
        current = client.read_flow_run(UUID(flow_run_id))
        client.update_flow_run(UUID(flow_run_id), tags=sorted({*current.tags, *tags}))


def flow_run_url(flow_run_id: str | None) -> str | None:
    """The run's page in the Prefect UI (PREFECT_UI_URL, else the API URL without /api)."""
    if not flow_run_id:
        return None
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    base = PREFECT_UI_URL.value()
    if not base:
        api = str(PREFECT_API_URL.value() or "")
        base = api[: -len("/api")] if api.endswith("/api") else None
    return f"{str(base).rstrip('/')}/runs/flow-run/{flow_run_id}" if base else None


def parent_flow_run(flow_run_id: str) -> dict[str, Any] | None:
    """The flow run that started ``flow_run_id`` as a subflow (its id, flow name, state), or None."""
    with api(f"read the parent of flow run {flow_run_id}"), connection() as client:
        run = client.read_flow_run(UUID(flow_run_id))
        if run.parent_task_run_id is None:
            return None
        task_run = client.read_task_run(run.parent_task_run_id)
        if task_run.flow_run_id is None:
            return None
        parent = client.read_flow_run(task_run.flow_run_id)
        flow = client.read_flow(parent.flow_id)
    return {
        "id": str(parent.id),
        "flow": flow.name,
        "state": parent.state.type.value if parent.state else None,
    }


def deployment_parameters(deployment_id: str) -> dict[str, Any]:
    """The default parameters of a deployment (what it was made for)."""
    with api(f"read deployment {deployment_id}"), connection() as client:
        return dict(client.read_deployment(UUID(deployment_id)).parameters or {})


class ProgressArtifact:
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
        while not self._stop.wait(self._every):
            try:
                self._post(100.0 * self.count / self._total)
            except Exception as exc:  # noqa: BLE001 - progress is a courtesy: the run goes on
                logging.getLogger("strataflow").warning("could not update the progress artifact: %s", exc)

    def _post(self, percent: float) -> None:
        from prefect.client.schemas.actions import ArtifactCreate, ArtifactUpdate

        with api("update the progress artifact"), connection() as client:
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


__all__ = [
    "ProgressArtifact",
    "deployment_parameters",
    "flow_run_url",
    "parent_flow_run",
    "read_flow_run",
    "tag_flow_run",
]
