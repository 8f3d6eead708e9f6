"""The component task: one plan, apply or destroy of one component, recorded as it finishes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

from prefect import get_run_logger, task
from prefect.blocks.system import Secret
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.context import TaskRunContext
from prefect.states import Completed, Failed

from blocks.credentials import load_credentials
from strataflow import runner, state
from strataflow.runner import Job, Result


def _secret(name: str) -> str:
    value = cast(Secret[Any], Secret.load(name)).get()
    return value if isinstance(value, str) else str(value)


@task(cache_policy=NO_CACHE, persist_result=False, task_run_name="{action}-{component}")
def deploy_component(job: Job, action: str, component: str) -> State:
    """Deploy one component; its state record is written before the task reports finished.

    With a handoff (the orchestrator's), the result goes to the scheduler as soon as the
    backend returns, so dependents start while the record is written; the record itself
    waits for those of ``job.record_after``. ``action`` and ``component`` repeat the job's,
    to name the task run `<action>-<component>`.
    """
    del action, component
    logger = get_run_logger()
    handoff = job.handoff
    try:
        if job.sandbox is None:
            job.credentials = load_credentials(job.cloud, getattr(job.env.target(job.cloud), "credentials", None))
        result: Result = runner.execute(job, secret=_secret, log=logger.info)
        for line in result.summary:
            logger.info("%s: %s", job.name, line)
        if handoff is not None:
            handoff.result(job.name, result)
        if result.record is not None:
            if handoff is not None:
                handoff.wait_recorded(job.record_after)
            result = _write(result)
    finally:
        if handoff is not None:
            handoff.recorded(job.name)
    if result.report.status == "failed":
        return Failed(message=result.report.error or "failed", data=result)
    return Completed(message=result.report.status, data=result)


def _write(result: Result) -> Result:
    """Write the record; a write that fails after the client's retries fails the component, saying so.

    The failure is a new result: the one handed over may be read by the scheduler at this moment.
    """
    assert result.record is not None
    context = TaskRunContext.get()
    task_run_id = str(context.task_run.id) if context else None
    try:
        state.write_component(result.record, task_run_id=task_run_id)
    except Exception as exc:  # noqa: BLE001 - reported as the component's failure, the run goes on
        done = f"{result.record.action} {result.report.status}"
        error = (
            f"{done}, but its state record could not be written ({type(exc).__name__}: {exc}); run again with --resume"
        )
        return replace(result, report=result.report.model_copy(update={"status": "failed", "error": error}))
    return result
