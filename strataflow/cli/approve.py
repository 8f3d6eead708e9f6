"""`strata approve|reject FLOW_RUN_ID --as NAME`: decide on a paused promotion, after the checks the flow makes."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any
from uuid import UUID

from strataflow.cli.common import add_config, prefect_session
from strataflow.errors import UsageError

APPROVE_WAIT_SECONDS = 20.0
"""How long `strata approve` waits to see the promotion leave its pause."""


def add(commands: Any) -> None:
    for decision in ("approve", "reject"):
        p = commands.add_parser(decision, help=f"{decision} a promotion waiting for approval")
        p.add_argument("flow_run_id", metavar="FLOW_RUN_ID")
        p.add_argument("--as", dest="actor", required=True, metavar="NAME")
        p.add_argument("--comment", default="", metavar="TEXT")
        p.add_argument("--json", action="store_true")
        add_config(p, "accepted for symmetry; approvals need no config")
        p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Resume a paused promotion with a decision, after the same checks the flow makes."""
    try:
        flow_run_id = str(UUID(args.flow_run_id))
    except ValueError:
        raise UsageError(f"'{args.flow_run_id}' is not a flow run id") from None
    prefect_session()
    from strataflow import gates, state

    decision = "approve" if args.command == "approve" else "reject"
    promotion = state.read_flow_run(flow_run_id)
    if promotion is None or promotion["flow"] != "promote":
        not_a_promotion = f"flow run {flow_run_id} is not a promotion"
        env = (promotion or {}).get("parameters", {}).get("env")
        if promotion is not None and isinstance(env, str):  # an apply or drift run: recorded in its environment
            state.record_decision(
                env, promotion["cloud"], flow_run_id, decision, args.actor, args.comment, refused=not_a_promotion
            )
        raise UsageError(not_a_promotion)
    params = promotion["parameters"]
    target, cloud = params["target"], promotion["cloud"]
    request = state.promotion_request(target, cloud, flow_run_id)

    def refuse(reason: str) -> int:
        state.record_decision(target, cloud, flow_run_id, decision, args.actor, args.comment, refused=reason)
        raise UsageError(f"{decision} refused: {reason}")

    if promotion["state"] != "PAUSED" or request is None:
        return refuse(f"flow run {flow_run_id} is not waiting for approval (it is {promotion['state_name']})")
    reason = gates.refusal_reason(args.actor, request["approvers"], request["requester"])
    if reason:
        return refuse(reason)
    state.resume_promotion(flow_run_id, {"decision": decision, "approver": args.actor, "comment": args.comment})
    deadline = time.monotonic() + APPROVE_WAIT_SECONDS
    current = promotion
    while time.monotonic() < deadline:
        current = state.read_flow_run(flow_run_id) or current
        if current["state"] != "PAUSED":
            break
        time.sleep(0.5)
    result = {"flow_run_id": flow_run_id, "decision": decision, "approver": args.actor, "state": current["state_name"]}
    print(
        json.dumps(result)
        if args.json
        else f"{decision}d promotion {flow_run_id} as {args.actor}; it is now {current['state_name']}"
    )
    return 0
