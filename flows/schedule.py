"""The flow's scheduler loop: start what may start, release dependents the moment a component is done.

The flow is the scheduler. It keeps the ready set in a ``Scheduler``, submits at most
``max_parallel`` component tasks, waits for the first to hand over its result and releases
that component's dependents at once: no phase barriers, and no worker thread held by a
waiting task. Among ready components the one with the longest remaining path (weighted by
its median duration from run history) starts first.

Cancelled (``strataflow/cancel.py``: Ctrl-C, SIGTERM), it starts nothing more and waits for
the components in flight, which stop on the run's token and come back ``cancelled`` (in
about a second: backends wake at once, programs get their grace); it returns only then, so
the flow releases the environment lock only when no thread of the run can change the cloud
any more. The wait has no deadline on purpose: Prefect's task runner joins its threads when
the flow ends anyway, so giving up on one would not end the process sooner, only release the
lock while that thread may still act. Every ``cancel.REMIND_EVERY`` seconds it says on stderr
what it still waits for; a second signal exits at once and leaves the lock to expire.
"""

from __future__ import annotations

import concurrent.futures
import sys
import time
from collections.abc import Callable
from typing import Any

from prefect import get_run_logger
from prefect.client.schemas.objects import StateDetails
from prefect.futures import PrefectFuture
from prefect.states import Completed
from prefect.utilities.annotations import quote
from prefect.utilities.engine import link_state_to_task_run_result

from strataflow import cancel, events, state
from strataflow import graph as graphs
from strataflow.errors import LockLost
from strataflow.handoff import Handoff
from strataflow.records import ComponentRecord
from strataflow.report import ComponentReport, RunReport
from strataflow.runner import Job, Result
from tasks.deploy import deploy_component

PROGRESS_EVERY = 2.0
"""Seconds between updates of the run's progress artifact."""


def _always() -> None:
    """No fence: a plan changes nothing, so it needs no lock."""


def run_graph(
    scheduler: graphs.Scheduler,
    work: graphs.Graph,
    full: graphs.Graph,
    records: dict[str, ComponentRecord],
    report: RunReport,
    job_args: dict[str, Any],
    fence: Callable[[], None] = _always,
) -> tuple[dict[str, Result], str | None]:
    """Run the ready set until nothing is left; fill ``report`` as components finish.

    A component counts as finished (its dependents start, its slot is free) when its task
    hands over the backend's result, before its record is written (strataflow/handoff.py);
    a task that ends without handing over (it crashed) is finished by its end. The records
    are all written before this returns.

    ``fence`` is called before each component starts (the environment lock's check): when it
    raises LockLost, nothing more starts, what runs finishes, and the reason is returned.
    When the run's cancellation token is set nothing more starts either, and what runs is
    waited for as it stops; the rest is ``cancelled``.
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
    lost: str | None = None
    token = cancel.current()
    remind_at: float | None = None  # cancelled: when to say again what the run waits for
    try:
        with token.watching():  # a signal now cancels the token instead of interrupting this thread
            while not scheduler.finished:
                while lost is None and not token.cancelled() and len(running) < scheduler.max_parallel:
                    try:
                        fence()
                    except LockLost as exc:
                        lost = str(exc)
                        break
                    batch = scheduler.start(limit=1)
                    if not batch:
                        break
                    name = batch[0]
                    submitted[name] = _submit(name, work, full, records, results, submitted, handoff, job_args)
                    running.add(name)
                    events.emit(name, "running")
                if not running:
                    break
                if token.cancelled() and remind_at is None:
                    remind_at = time.monotonic() + cancel.REMIND_EVERY
                    get_run_logger().warning(
                        "%s: no component starts any more; waiting for %s to stop",
                        token.reason,
                        ", ".join(sorted(running)),
                    )
                reporter.finished(len(report.components))
                event = handoff.next(timeout=1.0 if remind_at is None else 0.2)
                if event is None:
                    if remind_at is not None and time.monotonic() > remind_at:
                        remind_at = time.monotonic() + cancel.REMIND_EVERY
                        _still_waiting(token, sorted(running))
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
            wait_for_records(submitted, report)
    except BaseException:
        for name in running:
            submitted[name].wrapped_future.cancel()  # type: ignore[attr-defined]
            report.components[name] = ComponentReport(status="cancelled", error="the run was interrupted")
        raise
    finally:
        for name in order:
            if name not in report.components:
                why = (
                    f"not started: {lost}"
                    if lost
                    else f"not started: {token.reason}"
                    if token.cancelled()
                    else "never started"
                )
                report.components[name] = ComponentReport(status="cancelled", error=why)
        report.components = {name: report.components[name] for name in order}
        reporter.close()
    return results, lost


def _still_waiting(token: cancel.Token, running: list[str]) -> None:
    """Say, on stderr and in the run's log, what a cancelled run still waits for, and how not to wait."""
    line = (
        f"{token.reason}: still waiting for {', '.join(running)} to stop (a call to the cloud that has not "
        "answered yet); the environment lock is held until then. Signal again to exit at once: the lock then "
        "expires within about a minute"
    )
    get_run_logger().warning(line)
    print(f"strata: {line}", file=sys.stderr, flush=True)


def wait_for_records(submitted: dict[str, PrefectFuture[Any]], report: RunReport) -> None:
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
    shared = {key: value for key, value in job_args.items() if key != "bundles"}
    job = Job(
        name=name,
        upstream_outputs=upstream_outputs,
        sensitive_upstream=sensitive,
        previous=records.get(name),
        handoff=handoff,
        record_after=tuple(sorted(work.upstream[name])),
        bundle=job_args["bundles"].get(name),
        **shared,
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


__all__ = ["run_graph", "wait_for_records"]
