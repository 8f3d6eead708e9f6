"""The component task: one plan, apply or destroy of one component, recorded as it finishes."""

from __future__ import annotations

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

    ``action`` and ``component`` repeat the job's, to name the task run `<action>-<component>`.
    """
    del action, component
    logger = get_run_logger()
    if job.sandbox is None:
        job.credentials = load_credentials(job.cloud, getattr(job.env.target(job.cloud), "credentials", None))
    result: Result = runner.execute(job, secret=_secret, log=logger.info)
    for line in result.summary:
        logger.info("%s: %s", job.name, line)
    if result.record is not None:
        context = TaskRunContext.get()
        task_run_id = str(context.task_run.id) if context else None
        state.write_component(result.record, task_run_id=task_run_id)
    if result.report.status == "failed":
        return Failed(message=result.report.error or "failed", data=result)
    return Completed(message=result.report.status, data=result)
