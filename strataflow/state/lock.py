"""The environment lock: one run per environment and cloud, a Prefect global concurrency limit held with a lease.

The limit (one slot, named after the environment) is created on demand and acquired with a
lease renewed every half lease, so a run that dies frees the environment when its lease
expires (Prefect silently skips a limit that does not exist: hence the on-demand create).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID

from strataflow import threads
from strataflow.errors import LockedError, StateError
from strataflow.records import RunRecord, lock_name, now
from strataflow.state._api import api, connection
from strataflow.state.runs import run_history, write_run

LEASE_SECONDS = 60.0
"""Prefect's minimum lease; renewed every 30 s, so a crashed run frees the lock within about a minute."""


@contextlib.contextmanager
def environment_lock(
    env: str, cloud: str, flow_run_id: str | None, actor: str | None, wait: float = 0.0
) -> Iterator[None]:
    """Hold the one-run-per-environment lock; raise LockedError naming the holder when taken."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.client.schemas.objects import ConcurrencyLeaseHolder
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound, PrefectHTTPStatusError

    del actor  # the holder is found through the run record, which names the actor
    name = lock_name(env, cloud)
    holder = ConcurrencyLeaseHolder(type="flow_run", id=UUID(flow_run_id)) if flow_run_id else None
    deadline = time.monotonic() + wait
    with api(f"take the lock {name}"), connection() as client:
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
        with contextlib.suppress(Exception), connection() as client:  # else the lease expires on its own
            client.release_concurrency_slots_with_lease(lease_id)


def _renew(lease_id: UUID, stop: threading.Event) -> None:
    """Renew the lock's lease until stopped; a failed renewal is retried at the next beat."""
    while not stop.wait(LEASE_SECONDS / 2):
        try:
            with connection() as client:
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

    with api(f"read the lock of {env}"), connection() as client:
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
    with api(f"remove the lock {name}"), connection() as client:
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


__all__ = ["LEASE_SECONDS", "environment_lock", "force_unlock", "lock_holder", "lock_holder_if_held"]
