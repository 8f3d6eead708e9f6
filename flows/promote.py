"""The promotion flow: what the source verified, deployed into the target behind gates and an approval.

What is promoted is each selected component's bundle as the source last applied it
successfully, never the working tree; the target's environment file is snapshotted when the
promotion starts. Gates are checked, the diff (and, where an approval is needed, the
backends' plan) is computed and published with the digest of exactly what is approved; after
the approval the gates are checked again under the target's lock and the orchestrator
deploys the snapshot, checking every bundle's bytes. ``strata rollback`` is this flow with
one of the target's own earlier releases as what is deployed.
"""

from __future__ import annotations

from typing import Any, cast

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.client.schemas.objects import State
from prefect.context import FlowRunContext
from prefect.runtime import flow_run as current_flow_run
from prefect.states import Completed, Failed

from blocks.issues import GitHubIssueTracker
from flows import costs, guard, snapshot
from flows.approval import deadline_after, wait_for_decision
from flows.orchestrate import orchestrate
from strataflow import events, gates, state
from strataflow import graph as graphs
from strataflow.actor import resolve_actor
from strataflow.approvals import ApprovalRequest, approval_digest, deployment_digest, presentation_digest
from strataflow.config import Environment
from strataflow.cost import budget_action, budget_gate, change_lines, total_change
from strataflow.diff import PromotionDiff, component_changes, environment_diff
from strataflow.errors import UsageError
from strataflow.load import load_platform
from strataflow.notifications import PromotionEnded, failed_components
from strataflow.records import Decision, RunRecord, now
from strataflow.releases import SHORT
from strataflow.report import promotion_markdown
from tasks.notify import notify


def _run_name() -> str:
    params = current_flow_run.parameters
    if params.get("rollback"):
        return f"rollback {params.get('target')} to {params.get('rollback')}"
    return f"promote {params.get('source')} to {params.get('target')}"


@flow(name="promote", flow_run_name=_run_name, persist_result=False, validate_parameters=True)
def promote(
    source: str | None,
    target: str,
    select: str | None = None,
    auto_approve: bool | None = None,
    config_dir: str = "config",
    cloud: str | None = None,
    sandbox: bool = False,
    actor: str | None = None,
    override_freeze: str | None = None,
    max_parallel: int = 8,
    rollback: str | None = None,
) -> State:
    """Promote what ``source`` runs into ``target``; with ``rollback`` (a release id, or ``previous``), roll ``target`` back."""
    logger = get_run_logger()
    requester = resolve_actor(actor)
    context = FlowRunContext.get()
    flow_run_id = str(context.flow_run.id) if context and context.flow_run else None
    kind = "rollback" if rollback else "promotion"
    record = RunRecord(
        kind="promote",
        env=target,
        cloud=cloud or "-",
        action="rollback" if rollback else "promote",
        status="running",
        flow_run_id=flow_run_id,
        actor=requester,
        started_at=now(),
        select=select,
        sandbox=sandbox,
        detail={"source": source, "requester": requester, "sandbox": sandbox, "kind": kind, "rollback": rollback},
    )
    wrong = guard.other_environment({"source": source, "target": target})
    if wrong:
        return _end(record, "refused", wrong, environment=None)
    working = load_platform(config_dir)
    tgt = working.environment(target)
    cloud = working.cloud_for(tgt, cloud)
    record.cloud = cloud
    if rollback is None and source is None:
        raise UsageError("a promotion needs a source environment")
    src = working.environment(source) if source else None
    state.tag_flow_run(flow_run_id, ["strata", "promotion", f"env:{target}", f"cloud:{cloud}"])
    events.emit("promotion", "started", flow_run_id=flow_run_id)
    if auto_approve and tgt.approval.required:
        raise UsageError(f"{target} requires approval: --auto-approve is only for environments that do not")
    env_sha = snapshot.environment_snapshot(working, target, cloud)
    graph, selected = graphs.select_components(working, target, cloud, select)
    names = [n for n in graph.order() if n in selected]
    tgt_records = state.latest_components(target, cloud, graph.nodes, sandbox)
    record.detail["approvers"] = tgt.approval.names

    if rollback:
        bundles, checks = _rollback_bundles(target, cloud, sandbox, rollback, names)
    else:
        assert src is not None and source is not None
        src_records = state.latest_components(source, cloud, names, sandbox)
        # the sandbox's records only name why a component is unverified: read them only then
        unverified = [n for n in names if not ((r := src_records.get(n)) and r.applied and r.applied.bundle)]
        on_sandbox = state.latest_components(source, cloud, unverified, True) if unverified and not sandbox else None
        checks = [gates.promote_from(src, tgt), *gates.source_ok(source, names, src_records, on_sandbox)]
        checks += [
            gates.not_running(source, state.lock_holder_if_held(source, cloud, sandbox)),
            gates.no_drift(source, src_records, names),
        ]
        bundles = {n: r.applied.bundle for n, r in src_records.items() if r.applied and r.applied.bundle}
    checks += [
        gates.not_running(target, state.lock_holder_if_held(target, cloud, sandbox)),
        gates.not_frozen(tgt, now(), override_freeze, requester),
    ]
    names = [n for n in names if n in bundles]
    for gate in checks:
        (logger.info if gate.passed else logger.error)(gate.line())
    record.planned = names
    record.detail.update(gates=[g.model_dump() for g in checks], override_freeze=override_freeze)
    refused = [g for g in checks if not g.passed]
    if refused or not names:
        first = refused[0] if refused else None
        reason = (
            f"gate {first.name} refused" + (f" ({first.component})" if first.component else "") + f": {first.reason}"
            if first
            else "nothing to promote"
        )
        events.emit("promotion", "gates", gates=checks, diff=None)
        return _end(record, "refused", reason, checks=checks, environment=tgt)

    release = {n: bundles[n] for n in names}
    snapped, _ = snapshot.from_release(working, target, release, env_sha)
    diff = PromotionDiff(
        components=component_changes(snapped, snapped.environment(target), cloud, names, tgt_records, release),
        environment=environment_diff(src, tgt) if src else environment_diff(tgt, tgt),
    )
    cost = costs.changes(snapped, snapped.environment(target), cloud, names, tgt_records, sandbox)
    by_name = {c.component: c for c in cost or []}
    for change in diff.components:
        if change.component in by_name:
            change.cost = by_name[change.component].change()
    budget = budget_gate(tgt, total_change(cost) if cost is not None else None)
    checks.append(budget)
    if budget_action(tgt, budget) == "refuse":
        reason = f"gate budget refused: {budget.reason}, and {target} names no approvers"
        return _end(record, "refused", reason, checks=checks, diff=diff, environment=tgt)
    needs_approval = (tgt.approval.required or not budget.passed) and not (auto_approve and budget.passed)
    if cost is not None:
        record.detail["cost"] = change_lines(cost)
    if needs_approval:
        _plan(diff, target, cloud, sandbox, release, env_sha, config_dir, requester, max_parallel)
    logger.info("diff:\n%s", diff.text())
    events.emit("promotion", "gates", gates=checks, diff=diff)
    deployment = deployment_digest(target, cloud, sandbox, release, env_sha)
    presentation = presentation_digest({"gates": [g.model_dump() for g in checks], "diff": diff.model_dump()})
    digest = approval_digest(deployment, presentation)
    record.detail.update(diff=diff.model_dump(), digest=digest, release=release, environment=env_sha)

    request = ApprovalRequest(
        flow_run_id=flow_run_id or "",
        kind=kind,
        env=target,
        cloud=cloud,
        sandbox=sandbox,
        source=source,
        requester=requester,
        approvers=tgt.approval.approvers,
        digest=digest,
        summary=f"{kind} of {', '.join(names)} into {target}",
        created_at=now(),
        deadline=deadline_after(tgt.approval.timeout),
        url=state.flow_run_url(flow_run_id),
    )
    _publish(record, checks, diff, None, "awaiting approval" if needs_approval else "deploying", request)
    proof: dict[str, Any] = {"decision": "auto", "presentation": presentation, "flow_run_id": flow_run_id}
    if needs_approval:
        record.status = "awaiting approval"
        state.write_run(record)
        decision, answer = wait_for_decision(request, tgt)
        record.detail["approval"] = decision.model_dump(mode="json")
        if decision.decision != "approve":
            status = "rejected" if decision.decision == "reject" else "timed out"
            why = (
                f"rejected by {decision.who()}: {decision.comment or 'no comment'}"
                if status == "rejected"
                else f"nobody approved it within {tgt.approval.timeout:g}s"
            )
            return _end(record, status, f"{kind} into {target} {why}", checks=checks, diff=diff, request=request, environment=tgt)
        proof = {**(answer.model_dump() if answer else {}), **proof, "decision": "approve", "verified": decision.verified}
    else:
        record.detail["approval"] = Decision(decision="auto", at=now(), flow_run_id=flow_run_id).model_dump(mode="json")

    run_state = orchestrate(
        env=target,
        cloud=cloud,
        select=",".join(names),
        action="apply",
        max_parallel=max_parallel,
        config_dir=config_dir,
        sandbox=sandbox,
        actor=requester,
        release=release,
        environment_snapshot=env_sha,
        how=kind,
        source=source,
        approval=proof,
        recheck={"source": source, "override_freeze": override_freeze, "requester": requester},
        return_state=True,
    )
    report = cast(Any, run_state).result(raise_on_failure=False)
    if not isinstance(report, dict):
        raise report if isinstance(report, BaseException) else RuntimeError(f"deployment ended: {run_state.message}")
    if report.get("status") == "refused":
        return _end(record, "refused", str(report.get("reason")), checks=checks, diff=diff, request=request, environment=tgt)
    status = {"succeeded": "succeeded", "cancelled": "cancelled"}.get(str(report.get("status")), "failed")
    issue = (
        _open_issue(tgt.issue_tracker, source or target, target, cloud, report, flow_run_id) if status == "failed" else None
    )
    record.components = {n: c["status"] for n, c in report["components"].items()}
    if issue is not None:
        record.detail["issue"] = issue
    failed = ", ".join(n for n, c in report["components"].items() if c["status"] == "failed")
    outcome = {"failed": f"failed: {failed}", "cancelled": "was cancelled (Ctrl-C or SIGTERM)"}
    message = f"{kind} into {target} " + outcome.get(status, "succeeded")
    return _end(record, status, message, checks=checks, diff=diff, request=request, report=report, environment=tgt)


def _rollback_bundles(
    target: str, cloud: str, sandbox: bool, to: str, names: list[str]
) -> tuple[dict[str, str], list[gates.Gate]]:
    """The bundles of the release to roll back to (``previous``: the one before the current), and its gate."""
    history = state.releases(target, cloud, 100, sandbox)
    distinct = [r for i, r in enumerate(history) if i == 0 or r.id != history[i - 1].id]
    if to == "previous":
        chosen = distinct[1] if len(distinct) > 1 else None
        missing = f"{target} has no earlier release to roll back to"
    else:
        chosen = next((r for r in distinct if r.id.startswith(to.lower())), None)
        missing = f"{target} never ran release {to}; `strata releases {target}` lists the ones it did"
    if chosen is None:
        return {}, [gates.Gate(name="release", passed=False, reason=missing)]
    bundles = {n: d for n, d in chosen.components.items() if n in names}
    gate = gates.Gate(name="release", passed=True, reason=f"{target} ran release {chosen.short} ({chosen.describe()})")
    return bundles, [gate]


def _plan(
    diff: PromotionDiff,
    target: str,
    cloud: str,
    sandbox: bool,
    release: dict[str, str],
    env_sha: str,
    config_dir: str,
    requester: str,
    max_parallel: int,
) -> None:
    """The backends' plan of the release in the target, added to the diff (what the approver sees)."""
    planned = orchestrate(
        env=target,
        cloud=cloud,
        select=",".join(release),
        action="plan",
        max_parallel=max_parallel,
        config_dir=config_dir,
        sandbox=sandbox,
        actor=requester,
        release=release,
        environment_snapshot=env_sha,
        return_state=True,
    )
    report = cast(Any, planned).result(raise_on_failure=False)
    plans = report.get("plans", {}) if isinstance(report, dict) else {}
    for change in diff.components:
        component = (report.get("components", {}) if isinstance(report, dict) else {}).get(change.component, {})
        change.plan = list(plans.get(change.component, [])) or (
            [f"plan failed: {component.get('error')}"] if component.get("status") == "failed" else []
        )


def _refused_attempts(record: RunRecord) -> list[dict[str, Any]]:
    """Every decision refused while this run waited (recorded in the target's history)."""
    found = state.run_history(record.env, record.cloud, 200, record.sandbox)
    return [
        {"actor": r.actor, "decision": r.action, "at": str(r.started_at)[:19], "reason": r.detail.get("reason")}
        for r in reversed(found)
        if r.kind == "approval" and r.status == "refused" and r.detail.get("promotion") == record.flow_run_id
    ]


def _publish(
    record: RunRecord,
    checks: list[gates.Gate] | None,
    diff: PromotionDiff | None,
    report: dict[str, Any] | None,
    status: str,
    request: ApprovalRequest | None,
) -> None:
    source = record.detail.get("source") or record.env
    create_markdown_artifact(
        promotion_markdown(record, status, checks, diff, report, request, _refused_attempts(record)),
        key=f"strata-promotion-{source}-{record.env}".lower(),
        description=f"{record.detail.get('kind')} into {record.env}: {status}",
    )


def _end(
    record: RunRecord,
    status: str,
    message: str,
    *,
    checks: list[gates.Gate] | None = None,
    diff: PromotionDiff | None = None,
    request: ApprovalRequest | None = None,
    report: dict[str, Any] | None = None,
    environment: Environment | None = None,
) -> State:
    """Record the outcome, publish the final report, tell the notification blocks, and end the run.

    The run ends Failed unless it succeeded, without a traceback (the command line maps the status to its exit code).
    """
    record.status = status
    record.finished_at = now()
    record.detail["reason"] = message if status != "succeeded" else None
    record.detail["refused_attempts"] = _refused_attempts(record)
    state.write_run(record)
    _publish(record, checks, diff, report, status, request)
    (get_run_logger().info if status == "succeeded" else get_run_logger().error)(message)
    payload: dict[str, Any] = {
        **(report or {"env": record.env, "cloud": record.cloud, "action": record.action, "components": {}}),
        "status": report.get("status") if report else status,
        "promotion": {
            "status": status,
            "reason": message,
            "source": record.detail.get("source"),
            "target": record.env,
            "approval": record.detail.get("approval"),
            "issue": record.detail.get("issue"),
            "digest": (record.detail.get("digest") or "")[:SHORT] or None,
        },
    }
    if environment is not None:
        notify(
            environment,
            PromotionEnded(
                flow_run_id=record.flow_run_id,
                kind=str(record.detail.get("kind") or "promotion"),
                source=record.detail.get("source"),
                target=record.env,
                cloud=record.cloud,
                sandbox=record.sandbox,
                status=status,
                reason=None if status == "succeeded" else message,
                approver=(record.detail.get("approval") or {}).get("approver"),
                components=failed_components(report) if report else {},
                url=state.flow_run_url(record.flow_run_id),
            ),
        )
    if status == "succeeded":
        return Completed(message=message, data=payload)
    return Failed(message=message, data=payload)


def _open_issue(
    block_name: str | None, source: str, target: str, cloud: str, report: dict[str, Any], flow_run_id: str | None
) -> dict[str, Any] | None:
    """Report a failed promotion through the target's issue tracker, reusing its open issue."""
    if not block_name:
        return None
    logger = get_run_logger()
    failed = {n: c for n, c in report["components"].items() if c["status"] in ("failed", "skipped", "cancelled")}
    title = f"strataflow: promotion to {target} ({cloud}) failed"
    body = "\n".join(
        [f"Promotion of `{source}` to `{target}` failed (flow run {flow_run_id}).", ""]
        + [
            f"- **{n}**: {c['status']} "
            + (c.get("error") or (f"because {c['skipped_because']} failed" if c.get("skipped_because") else ""))
            for n, c in failed.items()
        ]
    )
    try:
        tracker = cast(GitHubIssueTracker, GitHubIssueTracker.load(block_name))
        issue = tracker.report(title, body)
    except Exception as exc:  # noqa: BLE001 - a broken tracker must not hide the failed promotion
        logger.error("could not open an issue through %s: %s", block_name, type(exc).__name__)
        return {"error": f"{type(exc).__name__}"}
    logger.info("%s issue %s: %s", "opened" if issue["created"] else "commented on", issue["number"], issue["url"])
    return issue


__all__ = ["promote"]
