"""The drift check of one component: what is deployed against what was applied, recorded on its record."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from blocks.credentials import load_credentials
from strataflow import state
from strataflow.backends import registry
from strataflow.errors import StrataError
from strataflow.runner import Job, build_run, drift_record


@task(cache_policy=NO_CACHE, persist_result=False)
def check_component(job: Job) -> dict[str, Any]:
    """One component's drift, recorded on its state record."""
    logger = get_run_logger()
    previous = job.previous
    if previous is None or previous.state != "applied":
        return {"status": "not applied"}
    if job.sandbox is None:
        job.credentials = load_credentials(job.cloud, getattr(job.env.target(job.cloud), "credentials", None))
    try:
        run, resolved = build_run(job, secret=None, log=logger.info)
        if previous.applied is not None and previous.applied.digest != resolved.digest:
            # the config changed since it was applied: comparing would report the change, not drift
            return {"status": "pending change", "resources": ["apply the working config first"]}
        found = registry.backend(run.impl.backend).drift(run)
    except StrataError as exc:
        logger.error("%s: drift check failed: %s", job.name, exc)
        return {"status": "error", "error": str(exc)}
    record = previous.model_copy(update={"drift": drift_record(found)})
    state.write_component(record)
    if not found.supported:
        return {"status": "unknown", "resources": []}
    return {"status": "drifted" if found.drifted else "in sync", "resources": found.resources}


__all__ = ["check_component"]
