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
from strataflow.errors import LockedError, LockLost, StateError
from strataflow.records import RunRecord, lock_name, now
from strataflow.state._api import api, connection
from strataflow.state.runs import run_history, slot_taken, write_run

LEASE_SECONDS = 60.0
"""Prefect's minimum lease; renewed every 20 s, so a crashed run frees the lock within about a minute."""
MARGIN_SECONDS = 10.0
"""A run stops starting components this long before its last confirmed lease would expire."""


class Lease:
    """The run's hold on its environment's lock, and the proof it still has it.

    ``check()`` is the fence: it passes only while the last confirmation by the server (the
    acquisition, or a renewal) is younger than the lease less a margin. A run stopped past its
    lease (SIGSTOP, a suspended laptop), an API outage or a server restart longer than the
    lease, or a forced unlock, all make it fail, so the run starts nothing more; the renewal
    thread notices a lease that is gone (HTTP 404/410) and fails it at once.
    """

    def __init__(self, lease_id: UUID, name: str, seconds: float = LEASE_SECONDS) -> None:
        self.lease_id, self.name, self.seconds = lease_id, name, seconds
        self.margin = min(MARGIN_SECONDS, seconds / 6)
        self._confirmed = time.monotonic()
        self._lost: str | None = None
        self._guard = threading.Lock()

    def confirmed(self) -> None:
        with self._guard:
            self._confirmed = time.monotonic()

    def lose(self, why: str) -> None:
        with self._guard:
            self._lost = self._lost or why

    @property
    def lost(self) -> str | None:
        """Why the run can no longer prove it holds the lock, or None while it can."""
        with self._guard:
            if self._lost is None and time.monotonic() - self._confirmed > self.seconds - self.margin:
                age = time.monotonic() - self._confirmed
                self._lost = f"its lease was last confirmed {age:.0f}s ago, past the {self.seconds:g}s lease"
            return self._lost

    def check(self) -> None:
        """Raise LockLost unless the run still provably holds the lock."""
        if self.lost is None:
            return
        raise LockLost(
            f"the run lost the lock {self.name} ({self.lost}); it started nothing more, and another run may now "
            "hold the environment",
        )

    def renew(self) -> None:
        """One renewal; a lease the server no longer knows is lost for good."""
        from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

        try:
            with connection() as client:
                client.renew_concurrency_lease(self.lease_id, self.seconds)
        except ObjectNotFound:
            self.lose("the server no longer knows its lease (it expired, or the lock was force-unlocked)")
            raise
        except PrefectHTTPStatusError as exc:
            if exc.response.status_code in (404, 410):
                self.lose("the server no longer knows its lease (it expired, or the lock was force-unlocked)")
            raise
        self.confirmed()


@contextlib.contextmanager
def environment_lock(
    env: str, cloud: str, flow_run_id: str | None, actor: str | None, wait: float = 0.0, sandbox: bool = False
) -> Iterator[Lease]:
    """Hold the one-run-per-environment lock; raise LockedError naming the holder when taken.

    Yields the ``Lease``: check it before starting anything that changes the environment.
    """
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.client.schemas.objects import ConcurrencyLeaseHolder
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound, PrefectHTTPStatusError

    del actor  # the holder is found through the run record, which names the actor
    name = lock_name(env, cloud, sandbox)
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
                    raise LockedError(_locked_message(env, cloud, wait, sandbox), env=env) from None
                time.sleep(min(2.0, max(0.1, deadline - time.monotonic())))
    lease = Lease(UUID(response.json()["lease_id"]), name)
    stop = threading.Event()
    threads.start(_renew, lease, stop, name=f"strata-lock-{name}")  # on the API that holds the lease
    try:
        yield lease
    finally:
        stop.set()
        with contextlib.suppress(Exception), connection() as client:  # else the lease expires on its own
            client.release_concurrency_slots_with_lease(lease.lease_id)


def _renew(lease: Lease, stop: threading.Event) -> None:
    """Renew the lease every third of it until stopped; a lease the server lost is given up."""
    while not stop.wait(lease.seconds / 3):
        try:
            lease.renew()
        except Exception as exc:  # noqa: BLE001 - the fence (Lease.check) decides; keep trying while it may
            logging.getLogger("strataflow").warning("could not renew the environment lock %s: %s", lease.name, exc)
        if lease.lost:
            logging.getLogger("strataflow").error("lost the environment lock %s: %s", lease.name, lease.lost)
            return


def _locked_message(env: str, cloud: str, wait: float, sandbox: bool) -> str:
    holder = lock_holder(env, cloud, sandbox)
    who = ""
    if holder:
        who = f" by flow run {holder.get('flow_run_id')} ({holder.get('actor')}, since {holder.get('since')})"
    waited = f" after waiting {wait:g}s" if wait else ""
    return (
        f"{env} ({cloud}) is locked{who}{waited}; wait for it, pass --wait-lock SECONDS, "
        f"or if that run is dead: strata unlock {env} --cloud {cloud}{' --sandbox' if sandbox else ''} --force"
    )


def lock_holder_if_held(env: str, cloud: str, sandbox: bool = False) -> dict[str, Any] | None:
    """Who holds the environment's lock right now, or None when nobody does."""
    if not slot_taken(env, cloud, sandbox):
        return None
    return lock_holder(env, cloud, sandbox) or {"flow_run_id": "unknown", "actor": "unknown"}


def lock_holder(env: str, cloud: str, sandbox: bool = False) -> dict[str, Any] | None:
    """The run that took the environment's lock: the latest run record still marked running."""
    with contextlib.suppress(StateError):
        for record in run_history(env, cloud, 10, sandbox):
            if record.kind == "orchestrate" and record.status == "running":
                return {
                    "flow_run_id": record.flow_run_id,
                    "actor": record.actor,
                    "since": str(record.started_at),
                    "lease": record.detail.get("lease"),
                }
    return None


def force_unlock(env: str, cloud: str, actor: str | None, sandbox: bool = False) -> bool:
    """Drop the environment's lock whoever holds it; recorded in the history. True if one existed."""
    from prefect.exceptions import ObjectNotFound

    name = lock_name(env, cloud, sandbox)
    holder = lock_holder(env, cloud, sandbox)
    with api(f"remove the lock {name}"), connection() as client:
        if holder and holder.get("lease"):  # the holder's renewals now fail: it stops starting components
            with contextlib.suppress(Exception):
                client.release_concurrency_slots_with_lease(UUID(str(holder["lease"])))
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
            sandbox=sandbox,
        )
    )
    return existed


__all__ = ["LEASE_SECONDS", "Lease", "environment_lock", "force_unlock", "lock_holder", "lock_holder_if_held"]
