"""The orchestrator flow: deploy one environment's components in dependency order.

The flow is the scheduler. It keeps the ready set in a ``Scheduler``, submits
at most ``max_parallel`` component tasks, waits for the first to finish
(``concurrent.futures.wait(..., FIRST_COMPLETED)``) and releases that component's
dependents at once: no phase barriers, and no worker thread held by a waiting task.
Among ready components the one with the longest remaining path (weighted by its median
duration from run history) starts first.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import statistics
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.client.schemas.objects import State, StateDetails
from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run as current_flow_run
from prefect.states import Completed, Failed
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote
from prefect.utilities.engine import link_state_to_task_run_result

from strataflow import events, refs, server, state
from strataflow import graph as graphs
from strataflow.actor import resolve_actor
from strataflow.config import Environment, Platform
from strataflow.errors import NeverApplied
from strataflow.graph import MAX_PARALLEL
from strataflow.handoff import Handoff
from strataflow.load import load_platform
from strataflow.records import ComponentRecord, RunRecord, now
from strataflow.report import ComponentReport, RunReport, markdown
from strataflow.runner import Job, Result
from tasks.deploy import deploy_component

PROGRESS_EVERY = 2.0
"""Seconds between updates of the run's progress artifact."""
DEFAULT_DURATION = 60.0
"""Expected seconds of a component with no history (only its rank among peers matters)."""


def _run_name() -> str:
    """`apply dev (aws)`: the cloud is resolved from the config when the run does not name it."""
    params = current_flow_run.parameters
    cloud = params.get("cloud")
    if not cloud:
        try:
            platform = load_platform(params.get("config_dir", "config"))
            cloud = platform.cloud_for(platform.environment(params["env"]), None)
        except Exception:  # noqa: BLE001 - the run itself reports a bad config
            cloud = "default cloud"
    return f"{params.get('action', 'apply')} {params.get('env')} ({cloud})"


def expected_durations(records: dict[str, ComponentRecord]) -> tuple[dict[str, float], float]:
    """Each component's median apply duration, and the default for those without history."""
    known = {name: d for name, r in records.items() if (d := r.expected_duration()) is not None}
    default = statistics.median(known.values()) if known else DEFAULT_DURATION
    return known, default


@flow(
    name="orchestrate",
    flow_run_name=_run_name,
    # twice the cap: a task whose result is handed over holds its thread while its record is written
    task_runner=ThreadPoolTaskRunner(max_workers=2 * MAX_PARALLEL),  # type: ignore[arg-type]  # Prefect's generic is too narrow
    persist_result=False,
    validate_parameters=True,
)
def orchestrate(
    env: str,
    cloud: str | None = None,
    select: str | None = None,
    action: Literal["plan", "apply", "destroy"] = "apply",
    max_parallel: int = 8,
    resume: bool = False,
    config_dir: str = "config",
    force: bool = False,
    sandbox: bool = False,
    actor: str | None = None,
    wait_lock: float = 0.0,
) -> State:
    """Plan, apply or destroy environment ``env`` (a subset with ``select``) as one flow run."""
    logger = get_run_logger()
    graphs.check_parallelism(max_parallel)
    actor = resolve_actor(actor)
    platform = load_platform(config_dir)
    environment = platform.environment(env)
    cloud = platform.cloud_for(environment, cloud)
    context = FlowRunContext.get()
    flow_run_id = str(context.flow_run.id) if context and context.flow_run else None
    state.tag_flow_run(flow_run_id, ["strata", f"env:{env}", f"cloud:{cloud}", f"action:{action}"])
    graph, selected = graphs.select_components(platform, env, cloud, select)
    if resume:
        previous_run, redo = state.resume_plan(env, cloud)
        action = previous_run.action  # type: ignore[assignment]
        selected = set(redo) & set(graph.upstream)
        logger.info("resuming %s: %s", previous_run.flow_run_id, ", ".join(sorted(selected)) or "nothing left to do")
    work = graph.subgraph(selected)
    if action == "destroy":
        work = work.reversed()
    records = state.latest_components(env, cloud, graph.nodes)
    if action == "apply":
        _check_outside_outputs(platform, environment, cloud, work, records)
    durations, default = expected_durations(records)
    sandbox_info = server.sandbox(cloud) if sandbox else None
    started = now()
    report = RunReport(
        env=env, cloud=cloud, action=action, status="running", flow_run_id=flow_run_id, started_at=started
    )
    run_record = RunRecord(
        env=env,
        cloud=cloud,
        action=action,
        status="running",
        flow_run_id=flow_run_id,
        actor=actor,
        started_at=started,
        select=select,
        planned=work.order(),
        detail={"resume": resume, "force": force, "sandbox": sandbox},
    )
    lock = (
        state.environment_lock(env, cloud, flow_run_id, actor, wait_lock)
        if action != "plan"
        else contextlib.nullcontext()
    )
    with lock:
        if action != "plan":
            state.write_run(run_record)
        scheduler = graphs.Scheduler(work, max_parallel, work.priorities(durations, default))
        results = _schedule(
            scheduler,
            work,
            graph,
            records,
            report,
            {
                "platform": platform,
                "env": environment,
                "cloud": cloud,
                "action": action,
                "force": force,
                "flow_run_id": flow_run_id,
                "actor": actor,
                "sandbox": sandbox_info,
                "state_dir": server.home(),
            },
        )
        report.finished_at = now()
        report.status = (
            "failed"
            if report.failed
            else "cancelled"
            if any(c.status == "cancelled" for c in report.components.values())
            else "succeeded"
        )
        if action != "plan":
            run_record.status = report.status
            run_record.finished_at = report.finished_at
            run_record.components = {n: c.status for n, c in report.components.items()}
            state.write_run(run_record)
    _publish(report, work, results)
    payload = report.to_json()
    if report.status != "succeeded":
        failed = ", ".join(report.failed) or "cancelled"
        return Failed(message=f"{action} {env} ({cloud}) failed: {failed}", data=payload)
    return Completed(message=f"{action} {env} ({cloud}) succeeded", data=payload)


def _check_outside_outputs(
    platform: Platform, env: Environment, cloud: str, work: graphs.Graph, records: dict[str, ComponentRecord]
) -> None:
    """Refuse, before anything runs, a selection needing outputs of an upstream never applied here."""
    in_run = set(work.upstream)
    for name in work.order():
        impl = platform.components[name].impl(cloud)
        used = refs.outputs_used(impl.model_dump() if impl else {}) | refs.outputs_used(env.override(name).parameters)
        for upstream in sorted(used - in_run):
            record = records.get(upstream)
            if record is None or record.applied is None or record.state != "applied":
                raise NeverApplied(
                    f"{name} needs {upstream}'s outputs but {upstream} has never been applied in {env.name} ({cloud}); "
                    f"use --select +{name}",
                    env=env.name,
                    component=name,
                )


def _schedule(
    scheduler: graphs.Scheduler,
    work: graphs.Graph,
    full: graphs.Graph,
    records: dict[str, ComponentRecord],
    report: RunReport,
    job_args: dict[str, Any],
) -> dict[str, Result]:
    """Run the ready set until nothing is left; fill ``report`` as components finish.

    A component counts as finished (its dependents start, its slot is free) when its task
    hands over the backend's result, before its record is written (strataflow/handoff.py);
    a task that ends without handing over (it crashed) is finished by its end. The records
    are all written before this returns.
    """
    action = job_args["action"]
    handoff = Handoff()
    results: dict[str, Result] = {}
    running: set[str] = set()  # submitted, no result yet: these hold the parallelism slots
    submitted: dict[str, PrefectFuture[Any]] = {}
    order = work.order()
    reporter = state.ProgressArtifact(
        job_args["flow_run_id"], f"{action} {job_args['env'].name}: components finished", len(order), PROGRESS_EVERY
    )
    try:
        while not scheduler.finished:
            for name in scheduler.start():
                submitted[name] = _submit(name, work, full, records, results, submitted, handoff, job_args)
                running.add(name)
                events.emit(name, "running")
            if not running:
                break
            reporter.finished(len(report.components))
            event = handoff.next(timeout=1.0)  # wakes now and then, so an interrupt is seen
            if event is None:
                continue
            kind, name, payload = event
            if name not in running:
                continue  # the end of a task whose result was handed over: checked below
            running.discard(name)
            result = payload if kind == "result" else _result_of(submitted[name], name)
            results[name] = result
            report.components[name] = result.report
            events.emit(name, result.report.status, report=result.report, summary=result.summary)
            for skipped in scheduler.finish(name, result.report.status != "failed"):
                because = scheduler.skipped[skipped]
                report.components[skipped] = ComponentReport(status="skipped", skipped_because=because)
                events.emit(skipped, "skipped", report=report.components[skipped])
        _wait_for_records(submitted, report)
    except BaseException:
        for name in running:
            submitted[name].wrapped_future.cancel()  # type: ignore[attr-defined]
            report.components[name] = ComponentReport(status="cancelled", error="the run was interrupted")
        raise
    finally:
        for name in order:
            if name not in report.components:
                report.components[name] = ComponentReport(status="cancelled", error="never started")
        report.components = {name: report.components[name] for name in order}
        reporter.close()
    return results


def _wait_for_records(submitted: dict[str, PrefectFuture[Any]], report: RunReport) -> None:
    """Wait until every task has ended (its record written); a record that failed to write fails its component."""
    concurrent.futures.wait([future.wrapped_future for future in submitted.values()])  # type: ignore[attr-defined]
    for name, future in submitted.items():
        final = _result_of(future, name).report
        if final.status == "failed" and report.components[name].status != "failed":
            report.components[name] = final
            events.emit(name, "failed", report=final)


def _submit(
    name: str,
    work: graphs.Graph,
    full: graphs.Graph,
    records: dict[str, ComponentRecord],
    results: dict[str, Result],
    submitted: dict[str, PrefectFuture[Any]],
    handoff: Handoff,
    job_args: dict[str, Any],
) -> PrefectFuture[Any]:
    action = job_args["action"]
    upstream_outputs: dict[str, dict[str, Any]] = {}
    sensitive: dict[str, frozenset[str]] = {}
    for dep in full.upstream[name]:
        if dep in results and action == "apply":
            upstream_outputs[dep] = results[dep].outputs
            sensitive[dep] = results[dep].sensitive
        elif dep in records and records[dep].applied is not None and records[dep].state == "applied":
            upstream_outputs[dep] = dict(records[dep].applied.outputs)  # type: ignore[union-attr]
            sensitive[dep] = frozenset(records[dep].applied.sensitive)  # type: ignore[union-attr]
    job = Job(
        name=name,
        upstream_outputs=upstream_outputs,
        sensitive_upstream=sensitive,
        previous=records.get(name),
        handoff=handoff,
        record_after=tuple(sorted(work.upstream[name])),
        **job_args,
    )
    upstream_edges = [_edge(submitted[dep]) for dep in sorted(full.upstream[name]) if dep in submitted]
    handoff.expect(name)
    # No task-run tags: Prefect checks tag concurrency limits for every tagged task run, which
    # cost ~300 ms per component here (3.9.1, 2 cores). The flow run carries the tags and each
    # task run is named `<action>-<component>`.
    future: PrefectFuture[Any] = deploy_component.submit(quote(job), action, name, wait_for=upstream_edges)  # type: ignore[call-overload]  # quote() wraps the job
    future.wrapped_future.add_done_callback(lambda _: handoff.ended(name))  # type: ignore[attr-defined]
    return future


class _Edge:
    """Stands for a finished upstream in ``wait_for``: the UI draws the edge, the task does not wait.

    Only its identity matters: Prefect finds the upstream task run through the link.
    """

    __slots__ = ("__weakref__",)


def _edge(upstream: PrefectFuture[Any]) -> _Edge:
    """An edge from ``upstream``, which has handed over its result but may still be writing its record.

    Prefect records a ``wait_for`` entry linked to a task run's state as that run's input
    (the edge in the UI) and, as it is no future and no state, resolves it without waiting;
    a future would wait for the record, and a state is resolved through the event loop
    thread (~12 ms per component under load, measured with py-spy).
    """
    edge = _Edge()
    link_state_to_task_run_result(Completed(state_details=StateDetails(task_run_id=upstream.task_run_id)), edge)
    return edge


def _result_of(future: PrefectFuture[Any], name: str) -> Result:
    future.wait()
    state_ = future.state
    data = getattr(state_.data, "result", None)  # the in-memory result record: no round trip
    if not isinstance(data, Result):
        data = state_.result(raise_on_failure=False)
    if isinstance(data, Result):
        return data
    message = (
        f"the task crashed: {data!r}" if isinstance(data, BaseException) else f"the task ended {state_.type.value}"
    )
    return Result(report=ComponentReport(status="failed", error=message), record=None)


def _publish(report: RunReport, work: graphs.Graph, results: dict[str, Result]) -> None:
    next_steps = []
    if report.failed:
        next_steps.append(
            f"fix {', '.join(report.failed)}, then `strata apply {report.env} --cloud {report.cloud} --resume`"
        )
    elif report.action == "plan":
        next_steps.append(f"`strata apply {report.env} --cloud {report.cloud}` to apply this plan")
    else:
        next_steps.append(f"`strata status {report.env}` to see what is deployed")
    plans = "\n".join(f"**{name}**\n```\n" + "\n".join(r.summary) + "\n```" for name, r in results.items() if r.summary)
    body = markdown(report, work, next_steps) + (f"\n\n## Changes\n{plans}" if plans else "")
    create_markdown_artifact(
        body, key=f"strata-report-{report.env}-{report.cloud}".lower(), description=f"{report.action} {report.env}"
    )


__all__ = ["orchestrate"]
