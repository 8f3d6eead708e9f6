"""The drift check of one component: what is deployed against what was applied, recorded on its record.

It runs under the environment's lock (the drift flow holds it) and resolves the component as an
apply does, secrets and sensitive upstream outputs included, so a secret parameter is compared
with its real value; what it reports and records is masked. The result is written as a new
version of the component's latest record with only its drift changed, and only while that
record is still the apply that was checked.
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext

from blocks.credentials import load_credentials
from strataflow import state
from strataflow.backends import registry
from strataflow.backends.base import Drift, mask
from strataflow.errors import StrataError
from strataflow.records import ComponentRecord
from strataflow.runner import Job, drift_record, resolve_run
from strataflow.state.secrets import read_secret


@task(cache_policy=NO_CACHE, persist_result=False)
def check_component(job: Job) -> dict[str, Any]:
    """One component's drift, recorded on its state record."""
    logger = get_run_logger()
    previous = job.previous
    if previous is None or previous.state != "applied" or previous.applied is None:
        return {"status": "not applied"}
    if job.sandbox is None:
        job.credentials = load_credentials(job.cloud, getattr(job.env.target(job.cloud), "credentials", None))
    secrets: frozenset[str] = frozenset()
    try:
        run, resolved = resolve_run(job, secret=read_secret, log=logger.info)
        secrets = run.secrets
        if previous.applied.digest != resolved.digest:
            # the config changed since it was applied: comparing would report the change, not drift
            return {"status": "pending change", "resources": ["apply the working config first"]}
        found = registry.backend(run.impl.backend).drift(run)
    except StrataError as exc:
        message = mask(str(exc), secrets)
        logger.error("%s: drift check failed: %s", job.name, message)
        return {"status": "error", "error": message}
    found = Drift(found.supported, found.drifted, [mask(line, secrets) for line in found.resources])
    if not _record(previous, found):
        return {"status": "pending change", "resources": ["applied again while it was checked: check again"]}
    if not found.supported:
        return {"status": "unknown", "resources": []}
    return {"status": "drifted" if found.drifted else "in sync", "resources": found.resources}


def _record(checked: ComponentRecord, found: Drift) -> bool:
    """Write ``found`` as the drift of the component's latest record, if that is still the apply checked.

    Only the drift part changes: a record written since ``checked`` was read is never replaced
    by an older copy. False when the component was applied (or destroyed) in between.
    """
    latest = state.latest_components(checked.env, checked.cloud, [checked.component], checked.sandbox).get(
        checked.component
    )
    if latest is None or latest.applied is None or checked.applied is None:
        return False
    if latest.state != "applied" or latest.applied.digest != checked.applied.digest:
        return False
    if latest.applied.applied_at != checked.applied.applied_at:
        return False
    context = TaskRunContext.get()
    task_run_id = str(context.task_run.id) if context else None
    state.write_component(latest.model_copy(update={"drift": drift_record(found)}), task_run_id=task_run_id)
    return True


__all__ = ["check_component"]
