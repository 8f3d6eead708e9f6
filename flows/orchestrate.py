"""The orchestrator flow: deploy one environment's components in dependency order.

It deploys bundle snapshots (``flows/snapshot.py``): from the working tree for ``strata
apply``, or a release's stored bundles for a promotion or rollback. Protected environments
change only with an approval bound to exactly what is deployed (``flows/guard.py``). The
scheduler loop is ``flows/schedule.py``; each component is one task (``tasks/deploy.py``).

While it holds the environment lock, SIGINT and SIGTERM (Ctrl-C; a Prefect worker cancelling
the run) cancel the run instead of interrupting it (``strataflow/cancel.py``): nothing more
starts, what runs stops and is recorded ``cancelled``, and the lock is released only after.
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Mapping
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.client.schemas.objects import State
from prefect.context import FlowRunContext
from prefect.runtime import flow_run as current_flow_run
from prefect.states import Completed, Failed
from prefect.task_runners import ThreadPoolTaskRunner

from flows import costs, guard, snapshot
from flows.approval import deadline_after, wait_for_decision
from flows.schedule import run_graph
from strataflow import cancel, gates, refs, server, state
from strataflow import graph as graphs
from strataflow.actor import resolve_actor
from strataflow.approvals import Answer, ApprovalRequest, approval_digest, deployment_digest, presentation_digest
from strataflow.config import Environment, Platform
from strataflow.cost import change_lines
from strataflow.errors import NeverApplied, UsageError
from strataflow.graph import MAX_PARALLEL
from strataflow.load import load_platform
from strataflow.notifications import ApplyFailed
from strataflow.records import ComponentRecord, Decision, RunRecord, now, release_of
from strataflow.releases import Bundle, Release, release_id
from strataflow.report import RunReport, markdown
from tasks.notify import notify

DEFAULT_DURATION = 60.0
"""Expected seconds of a component with no history (only its rank among peers matters)."""
How = Literal["apply", "promotion", "rollback"]


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
    release: dict[str, str] | None = None,
    environment_snapshot: str | None = None,
    how: How = "apply",
    source: str | None = None,
    approval: dict[str, Any] | None = None,
    break_glass: str | None = None,
    recheck: dict[str, Any] | None = None,
) -> State:
    """Plan, apply or destroy environment ``env`` (a subset with ``select``) as one flow run.

    ``release`` (component -> bundle digest) deploys stored bundles instead of the working
    tree, with the environment file snapshot ``environment_snapshot``: how promotions
    (``how="promotion"``, from ``source``) and rollbacks deploy. ``approval`` is the decision
    that allowed it; ``recheck`` names the promotion gates checked again under the lock.
    ``break_glass`` (a reason) applies the working tree to a protected environment after an
    approver approves it here.
    """
    logger = get_run_logger()
    graphs.check_parallelism(max_parallel)
    actor = resolve_actor(actor)
    context = FlowRunContext.get()
    flow_run_id = str(context.flow_run.id) if context and context.flow_run else None
    wrong = guard.other_environment({"env": env})
    if wrong:
        return _refused(env, cloud or "-", action, flow_run_id, wrong, sandbox)
    working = load_platform(config_dir)
    platform, bundles = (
        snapshot.from_release(working, env, release, environment_snapshot) if release is not None else (working, {})
    )
    environment = platform.environment(env)
    cloud = platform.cloud_for(environment, cloud)
    state.tag_flow_run(flow_run_id, ["strata", f"env:{env}", f"cloud:{cloud}", f"action:{action}"])
    graph, selected = graphs.select_components(platform, env, cloud, select)
    if resume:
        previous_run, redo = state.resume_plan(env, cloud, sandbox)
        if previous_run.action != action:
            raise UsageError(
                f"the last run of {env} ({cloud}) was a {previous_run.action}; resume it with "
                f"`strata {previous_run.action} {env} --resume`"
            )
        force = force or bool(previous_run.detail.get("force"))  # what a forced run did not finish is redone
        selected = set(redo) & set(graph.upstream)
        logger.info("resuming %s: %s", previous_run.flow_run_id, ", ".join(sorted(selected)) or "nothing left to do")
    if release is not None:
        selected &= set(release)
    work = graph.subgraph(selected)
    if release is None:
        platform, bundles = snapshot.working_tree(platform, cloud, work.nodes)
    if action == "destroy":
        work = work.reversed()

    decision: Decision | None = None
    if action != "plan" and environment.approval.required:
        refusal: str | None = None
        if release is not None and how in ("promotion", "rollback"):
            digests = {name: bundle.digest for name, bundle in bundles.items()}
            refusal, decision = guard.proof_refusal(
                approval, environment, cloud, sandbox, digests, environment_snapshot, flow_run_id
            )
        elif break_glass:
            decision, _ = _break_glass(platform, environment, cloud, sandbox, bundles, break_glass, actor, flow_run_id)
            if decision.decision != "approve":
                return _ended(env, cloud, action, flow_run_id, decision, sandbox)
        else:
            refusal = guard.protected_refusal(environment, action)
        if refusal:
            return _refused(env, cloud, action, flow_run_id, refusal, sandbox)
    elif approval:
        decision = Decision.model_validate({k: v for k, v in approval.items() if k in Decision.model_fields})
    kind = "break-glass" if break_glass and environment.approval.required else how

    records = state.latest_components(env, cloud, graph.nodes, sandbox)
    if action == "apply":
        _check_outside_outputs(platform, environment, cloud, work, records)
    durations, default = expected_durations(records)
    intended = release_id({**release_of(records), **{n: b.digest for n, b in bundles.items()}})
    started = now()
    report = RunReport(env=env, cloud=cloud, action=action, status="running", flow_run_id=flow_run_id, started_at=started)
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
        sandbox=sandbox,
        detail={
            "resume": resume,
            "force": force,
            "sandbox": sandbox,
            "how": kind,
            "source": source,
            "break_glass": break_glass,
            "approval": decision.model_dump(mode="json") if decision else None,
        },
    )
    lock = (
        state.environment_lock(env, cloud, flow_run_id, actor, wait_lock, sandbox)
        if action != "plan"
        else contextlib.nullcontext()
    )
    with cancel.signals() as token, lock as lease:  # the handlers go back only after the lock is released
        if lease is not None:
            run_record.detail["lease"] = str(lease.lease_id)  # `strata unlock --force` revokes it
        if recheck is not None and action != "plan":
            failed = _recheck(recheck, environment, cloud, sandbox, list(bundles))
            if failed:
                run_record.status, run_record.finished_at = "refused", now()
                run_record.detail["refused"] = failed
                state.write_run(run_record)
                return _refused(env, cloud, action, flow_run_id, failed, sandbox)
        if action != "plan":
            state.write_run(run_record)
        results, lost = run_graph(
            graphs.Scheduler(work, max_parallel, work.priorities(durations, default)),
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
                "sandbox": server.sandbox(cloud) if sandbox else None,
                "state_dir": server.home(),
                "bundles": bundles,
                "release": intended,
                "how": kind,
                "source": source,
                "approval": decision,
            },
            fence=lease.check if lease is not None else _unfenced,
        )
        report.finished_at = now()
        report.status = (
            "failed"
            if report.failed
            else "cancelled"
            if any(c.status == "cancelled" for c in report.components.values())
            else "succeeded"
        )
        if lost or token.cancelled():
            report.status = "cancelled"
        if token.cancelled():
            run_record.detail["cancelled"] = token.reason
        if action != "plan":
            reached = _record_release(env, cloud, sandbox, graph.nodes, kind, source, actor, flow_run_id, environment_snapshot)
            run_record.status = "lock lost" if lost else report.status
            run_record.detail["lock_lost"] = lost
            run_record.finished_at = report.finished_at
            run_record.components = {n: c.status for n, c in report.components.items()}
            run_record.release = reached
            state.write_run(run_record)
    _publish(report, {name: r.summary for name, r in results.items()})
    payload = report.to_json()
    if lost:
        payload["lock_lost"] = lost
    if action == "plan":
        payload["plans"] = {name: r.summary for name, r in results.items() if r.summary}
        planned = [name for name, c in report.components.items() if c.status == "planned"]
        if release is None and planned:  # a promotion prices its release itself
            payload["cost"] = _plan_cost(platform, environment, cloud, planned, records, sandbox)
    if report.status == "failed" and action != "plan" and how == "apply":
        # notifications (issue 18): the environment's notify blocks; a promotion's or rollback's end reports its own
        notify(environment, ApplyFailed.from_report(payload, sandbox=sandbox))
    if report.status != "succeeded":
        failed_names = ", ".join(report.failed) or "cancelled"
        return Failed(message=f"{action} {env} ({cloud}) failed: {failed_names}", data=payload)
    return Completed(message=f"{action} {env} ({cloud}) succeeded", data=payload)


def _plan_cost(
    platform: Platform,
    environment: Environment,
    cloud: str,
    planned: list[str],
    records: Mapping[str, ComponentRecord],
    sandbox: bool,
) -> list[str]:
    """The monthly cost change of what the plan would change, logged and shown after the plan."""
    found = costs.changes(platform, environment, cloud, planned, records, sandbox)
    lines = change_lines(found) if found is not None else ["monthly change unknown: the prices could not be read"]
    logger = get_run_logger()
    for line in lines:
        logger.info("cost: %s", line)
    return lines


def _unfenced() -> None:
    """A plan holds no lock: nothing to check."""


def _refused(env: str, cloud: str, action: str, flow_run_id: str | None, reason: str, sandbox: bool) -> State:
    """The run ends Failed without a traceback: nothing was changed, and the command line exits 5."""
    get_run_logger().error("refused: %s", reason)
    payload = {"env": env, "cloud": cloud, "action": action, "status": "refused", "reason": reason}
    return Failed(message=f"{action} {env} refused: {reason}", data={**payload, "flow_run_id": flow_run_id, "sandbox": sandbox})


def _ended(env: str, cloud: str, action: str, flow_run_id: str | None, decision: Decision, sandbox: bool) -> State:
    """A break-glass change rejected or not approved in time: nothing was changed (exit 3)."""
    status = "rejected" if decision.decision == "reject" else "timed out"
    reason = (
        f"rejected by {decision.who()}: {decision.comment or 'no comment'}"
        if status == "rejected"
        else "nobody approved it in time"
    )
    get_run_logger().error("%s %s: %s", action, env, reason)
    payload = {"env": env, "cloud": cloud, "action": action, "status": status, "reason": reason}
    return Failed(message=f"{action} {env} {status}: {reason}", data={**payload, "flow_run_id": flow_run_id, "sandbox": sandbox})


def _break_glass(
    platform: Platform,
    environment: Environment,
    cloud: str,
    sandbox: bool,
    bundles: dict[str, Bundle],
    reason: str,
    actor: str,
    flow_run_id: str | None,
) -> tuple[Decision, Answer | None]:
    """Wait, in this run, for an approver to approve deploying the working tree into a protected environment."""
    env_sha = snapshot.environment_snapshot(platform, environment.name, cloud)
    deployment = deployment_digest(
        environment.name, cloud, sandbox, {n: b.digest for n, b in bundles.items()}, env_sha
    )
    shown = {"break_glass": reason, "components": {n: [b.version, b.digest] for n, b in sorted(bundles.items())}}
    request = ApprovalRequest(
        flow_run_id=flow_run_id or "",
        kind="break-glass",
        env=environment.name,
        cloud=cloud,
        sandbox=sandbox,
        requester=actor,
        approvers=environment.approval.approvers,
        digest=approval_digest(deployment, presentation_digest(shown)),
        summary=f"break-glass {environment.name}: {reason}",
        created_at=now(),
        deadline=deadline_after(environment.approval.timeout),
        url=state.flow_run_url(flow_run_id),
        break_glass=reason,
    )
    rows = "\n".join(f"| {n} | {b.version or '-'} | `{b.digest[:12]}` |" for n, b in sorted(bundles.items()))
    create_markdown_artifact(
        f"# Break-glass into {environment.name} ({cloud}): waiting for approval\n\nRequested by **{actor}**: {reason}\n\n"
        f"The working tree is deployed, bypassing promotion.\n\n| component | version | bundle |\n|---|---|---|\n{rows}\n\n"
        f"Digest: `{request.digest}`. May decide: {request.who_may_decide()}.",
        key=f"strata-break-glass-{environment.name}".lower(),
        description=f"break-glass {environment.name}: waiting for approval",
    )
    return wait_for_decision(request, environment)


def _recheck(recheck: dict[str, Any], target: Environment, cloud: str, sandbox: bool, names: list[str]) -> str | None:
    """The promotion's gates again, now that the target is locked: the first that fails, or None."""
    checks = [gates.not_frozen(target, now(), recheck.get("override_freeze"), str(recheck.get("requester") or ""))]
    source = recheck.get("source")
    if source:
        records = state.latest_components(source, cloud, names, sandbox)
        checks += [
            *gates.source_ok(source, names, records),
            gates.no_drift(source, records, names),
            gates.not_running(source, state.lock_holder_if_held(source, cloud, sandbox)),
        ]
    failed = next((g for g in checks if not g.passed), None)
    return None if failed is None else f"gate {failed.name} refused after the approval: {failed.reason}"


def _record_release(
    env: str,
    cloud: str,
    sandbox: bool,
    names: list[str],
    how: str,
    source: str | None,
    actor: str,
    flow_run_id: str | None,
    environment_sha: str | None,
) -> str | None:
    """Record the release the environment runs now (after every record is written); its id."""
    records = state.latest_components(env, cloud, names, sandbox)
    bundles = release_of(records)
    if not bundles:
        return None
    reached = Release(
        id=release_id(bundles),
        env=env,
        cloud=cloud,
        components=bundles,
        versions={n: a.version for n in bundles if (a := records[n].applied) is not None},
        created_at=now(),
        actor=actor,
        how=how,
        source=source,
        flow_run_id=flow_run_id,
        environment=environment_sha,
        sandbox=sandbox,
    )
    state.write_release(reached)
    return reached.id


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


def _publish(report: RunReport, summaries: dict[str, list[str]]) -> None:
    next_steps = []
    if report.failed:
        next_steps.append(
            f"fix {', '.join(report.failed)}, then `strata apply {report.env} --cloud {report.cloud} --resume`"
        )
    elif report.status == "cancelled":
        again = "" if report.action == "plan" else " --resume"
        next_steps.append(f"`strata {report.action} {report.env} --cloud {report.cloud}{again}` to finish what was cancelled")
    elif report.action == "plan":
        next_steps.append(f"`strata apply {report.env} --cloud {report.cloud}` to apply this plan")
    else:
        next_steps.append(f"`strata status {report.env}` to see what is deployed")
    plans = "\n".join(f"**{name}**\n```\n" + "\n".join(lines) + "\n```" for name, lines in summaries.items() if lines)
    body = markdown(report, next_steps) + (f"\n\n## Changes\n{plans}" if plans else "")
    create_markdown_artifact(
        body, key=f"strata-report-{report.env}-{report.cloud}".lower(), description=f"{report.action} {report.env}"
    )


__all__ = ["orchestrate"]
