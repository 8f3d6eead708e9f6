"""A phase-barrier flow: the baseline the orchestrator is measured against, run for real once.

Same component task, same state records, same server as ``flows.orchestrate``; only the
policy differs: every component of a phase (graph depth) must finish before the next
phase starts, and within a phase at most ``max_parallel`` run at once, longest first.
Imported only after the bench has pointed this process at its Prefect server.
"""

from __future__ import annotations

import concurrent.futures
import inspect
from typing import Any

from prefect import flow
from prefect.context import FlowRunContext
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from flows.orchestrate import expected_durations
from strataflow import graph as graphs
from strataflow import server, state
from strataflow.load import load_platform
from strataflow.records import now
from strataflow.report import ComponentReport, RunReport
from strataflow.runner import Job, Result
from tasks.deploy import deploy_component


def _submit(job: Job) -> Any:
    """Submit the component task as the orchestrator does (its signature has changed before)."""
    params = inspect.signature(deploy_component.fn).parameters
    if "component" in params:
        return deploy_component.submit(quote(job), job.action, job.name)
    return deploy_component.with_options(task_run_name=f"{job.action}-{job.name}").submit(quote(job))


@flow(name="bench-phase-barrier", task_runner=ThreadPoolTaskRunner(max_workers=64), persist_result=False)
def phase_barrier(env: str, config_dir: str, max_parallel: int = 64, force: bool = True) -> dict[str, Any]:
    platform = load_platform(config_dir)
    environment = platform.environment(env)
    cloud = platform.cloud_for(environment, None)
    context = FlowRunContext.get()
    flow_run_id = str(context.flow_run.id) if context and context.flow_run else None
    graph, _ = graphs.select_components(platform, env, cloud, None)
    records = state.latest_components(env, cloud, graph.nodes)
    durations, default = expected_durations(records)
    report = RunReport(
        env=env, cloud=cloud, action="apply", status="running", flow_run_id=flow_run_id, started_at=now()
    )
    results: dict[str, Result] = {}
    for phase in graph.phases():
        queue = sorted(phase, key=lambda n: (-durations.get(n, default), n))
        in_flight: dict[concurrent.futures.Future[Any], tuple[str, Any]] = {}
        while queue or in_flight:
            while queue and len(in_flight) < max_parallel:
                name = queue.pop(0)
                upstream = {dep: results[dep].outputs for dep in graph.upstream[name] if dep in results}
                job = Job(
                    platform=platform,
                    env=environment,
                    cloud=cloud,
                    name=name,
                    action="apply",
                    upstream_outputs=upstream,
                    previous=records.get(name),
                    force=force,
                    flow_run_id=flow_run_id,
                    actor="bench",
                    sandbox=None,
                    state_dir=server.home(),
                )
                future = _submit(job)
                in_flight[future.wrapped_future] = (name, future)
            done, _ = concurrent.futures.wait(list(in_flight), return_when=concurrent.futures.FIRST_COMPLETED)
            for raw in done:
                name, future = in_flight.pop(raw)
                future.wait()  # the wrapped future is done; wait until the Prefect state is final too
                data = future.state.result(raise_on_failure=False)
                if isinstance(data, Result):
                    results[name] = data
                    report.components[name] = data.report
                else:
                    report.components[name] = ComponentReport(status="failed", error=repr(data))
    report.finished_at = now()
    report.status = "failed" if report.failed else "succeeded"
    return report.to_json()
