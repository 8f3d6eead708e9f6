"""Approvals' API calls: a paused promotion's request, decisions recorded, the run resumed with one."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from strataflow.errors import UsageError
from strataflow.records import RunRecord, now
from strataflow.state.runs import run_history, write_run


def promotion_request(env: str, cloud: str, flow_run_id: str) -> dict[str, Any] | None:
    """The requester and approvers a promotion waiting for approval recorded, or None."""
    for record in run_history(env, cloud, 50):
        if record.kind == "promote" and record.flow_run_id == flow_run_id:
            if record.status != "awaiting approval":
                return None
            return {"requester": record.detail.get("requester"), "approvers": list(record.detail.get("approvers", []))}
    return None


def record_decision(
    env: str, cloud: str, promotion: str, decision: str, actor: str, comment: str, refused: str | None
) -> None:
    """Record an approval decision made from the command line (refused ones included)."""
    write_run(
        RunRecord(
            kind="approval",
            env=env,
            cloud=cloud,
            action=decision,
            status="refused" if refused else "sent",
            actor=actor,
            started_at=now(),
            finished_at=now(),
            detail={"promotion": promotion, "reason": refused, "comment": comment},
        )
    )


def resume_promotion(flow_run_id: str, decision: dict[str, Any]) -> None:
    """Resume a paused promotion with a decision (validated by the server against its input schema)."""
    from prefect.exceptions import FlowPauseTimeout, NotPausedError
    from prefect.flow_runs import resume_flow_run

    try:
        resume_flow_run(UUID(flow_run_id), run_input=decision)
    except NotPausedError:
        raise UsageError(f"flow run {flow_run_id} is not paused") from None
    except FlowPauseTimeout:
        raise UsageError(f"flow run {flow_run_id} waited too long: its approval timed out") from None
    except RuntimeError as exc:
        raise UsageError(f"the server refused the decision: {exc}") from None


__all__ = ["promotion_request", "record_decision", "resume_promotion"]
