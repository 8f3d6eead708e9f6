"""Bulk reads for monitoring: every record of every environment in a few API calls.

``snapshot()`` reads, in pages of ``PAGE``: every run record (artifact type ``strata-run``,
newest first, one entry per run), the latest component record of every key (artifact
type ``strata-state``), the approval requests still waiting (``strata-approval``), every
environment lock (the ``[sandbox-]strata-*`` global concurrency limits, one call) and, only
when something says it waits for approval, whether its flow run is still paused (one call).
With 1,000 runs that is about a dozen requests. The sandbox's records are read too (they
carry ``sandbox``).

The requests are plain JSON through the Prefect REST API: parsing every artifact into
Prefect's client models, and importing the Prefect client at all (1.1-1.5 s), would cost
most of the two seconds `strata metrics` may take. When ``PREFECT_API_URL`` is in the
environment (``strata`` sets it for the local server) the requests go over the standard
library's HTTP with ``PREFECT_API_KEY`` or ``PREFECT_API_AUTH_STRING`` from the environment;
otherwise through the Prefect client's connection (``_api.connection``: profiles, proxies).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import urllib.parse
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from strataflow.config import CLOUDS
from strataflow.errors import StateError
from strataflow.metrics import LockState, Snapshot, WaitingApproval
from strataflow.records import ComponentRecord, RunRecord, now
from strataflow.state._api import PAGE, api, connection
from strataflow.state.components import STATE_ARTIFACT
from strataflow.state.runs import RUN_ARTIFACT

SANDBOX_PREFIX = "sandbox-"
"""What the name of a sandbox's lock starts with (``strataflow.records.SANDBOX_PREFIX``)."""
REQUEST_ARTIFACT = "strata-approval"
"""The artifact type of approval requests (``strataflow.state.approvals``)."""
MAX_ARTIFACTS = 100_000
"""A bound on the artifacts one scan reads (500 pages)."""


class _Post(Protocol):
    def __call__(self, path: str, body: dict[str, Any]) -> Any: ...


class _Http:
    """JSON POSTs to the Prefect API over one kept-alive connection of the standard library's (httpx costs 0.1-0.3 s to import)."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self._base = parts.path.rstrip("/")
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if os.environ.get("PREFECT_API_KEY"):
            self._headers["Authorization"] = f"Bearer {os.environ['PREFECT_API_KEY']}"
        elif os.environ.get("PREFECT_API_AUTH_STRING"):
            basic = base64.b64encode(os.environ["PREFECT_API_AUTH_STRING"].encode()).decode()
            self._headers["Authorization"] = f"Basic {basic}"
        self._connection: http.client.HTTPConnection
        if parts.scheme == "https":
            import ssl

            context = ssl.create_default_context(cafile=os.environ.get("PREFECT_API_SSL_CERT_FILE") or None)
            if os.environ.get("PREFECT_API_TLS_INSECURE_SKIP_VERIFY", "").lower() in ("1", "true"):
                context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            self._connection = http.client.HTTPSConnection(
                parts.hostname or "", parts.port, timeout=30, context=context
            )
        else:
            self._connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)

    def __call__(self, path: str, body: dict[str, Any]) -> Any:
        data = json.dumps(body).encode()
        for attempt in (1, 2):  # a kept-alive connection the server closed is opened again, once
            try:
                self._connection.request("POST", self._base + path, body=data, headers=self._headers)
                response = self._connection.getresponse()
                payload = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self._connection.close()
                if attempt == 2:
                    raise
        if response.status >= 400:
            raise StateError(f"POST {path} answered HTTP {response.status}: {payload[:300].decode(errors='replace')}")
        return json.loads(payload)

    def close(self) -> None:
        self._connection.close()


_PROXIES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy")


@contextlib.contextmanager
def _session() -> Iterator[_Post]:
    """A function posting JSON to the Prefect API and returning the decoded answer.

    The standard library's HTTP when ``PREFECT_API_URL`` is in the environment and no proxy
    is; else the Prefect client (profiles, proxies), at the cost of importing it.
    """
    url = os.environ.get("PREFECT_API_URL")
    if url and not any(os.environ.get(name) for name in _PROXIES):
        plain = _Http(url)
        try:
            yield plain
        finally:
            plain.close()
        return
    with connection() as client:

        def through_client(path: str, body: dict[str, Any]) -> Any:
            response = client.request("POST", path, json=body)
            response.raise_for_status()
            return response.json()

        yield through_client


def _paged(post: _Post, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while len(found) < MAX_ARTIFACTS:
        page = post(path, {**body, "limit": PAGE, "offset": len(found)})
        found.extend(page)
        if len(page) < PAGE:
            break
    return found


def _records(rows: list[dict[str, Any]], model: type[Any]) -> list[Any]:
    """The rows' data that are valid ``model`` records, in order (others are skipped)."""
    records = []
    for row in rows:
        if isinstance(row.get("data"), dict):
            with contextlib.suppress(ValidationError):
                records.append(model.model_validate(row["data"]))
    return records


def runs(post: _Post) -> list[RunRecord]:
    """The latest record of every run of every environment, newest first."""
    rows = _paged(post, "/artifacts/filter", {"artifacts": {"type": {"any_": [RUN_ARTIFACT]}}, "sort": "CREATED_DESC"})
    latest: list[RunRecord] = []
    seen: set[tuple[str, str, str, str, str]] = set()
    for record in _records(rows, RunRecord):
        run = record.flow_run_id or f"{record.action}-{record.started_at}"
        ident = (record.env, record.cloud, record.kind, run, str(getattr(record, "sandbox", False)))
        if ident not in seen:
            seen.add(ident)
            latest.append(record)
    return latest


def components(post: _Post, env: str | None = None) -> list[ComponentRecord]:
    """The latest record of every component (of ``env`` only, when given)."""
    artifacts: dict[str, Any] = {"type": {"any_": [STATE_ARTIFACT]}}
    if env is not None:
        artifacts["key"] = {"like_": f"strata-{env.lower()}-"}
    rows = _paged(post, "/artifacts/latest/filter", {"artifacts": artifacts, "sort": "KEY_ASC"})
    return [r for r in _records(rows, ComponentRecord) if env is None or r.env == env]


def locks(post: _Post) -> list[LockState]:
    """Every environment lock (a global concurrency limit ``[sandbox-]strata-<env>-<cloud>``), in one call."""
    found = []
    for limit in _paged(post, "/v2/concurrency_limits/filter", {}):
        name = str(limit.get("name", ""))
        on_sandbox = name.startswith(SANDBOX_PREFIX)
        bare = name.removeprefix(SANDBOX_PREFIX) if on_sandbox else name
        env, _, cloud = bare.removeprefix("strata-").rpartition("-")
        if bare.startswith("strata-") and env and cloud in CLOUDS:
            held = bool(limit.get("active", True)) and int(limit.get("active_slots", 0)) >= int(limit.get("limit", 1))
            found.append(LockState(env=env, cloud=cloud, locked=held, sandbox=on_sandbox))
    return found


def requests(post: _Post) -> list[WaitingApproval]:
    """The approval requests (artifact type ``strata-approval``) that still say they wait."""
    rows = _paged(post, "/artifacts/latest/filter", {"artifacts": {"type": {"any_": [REQUEST_ARTIFACT]}}})
    found = []
    for row in rows:
        data = row.get("data")
        if isinstance(data, dict) and data.get("status", "waiting") == "waiting":
            with contextlib.suppress(ValidationError):
                found.append(WaitingApproval.model_validate({**data, "since": data.get("created_at")}))
    return found


def paused(post: _Post, flow_run_ids: list[str], at: datetime) -> list[str]:
    """Those of ``flow_run_ids`` that are paused right now (their pause not yet expired)."""
    if not flow_run_ids:
        return []
    rows = post("/flow_runs/filter", {"flow_runs": {"id": {"any_": flow_run_ids}}, "limit": len(flow_run_ids)})
    found = []
    for row in rows:
        state = row.get("state") or {}
        expires = (state.get("state_details") or {}).get("pause_timeout")
        if state.get("type") == "PAUSED" and (not expires or datetime.fromisoformat(expires) > at):
            found.append(str(row["id"]))
    return found


def snapshot(env: str | None = None) -> Snapshot:
    """Everything ``strataflow.metrics`` needs, read now (component records of ``env`` only, when given)."""
    with api("read the records for the metrics"), _session() as post:
        taken = now()
        all_runs, waiting = runs(post), requests(post)
        asked = {w.flow_run_id for w in waiting} | {
            r.flow_run_id for r in all_runs if r.kind == "promote" and r.status == "awaiting approval" and r.flow_run_id
        }
        return Snapshot(
            taken_at=taken,
            runs=all_runs,
            components=components(post, env),
            locks=locks(post),
            requests=waiting,
            paused=paused(post, sorted(asked), taken),
        )


__all__ = ["MAX_ARTIFACTS", "components", "locks", "paused", "requests", "runs", "snapshot"]
