"""Approvals through the Prefect API: a waiting run's request, decisions recorded on it, the run resumed.

The request is an artifact keyed ``strata-approval-<flow run id>``, attached to the waiting
run: `strata approve` reads it to know the target, the approvers and the digest, and every
decision (counted or refused) is recorded in the target's history and shown on that run.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from strataflow.approvals import Answer, ApprovalRequest
from strataflow.errors import UsageError
from strataflow.records import RunRecord, now
from strataflow.state._api import api, connection, create_artifact, parse_records
from strataflow.state.runs import write_run

REQUEST_ARTIFACT = "strata-approval"


def request_key(flow_run_id: str) -> str:
    return f"strata-approval-{flow_run_id}".lower()


def write_request(request: ApprovalRequest, status: str = "waiting") -> None:
    """Record the request (or its end: ``status`` approved, rejected, timed out) on the waiting run."""
    description = (
        f"**{request.kind}** into `{request.env}` {status}: decided by {request.who_may_decide()}; "
        f"digest `{request.digest[:12]}`"
    )
    with api("record the approval request"):
        create_artifact(
            request_key(request.flow_run_id),
            REQUEST_ARTIFACT,
            {**request.model_dump(mode="json"), "status": status},
            description,
            request.flow_run_id,
        )


def read_request(flow_run_id: str) -> tuple[ApprovalRequest, str] | None:
    """The request a run recorded and its status (waiting, approved, ...), or None."""
    from prefect.client.schemas.filters import ArtifactCollectionFilter, ArtifactCollectionFilterKey

    with api(f"read the approval request of {flow_run_id}"), connection() as client:
        found = client.read_latest_artifacts(
            artifact_filter=ArtifactCollectionFilter(key=ArtifactCollectionFilterKey(any_=[request_key(flow_run_id)])),
            limit=1,
        )
    for artifact in found:
        for request in parse_records([artifact], ApprovalRequest):
            return request, str(artifact.data.get("status", "waiting"))
    return None


def record_decision(request: ApprovalRequest, answer: Answer, refused: str | None, verified: bool = False) -> None:
    """Record a decision in the target's history, on the waiting run (refused ones included)."""
    write_run(
        RunRecord(
            kind="approval",
            env=request.env,
            cloud=request.cloud,
            action=answer.decision,
            status="refused" if refused else "accepted",
            actor=answer.approver,
            started_at=now(),
            finished_at=now(),
            sandbox=request.sandbox,
            detail={
                "promotion": request.flow_run_id,
                "kind": request.kind,
                "reason": refused,
                "comment": answer.comment,
                "digest": answer.digest,
                "verified": verified,
            },
        ),
        attach_to=request.flow_run_id,
    )


def record_stray(flow_run_id: str, answer: Answer, reason: str) -> None:
    """Record a decision sent to a run that waits for none, in that run's environment's history (when it has one)."""
    from strataflow.state.flow_runs import read_flow_run

    run = read_flow_run(flow_run_id)
    env = (run or {}).get("parameters", {}).get("env") or (run or {}).get("parameters", {}).get("target")
    if run is None or not isinstance(env, str):
        return
    write_run(
        RunRecord(
            kind="approval",
            env=env,
            cloud=str(run["cloud"]),
            action=answer.decision,
            status="refused",
            actor=answer.approver,
            started_at=now(),
            finished_at=now(),
            sandbox=bool(run["parameters"].get("sandbox")),
            detail={"promotion": flow_run_id, "reason": reason, "comment": answer.comment},
        ),
        attach_to=flow_run_id,
    )


def resume(flow_run_id: str, answer: Answer) -> None:
    """Resume a paused run with a decision (validated by the server against the run's input schema)."""
    from prefect.exceptions import FlowPauseTimeout, NotPausedError
    from prefect.flow_runs import resume_flow_run

    try:
        resume_flow_run(UUID(flow_run_id), run_input=answer.model_dump())
    except NotPausedError:
        raise UsageError(f"flow run {flow_run_id} is not paused") from None
    except FlowPauseTimeout:
        raise UsageError(f"flow run {flow_run_id} waited too long: its approval timed out") from None
    except RuntimeError as exc:
        raise UsageError(f"the server refused the decision: {exc}") from None


def paused(flow_run_id: str) -> dict[str, Any] | None:
    """The run's state (``type``, ``name``), or None when there is no such run."""
    from prefect.exceptions import ObjectNotFound

    with api(f"read flow run {flow_run_id}"), connection() as client:
        try:
            run = client.read_flow_run(UUID(flow_run_id))
        except ObjectNotFound:
            return None
    return {
        "type": run.state.type.value if run.state else None,
        "name": run.state.name if run.state else "unknown",
    }


__all__ = [
    "REQUEST_ARTIFACT",
    "paused",
    "read_request",
    "record_decision",
    "record_stray",
    "request_key",
    "resume",
    "write_request",
]
