"""The Prefect client strataflow's state goes through: one per thread and API, and its errors mapped."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from strataflow.errors import StateError, StrataError

PAGE = 200
"""The most artifacts the Prefect API returns per request (PREFECT_SERVER_API_DEFAULT_LIMIT); more is HTTP 422."""

_local = threading.local()


@contextlib.contextmanager
def connection() -> Iterator[Any]:
    """A Prefect client kept open per thread and API: one connection, not one per record."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    cached = getattr(_local, "client", None)
    if cached is None or cached[0] != url:
        made = get_client(sync_client=True)
        made.__enter__()
        cached = (url, made)
        _local.client = cached
    yield cached[1]


def api_url() -> str:
    from prefect.settings import PREFECT_API_URL

    return str(PREFECT_API_URL.value())


@contextlib.contextmanager
def api(what: str) -> Iterator[None]:
    """Map Prefect client failures to StateError, naming what could not be done."""
    try:
        yield
    except StrataError:
        raise
    except Exception as exc:
        raise StateError(f"cannot {what} at the Prefect API {api_url()}: {type(exc).__name__}: {exc}") from exc


def create_artifact(
    key: str | None, kind: str, data: Any, description: str, flow_run_id: str | None, task_run_id: str | None = None
) -> Any:
    """Create one artifact (a new version when ``key`` exists); returns it."""
    from prefect.client.schemas.actions import ArtifactCreate

    artifact = ArtifactCreate(
        key=key,
        type=kind,
        data=data,
        description=description,
        flow_run_id=UUID(flow_run_id) if flow_run_id else None,
        task_run_id=UUID(task_run_id) if task_run_id else None,
    )
    with connection() as client:
        return client.create_artifact(artifact)


def parse_records(artifacts: list[Any], model: type[BaseModel]) -> list[Any]:
    """The artifacts' data that are valid ``model`` records (others are skipped)."""
    found = []
    for artifact in artifacts:
        if isinstance(artifact.data, dict):
            with contextlib.suppress(ValueError):
                found.append(model.model_validate(artifact.data))
    return found


def read_paged(client: Any, artifact_filter: Any, sort: Any, limit: int) -> list[Any]:
    """Up to ``limit`` artifacts, newest first, in pages the API accepts."""
    found: list[Any] = []
    while len(found) < limit:
        size = min(PAGE, limit - len(found))
        page = client.read_artifacts(artifact_filter=artifact_filter, sort=sort, limit=size, offset=len(found))
        found.extend(page)
        if len(page) < size:
            break
    return found


__all__ = ["PAGE", "api", "api_url", "connection", "create_artifact", "parse_records", "read_paged"]
