"""The component task: one plan, apply or destroy of one component, recorded as it finishes."""

from __future__ import annotations

from dataclasses import replace

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.context import TaskRunContext
from prefect.states import Completed, Failed

from blocks.credentials import load_credentials
from strataflow import runner, state
from strataflow.runner import Job, Result
from strataflow.state.secrets import read_secret


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
    written = False
    try:
        if job.sandbox is None:
            job.credentials = load_credentials(job.cloud, getattr(job.env.target(job.cloud), "credentials", None))
        result: Result = runner.execute(job, secret=read_secret, log=logger.info)
        for line in result.summary:
            logger.info("%s: %s", job.name, line)
        if handoff is not None:
            handoff.result(job.name, result)
        written = result.record is None  # nothing to write: its last record stands
        if result.record is not None:
            missing = handoff.wait_recorded(job.record_after) if handoff is not None else []
            result, written = (_unrecorded(result, missing), False) if missing else _write(result)
    finally:
        if handoff is not None:
            handoff.recorded(job.name, written)
    if result.report.status == "failed":
        return Failed(message=result.report.error or "failed", data=result)
    return Completed(message=result.report.status, data=result)


def _unrecorded(result: Result, missing: list[str]) -> Result:
    """Not recorded: its upstream's record was not written, so a record of it would rest on outputs nobody recorded."""
    done = f"{result.report.status}" if result.record is None else f"{result.record.action} {result.report.status}"
    error = (
        f"{done}, but not recorded: the record of {', '.join(missing)}, which it was built on, could not be written; "
        "run again with --resume"
    )
    get_run_logger().error("%s: %s", result.record.component if result.record else "?", error)
    return replace(result, report=result.report.model_copy(update={"status": "failed", "error": error}))


def _write(result: Result) -> tuple[Result, bool]:
    """Write the record; a write that fails after the client's retries fails the component, saying so.

    The failure is a new result: the one handed over may be read by the scheduler at this moment.
    Returns the result and whether the record was written.
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
        return replace(result, report=result.report.model_copy(update={"status": "failed", "error": error})), False
    return result, True
