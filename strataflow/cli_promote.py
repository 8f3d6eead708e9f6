"""`strata promote`, `approve`, `reject` and `drift`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from strataflow.config import load_platform
from strataflow.errors import ApprovalTimeout, StrataError, UsageError

APPROVE_WAIT_SECONDS = 20.0


def add_commands(commands: Any, common: Callable[..., None]) -> None:
    p = commands.add_parser("promote", help="promote what runs in SOURCE to TARGET")
    p.add_argument("source")
    p.add_argument("target")
    common(p, run=True)
    p.add_argument("--auto-approve", action="store_true", help="only for targets that do not require approval")
    p.add_argument("--no-wait", action="store_true", help="start the promotion and return with its flow run id")
    p.add_argument("--override-freeze", metavar="REASON", help="promote inside a freeze window (approvers only)")

    for decision in ("approve", "reject"):
        p = commands.add_parser(decision, help=f"{decision} a promotion waiting for approval")
        p.add_argument("flow_run_id", metavar="FLOW_RUN_ID")
        p.add_argument("--as", dest="actor", required=True, metavar="NAME")
        p.add_argument("--comment", default="", metavar="TEXT")
        p.add_argument("--json", action="store_true")
        p.add_argument(
            "--config", default="config", metavar="DIR", help="accepted for symmetry; approvals need no config"
        )

    p = commands.add_parser("drift", help="check what is deployed against what was applied")
    p.add_argument("env")
    common(p, run=True)


class _PromotionView:
    """Prints the gates and diff, and the approval command, as the in-process flow reaches them."""

    def __init__(self, id_file: str | None) -> None:
        self.id_file = id_file

    def __call__(self, component: str, status: str, details: dict[str, Any]) -> None:
        if component != "promotion":
            return
        if status == "started" and self.id_file:
            Path(self.id_file).write_text(str(details.get("flow_run_id")))
        if status == "gates":
            for gate in details["gates"]:
                print(gate.line(), file=sys.stderr)
            print(details["diff"].text(), file=sys.stderr)
        elif status == "awaiting approval":
            approvers = ", ".join(details["approvers"])
            print(f"waiting for approval by one of {approvers} (flow run {details['flow_run_id']}):", file=sys.stderr)
            print(f"  {details['command']}", file=sys.stderr, flush=True)


def cmd_promote(args: argparse.Namespace) -> int:
    from strataflow import cli

    platform = load_platform(args.config)
    target = platform.environment(args.target)
    platform.environment(args.source)
    cloud = platform.cloud_for(target, args.cloud)
    if args.auto_approve and target.approval.required:
        raise UsageError(f"{args.target} requires approval: --auto-approve is only for environments that do not")
    if args.no_wait:
        return _promote_in_background(args)
    cli.prefect_session(args.verbose)
    from flows.promote import promote
    from strataflow import graph as graphs
    from strataflow import progress
    from strataflow.live import ProgressView

    graph, selected = graphs.select_components(platform, args.target, cloud, args.select)
    unsubscribe = progress.subscribe(_PromotionView(os.environ.get("STRATA_PROMOTION_ID_FILE")))
    view = ProgressView(graph.subgraph(selected).order(), live=False)
    try:
        with view:
            state = promote(
                source=args.source,
                target=args.target,
                select=args.select,
                auto_approve=args.auto_approve or None,
                config_dir=str(Path(args.config).resolve()),
                cloud=cloud,
                sandbox=args.sandbox,
                actor=args.actor,
                override_freeze=args.override_freeze,
                max_parallel=1 if args.sequential else args.max_parallel,
                return_state=True,
            )
    finally:
        unsubscribe()
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, Exception) and "never resumed" in str(outcome):
        # the server failed the paused run at the approval timeout before the flow could say so
        raise ApprovalTimeout(f"nobody approved the promotion of {args.source} to {args.target} in time")
    data, code = cli.flow_outcome(state)
    assert data is not None
    promotion = data.pop("promotion", {})
    cli.emit_report(args, data)
    out = sys.stderr if args.json else sys.stdout
    approval = promotion.get("approval") or {}
    if approval.get("approver"):
        print(
            f"approved by {approval['approver']}" + (f": {approval['comment']}" if approval.get("comment") else ""),
            file=out,
        )
    if (promotion.get("issue") or {}).get("url"):
        print(f"issue: {promotion['issue']['url']}", file=out)
    return code


def _promote_in_background(args: argparse.Namespace) -> int:
    """Start `strata promote` (without --no-wait) detached; return once its flow run exists."""
    from strataflow import server

    server.ensure_api()
    argv = [a for a in sys.argv[1:] if a != "--no-wait"]
    job = server.spawn_detached("promotion", [sys.executable, "-m", "strataflow", *argv])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if job.id_file.exists() and job.id_file.read_text().strip():
            flow_run_id = job.id_file.read_text().strip()
            print(f"promotion running as flow run {flow_run_id} (log: {job.log})")
            print(f"approve with: strata approve {flow_run_id} --as NAME")
            return 0
        code = job.process.poll()
        if code is not None:
            sys.stderr.write(job.log.read_text(errors="replace"))
            return code
        time.sleep(0.2)
    raise StrataError(f"the promotion did not start within 120 s; see {job.log}")


def cmd_decide(args: argparse.Namespace) -> int:
    """Resume a paused promotion with a decision, after the same checks the flow makes."""
    from strataflow import cli

    try:
        flow_run_id = str(UUID(args.flow_run_id))
    except ValueError:
        raise UsageError(f"'{args.flow_run_id}' is not a flow run id") from None
    cli.prefect_session()
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


def cmd_drift(args: argparse.Namespace) -> int:
    from strataflow import cli

    platform = load_platform(args.config)
    cloud = platform.cloud_for(platform.environment(args.env), args.cloud)
    cli.prefect_session(args.verbose)
    from flows.drift import drift

    state = drift(
        env=args.env,
        cloud=cloud,
        select=args.select,
        config_dir=str(Path(args.config).resolve()),
        sandbox=args.sandbox,
        actor=args.actor,
        max_parallel=args.max_parallel,
        return_state=True,
    )
    data = state.result(raise_on_failure=False)
    if isinstance(data, StrataError):
        raise data
    if not isinstance(data, dict):
        raise StrataError(f"the drift check failed: {data}")
    if args.report:
        Path(args.report).write_text(json.dumps(data, indent=2) + "\n")
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(f"drift {args.env} ({cloud}): " + (", ".join(data["drifted"]) or "none"))
        for name, result in data["components"].items():
            print(f"  {name:<20} {result['status']}")
            for line in result.get("resources", []):
                print(f"      {line}")
    return 0


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "promote": cmd_promote,
    "approve": cmd_decide,
    "reject": cmd_decide,
    "drift": cmd_drift,
}
