"""The promotion flow: gates, diff, approval, deployment, report, issue on failure.

Promotes what runs in ``source`` to ``target`` (``target.promote_from == source``): the
target gets exactly the templates, versions and shared parameters the source verified,
with its own per-environment values.
"""

from __future__ import annotations

from typing import Any, Literal, cast

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.client.schemas.objects import State
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run as current_flow_run
from prefect.states import Completed, Failed
from pydantic import Field

from blocks.issues import GitHubIssueTracker
from flows.orchestrate import orchestrate
from strataflow import events, gates, state
from strataflow import graph as graphs
from strataflow.actor import resolve_actor
from strataflow.diff import PromotionDiff, component_changes, environment_diff
from strataflow.errors import ApprovalRejected, ApprovalTimeout, GateRefused, UsageError
from strataflow.load import load_platform
from strataflow.records import RunRecord, now

APPROVAL_POLL_SECONDS = 2


class Approval(RunInput):
    """A decision on a paused promotion (`strata approve|reject`, or the Prefect UI's form)."""

    decision: Literal["approve", "reject"] = Field(description="approve or reject the promotion")
    approver: str = Field(description="who decides: must be one of the target's approvers, not the requester")
    comment: str = Field(default="", description="why (recorded in the history)")


def _run_name() -> str:
    params = current_flow_run.parameters
    return f"promote {params.get('source')} to {params.get('target')}"


@flow(name="promote", flow_run_name=_run_name, persist_result=False, validate_parameters=True)
def promote(
    source: str,
    target: str,
    select: str | None = None,
    auto_approve: bool | None = None,
    config_dir: str = "config",
    cloud: str | None = None,
    sandbox: bool = False,
    actor: str | None = None,
    override_freeze: str | None = None,
    max_parallel: int = 8,
) -> State:
    """Promote ``source`` to ``target``: gates, diff, approval, then the orchestrator as a subflow."""
    logger = get_run_logger()
    requester = resolve_actor(actor)
    platform = load_platform(config_dir)
    src, tgt = platform.environment(source), platform.environment(target)
    cloud = platform.cloud_for(tgt, cloud)
    context = FlowRunContext.get()
    flow_run_id = str(context.flow_run.id) if context and context.flow_run else None
    state.tag_flow_run(flow_run_id, ["strata", "promotion", f"env:{target}", f"cloud:{cloud}"])
    events.emit("promotion", "started", flow_run_id=flow_run_id)
    if auto_approve and tgt.approval.required:
        raise UsageError(f"{target} requires approval: --auto-approve is only for environments that do not")
    graph, selected = graphs.select_components(platform, target, cloud, select)
    names = [n for n in graph.order() if n in selected]
    src_records = state.latest_components(source, cloud, names)
    tgt_records = state.latest_components(target, cloud, graph.nodes)
    record = RunRecord(
        kind="promote",
        env=target,
        cloud=cloud,
        action="promote",
        status="running",
        flow_run_id=flow_run_id,
        actor=requester,
        started_at=now(),
        select=select,
        planned=names,
        detail={"source": source, "requester": requester, "approvers": tgt.approval.approvers, "sandbox": sandbox},
    )

    checks = [
        gates.promote_from(src, tgt),
        *gates.source_verified(platform, src, cloud, names, src_records),
        gates.not_running(source, state.lock_holder_if_held(source, cloud)),
        gates.not_running(target, state.lock_holder_if_held(target, cloud)),
        gates.no_drift(source, src_records, names),
        gates.not_frozen(tgt, now(), override_freeze, requester),
    ]
    diff = PromotionDiff(
        components=component_changes(platform, tgt, cloud, names, tgt_records),
        environment=environment_diff(src, tgt),
    )
    for gate in checks:
        (logger.info if gate.passed else logger.error)(gate.line())
    logger.info("diff:\n%s", diff.text())
    record.detail.update(
        gates=[g.model_dump() for g in checks], diff=diff.model_dump(), override_freeze=override_freeze
    )
    events.emit("promotion", "gates", gates=checks, diff=diff)
    refused = [g for g in checks if not g.passed]
    if refused:
        _finish(record, "refused", diff, checks, None, None)
        first = refused[0]
        raise GateRefused(
            f"gate {first.name} refused" + (f" ({first.component})" if first.component else "") + f": {first.reason}"
        )

    approval = _approve(
        tgt.approval.required and not auto_approve,
        tgt.approval.approvers,
        tgt.approval.timeout,
        requester,
        record,
        flow_run_id,
    )
    if approval and approval["decision"] != "approve":
        _finish(record, "rejected", diff, checks, approval, None)
        raise ApprovalRejected(
            f"promotion of {source} to {target} rejected by {approval['approver']}: {approval.get('comment') or 'no comment'}"
        )

    run_state = orchestrate(
        env=target,
        cloud=cloud,
        select=",".join(names),
        action="apply",
        max_parallel=max_parallel,
        config_dir=config_dir,
        sandbox=sandbox,
        actor=requester,
        return_state=True,
    )
    report = cast(Any, run_state).result(raise_on_failure=False)
    if not isinstance(report, dict):
        raise (
            report
            if isinstance(report, BaseException)
            else RuntimeError(f"deployment ended without a report: {run_state.message}")
        )
    status = "succeeded" if report.get("status") == "succeeded" else "failed"
    issue = (
        None if status == "succeeded" else _open_issue(tgt.issue_tracker, source, target, cloud, report, flow_run_id)
    )
    record.components = {n: c["status"] for n, c in report["components"].items()}
    _finish(record, status, diff, checks, approval, report, issue)
    payload = {"promotion": {"source": source, "target": target, "approval": approval, "issue": issue}, **report}
    if status != "succeeded":
        return Failed(
            message=f"promotion of {source} to {target} failed: {', '.join(n for n, c in report['components'].items() if c['status'] == 'failed')}",
            data=payload,
        )
    return Completed(message=f"promoted {source} to {target}", data=payload)


def _approve(
    required: bool, approvers: list[str], timeout: float, requester: str, record: RunRecord, flow_run_id: str | None
) -> dict[str, Any] | None:
    """Wait for a valid decision; invalid ones are recorded and the run stays paused for the next."""
    logger = get_run_logger()
    if not required:
        record.detail["approval"] = {"decision": "auto", "approver": None}
        return None
    record.status = "awaiting approval"
    state.write_run(record)
    deadline = now().timestamp() + timeout
    while True:
        remaining = int(deadline - now().timestamp())
        if remaining <= 0:
            _finish(record, "timed out", None, None, {"decision": "timeout"}, None)
            raise ApprovalTimeout(
                f"nobody approved the promotion of {record.detail['source']} to {record.env} within {timeout:g}s"
            )
        command = f"strata approve {flow_run_id} --as NAME"
        logger.info("waiting for approval by one of %s: %s", ", ".join(approvers), command)
        events.emit("promotion", "awaiting approval", flow_run_id=flow_run_id, approvers=approvers, command=command)
        try:
            decision = pause_flow_run(wait_for_input=Approval, timeout=remaining, poll_interval=APPROVAL_POLL_SECONDS)
        except FlowPauseTimeout:
            continue
        answer = {
            "decision": decision.decision,
            "approver": decision.approver,
            "comment": decision.comment,
            "at": now().isoformat(),
        }
        refusal = gates.refusal_reason(answer["approver"], approvers, requester)
        if refusal is None:
            record.detail["approval"] = answer
            return answer
        logger.warning("ignored %s by %s: %s", answer["decision"], answer["approver"], refusal)
        state.write_run(
            RunRecord(
                kind="approval",
                env=record.env,
                cloud=record.cloud,
                action=answer["decision"],
                status="refused",
                flow_run_id=None,
                actor=answer["approver"],
                started_at=now(),
                finished_at=now(),
                detail={"promotion": flow_run_id, "reason": refusal, "comment": answer["comment"]},
            )
        )


def _finish(
    record: RunRecord,
    status: str,
    diff: PromotionDiff | None,
    checks: list[gates.Gate] | None,
    approval: dict[str, Any] | None,
    report: dict[str, Any] | None,
    issue: dict[str, Any] | None = None,
) -> None:
    record.status = status
    record.finished_at = now()
    if approval is not None:
        record.detail["approval"] = approval
    if issue is not None:
        record.detail["issue"] = issue
    state.write_run(record)
    create_markdown_artifact(
        _markdown(record, diff, checks, report),
        key=f"strata-promotion-{record.detail['source']}-{record.env}".lower(),
        description=f"promote {record.detail['source']} to {record.env}: {status}",
    )


def _markdown(
    record: RunRecord, diff: PromotionDiff | None, checks: list[gates.Gate] | None, report: dict[str, Any] | None
) -> str:
    source = record.detail["source"]
    parts = [
        f"# Promote {source} → {record.env} ({record.cloud}): {record.status}",
        f"Requested by **{record.actor}**.",
    ]
    if checks:
        parts.append(
            "## Gates\n" + "\n".join(f"- {'✅' if g.passed else '❌'} **{g.name}**: {g.reason}" for g in checks)
        )
    if diff:
        parts.append("## Changes\n" + diff.markdown())
    approval = record.detail.get("approval")
    if approval:
        who = approval.get("approver") or "automatic (no approval required)"
        parts.append(
            f"## Approval\n{approval.get('decision')} by {who}"
            + (f": {approval['comment']}" if approval.get("comment") else "")
        )
    if report:
        rows = [
            f"| {n} | {c['status']} | {c.get('error') or c.get('skipped_because') or ''} |"
            for n, c in report["components"].items()
        ]
        parts.append("## Deployment\n| component | status | note |\n|---|---|---|\n" + "\n".join(rows))
    steps = {
        "succeeded": f"`strata status {record.env}`; promote onward when {record.env} is verified.",
        "failed": f"fix the failed components, then `strata apply {record.env} --resume` or promote again.",
        "refused": f"fix what the gates name (usually `strata apply {source}`), then promote again.",
    }
    if record.status in steps:
        parts.append("## Next steps\n" + steps[record.status])
    issue = record.detail.get("issue")
    if issue:
        parts.append(f"Issue: {issue.get('url') or issue.get('number')}")
    return "\n\n".join(parts)


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
            f"- **{n}**: {c['status']} {c.get('error') or ('because ' + c['skipped_because'] + ' failed' if c.get('skipped_because') else '')}"
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
