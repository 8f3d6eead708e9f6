"""Waiting for an approval inside a flow run: pause with a form, judge each answer, record every one.

The promotion (and rollback) flow and a break-glass apply wait here. Before the first pause
the caller has published what is approved as an artifact of the run; the pause gets a
description and a form whose fields say who may decide and carry the digest being approved.
Each answer is judged (``strataflow.approvals.judge``): a refused one is recorded in the
target's history and on this run (a log line and an artifact saying why it is still
paused), and the run pauses again for the next; a counted one ends the wait.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

import pydantic
from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput

from strataflow import events, state
from strataflow.approvals import Answer, ApprovalRequest, judge
from strataflow.config import Environment
from strataflow.notifications import ApprovalWaiting
from strataflow.records import Decision, now
from tasks.notify import notify

Choice = Literal["approve", "reject"]
POLL_SECONDS = 2
"""How often a paused run looks for an answer (Prefect's default, 10 s, makes approvals feel slow)."""


class ApprovalInput(RunInput):
    """A decision (the Prefect UI's resume form, or `strata approve|reject`)."""

    decision: Choice = "approve"
    approver: str = ""
    comment: str = ""
    digest: str = ""
    signature: str = ""


def input_for(request: ApprovalRequest) -> type[RunInput]:
    """The form of this request: its fields say who may decide and carry the digest being approved."""
    signature_help = (
        f"required: paste the output of `strata sign {request.flow_run_id} --as NAME` (signed with your SSH key)"
        if request.signed
        else "not needed: this environment's approvers have no SSH keys (your name is not verified)"
    )
    model: type[RunInput] = pydantic.create_model(
        "Approval",
        __base__=ApprovalInput,
        decision=(Choice, pydantic.Field(default="approve", description="approve or reject")),
        approver=(str, pydantic.Field(default="", description=f"who decides: {request.who_may_decide()}")),
        comment=(str, pydantic.Field(default="", description="why (recorded in the history)")),
        digest=(
            str,
            pydantic.Field(
                default=request.digest,
                description="the digest of what you approve, as shown in the report (pre-filled; do not change it)",
            ),
        ),
        signature=(str, pydantic.Field(default="", description=signature_help)),
    )
    model._description = description(request)  # Prefect's own way (RunInput.with_initial_data does this)
    return model


def description(request: ApprovalRequest) -> str:
    """The text at the top of the resume form."""
    what = f"Promote {request.source} → {request.env}" if request.kind == "promotion" else f"{request.kind} of {request.env}"
    lines = [
        f"### {what} ({request.cloud}{', sandbox' if request.sandbox else ''}): approval needed",
        f"Requested by **{request.requester}**. May decide: {request.who_may_decide()}.",
        f"Digest of what is approved: `{request.digest}`. The report artifact of this run shows it.",
    ]
    if request.break_glass:
        lines.append(f"Break-glass reason: {request.break_glass}")
    lines.append(f"From a terminal: `{request.command()}` (or `{request.command('reject')}`).")
    return "\n\n".join(lines)


def wait_for_decision(request: ApprovalRequest, environment: Environment) -> tuple[Decision, Answer | None]:
    """Pause until an answer counts or the deadline passes; every answer is recorded.

    The environment's notification blocks are told once that the change waits, with the
    approve command and the run's link.

    Returns the decision (approve, reject, or timeout) and the answer that made it (with its
    signature, which the deployment checks again); never raises for a refused answer.
    """
    logger = get_run_logger()
    state.write_request(request)
    notify(
        environment,
        ApprovalWaiting(
            flow_run_id=request.flow_run_id,
            kind=request.kind,
            source=request.source,
            target=request.env,
            cloud=request.cloud,
            sandbox=request.sandbox,
            approvers=request.names,
            requester=request.requester,
            url=request.url,
            deadline=request.deadline,
            command=request.command(),
        ),
    )
    form = input_for(request)
    url = f" ({request.url})" if request.url else ""
    while True:
        remaining = (request.deadline - now()).total_seconds()
        if remaining <= 0:
            state.write_request(request, "timed out")
            return Decision(decision="timeout", flow_run_id=request.flow_run_id, at=now()), None
        logger.info("waiting for approval by %s: %s%s", request.who_may_decide(), request.command(), url)
        events.emit("approval", "waiting", request=request)
        try:
            raw: Any = pause_flow_run(wait_for_input=form, timeout=int(remaining) + 1, poll_interval=POLL_SECONDS)
        except FlowPauseTimeout:
            continue
        answer = Answer.model_validate(raw.model_dump(include=set(Answer.model_fields)))
        verdict = judge(request, answer)
        state.record_decision(request, answer, verdict.reason, verdict.verified)
        if verdict.accepted:
            state.write_request(request, "approved" if answer.decision == "approve" else "rejected")
            decision = Decision(
                decision=answer.decision,
                approver=answer.approver,
                verified=verdict.verified,
                comment=answer.comment,
                digest=request.digest,
                at=now(),
                flow_run_id=request.flow_run_id,
            )
            return decision, answer
        logger.warning("still paused: %s by %s refused: %s", answer.decision, answer.approver, verdict.reason)
        create_markdown_artifact(
            f"### Still paused: a decision was refused\n\n**{answer.decision}** by **{answer.approver}** at "
            f"{now():%Y-%m-%d %H:%M:%S} UTC was refused because {verdict.reason}.\n\n"
            f"The run keeps waiting for {request.who_may_decide()}.",
            description=f"refused {answer.decision} by {answer.approver}",
        )
        events.emit("approval", "refused", request=request, answer=answer, reason=verdict.reason)


def deadline_after(seconds: float) -> Any:
    return now() + timedelta(seconds=seconds)


__all__ = ["ApprovalInput", "deadline_after", "description", "input_for", "wait_for_decision"]
