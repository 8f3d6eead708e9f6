"""`strata promote SOURCE TARGET`: the promotion flow, in this process or (``--no-wait``) in the background."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from strataflow.cli.common import (
    add_common,
    emit_report,
    environment,
    flow_outcome,
    parallelism,
    prefect_session,
)
from strataflow.errors import ApprovalTimeout, StrataError, UsageError


def add(commands: Any) -> None:
    p = commands.add_parser("promote", help="promote what runs in SOURCE to TARGET")
    p.add_argument("source")
    p.add_argument("target")
    add_common(p, run=True)
    p.add_argument("--auto-approve", action="store_true", help="only for targets that do not require approval")
    p.add_argument("--no-wait", action="store_true", help="start the promotion and return with its flow run id")
    p.add_argument("--override-freeze", metavar="REASON", help="promote inside a freeze window (approvers only)")
    p.set_defaults(handler=run)


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


def run(args: argparse.Namespace) -> int:
    platform, cloud = environment(args, args.target)
    target = platform.environment(args.target)
    platform.environment(args.source)
    max_parallel = parallelism(args)
    if args.auto_approve and target.approval.required:
        raise UsageError(f"{args.target} requires approval: --auto-approve is only for environments that do not")
    if args.no_wait:
        return _promote_in_background(args)
    prefect_session(args.verbose)
    from flows.promote import promote
    from strataflow import events
    from strataflow import graph as graphs
    from strataflow.cli.view import RunView

    graph, selected = graphs.select_components(platform, args.target, cloud, args.select)
    unsubscribe = events.subscribe(_PromotionView(os.environ.get("STRATA_PROMOTION_ID_FILE")))
    view = RunView(graph.subgraph(selected).order(), live=False)
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
                max_parallel=max_parallel,
                return_state=True,
            )
    finally:
        unsubscribe()
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, Exception) and "never resumed" in str(outcome):
        # the server failed the paused run at the approval timeout before the flow could say so
        raise ApprovalTimeout(f"nobody approved the promotion of {args.source} to {args.target} in time")
    data, code = flow_outcome(state)
    promotion = data.pop("promotion", {})
    emit_report(args, data)
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
