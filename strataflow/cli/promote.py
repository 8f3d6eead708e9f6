"""`strata promote SOURCE TARGET`: the promotion flow, in this process or (``--no-wait``) in the background."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from strataflow.cli.common import (
    ApiWatch,
    add_common,
    emit_report,
    environment,
    flow_outcome,
    parallelism,
    prefect_session,
)
from strataflow.cli.view import RunView, approval_notices
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
    """Prints the gates and diff, and how to approve, as the in-process flow reaches them."""

    def __init__(self, id_file: str | None) -> None:
        self.id_file = id_file

    def __call__(self, component: str, status: str, details: dict[str, Any]) -> None:
        if component == "promotion" and status == "started" and self.id_file:
            Path(self.id_file).write_text(str(details.get("flow_run_id")))
        elif component == "promotion" and status == "gates":
            for gate in details["gates"]:
                print(gate.line(), file=sys.stderr)
            if details.get("diff") is not None:
                print(details["diff"].text(), file=sys.stderr)
        else:
            approval_notices(component, status, details)


def run(args: argparse.Namespace) -> int:
    return run_promotion(args, args.source, args.target, None)


def run_promotion(args: argparse.Namespace, source: str | None, target_name: str, rollback: str | None) -> int:
    """`strata promote` and `strata rollback`: the promotion flow in this process (or in the background)."""
    platform, cloud = environment(args, target_name)
    target = platform.environment(target_name)
    if source is not None:
        platform.environment(source)
    max_parallel = parallelism(args)
    if getattr(args, "auto_approve", False) and target.approval.required:
        raise UsageError(f"{target_name} requires approval: --auto-approve is only for environments that do not")
    if args.no_wait:
        return _in_background(args)
    prefect_session(args.verbose)
    from flows.promote import promote
    from strataflow import cancel, events
    from strataflow import graph as graphs

    graph, selected = graphs.select_components(platform, target_name, cloud, args.select)
    unsubscribe = events.subscribe(_PromotionView(os.environ.get("STRATA_PROMOTION_ID_FILE")))
    view = RunView(graph.subgraph(selected).order(), live=False)
    try:
        # Ctrl-C or SIGTERM while it deploys cancels the deployment (strataflow/cancel.py); before that, it interrupts
        with cancel.signals() as token, view, ApiWatch(args, target_name, cloud, view):
            state = promote(
                source=source,
                target=target_name,
                select=args.select,
                auto_approve=getattr(args, "auto_approve", False) or None,
                config_dir=str(Path(args.config).resolve()),
                cloud=cloud,
                sandbox=args.sandbox,
                actor=args.actor,
                override_freeze=getattr(args, "override_freeze", None),
                max_parallel=max_parallel,
                rollback=rollback,
                return_state=True,
            )
    finally:
        unsubscribe()
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, Exception) and "never resumed" in str(outcome):
        # the server failed the paused run at the approval timeout before the flow could say so
        raise ApprovalTimeout(f"nobody approved the change to {target_name} in time")
    promotion: dict[str, Any] = outcome.get("promotion", {}) if isinstance(outcome, dict) else {}
    data, code = flow_outcome(state)
    data.pop("promotion", None)
    emit_report(args, data)
    out = sys.stderr if args.json else sys.stdout
    approval = promotion.get("approval") or {}
    if approval.get("approver"):
        verified = "verified" if approval.get("verified") else "not verified"
        comment = f": {approval['comment']}" if approval.get("comment") else ""
        print(f"approved by {approval['approver']} ({verified}){comment}", file=out)
    if (promotion.get("issue") or {}).get("url"):
        print(f"issue: {promotion['issue']['url']}", file=out)
    if token.cancelled():
        print(f"cancelled: {token.reason}; what was running stopped and is recorded cancelled", file=sys.stderr)
        return token.exit_code
    return code


def _in_background(args: argparse.Namespace) -> int:
    """Start the same command (without --no-wait) detached; return once its flow run exists."""
    from strataflow import server, state

    server.ensure_api()
    argv = [a for a in sys.argv[1:] if a != "--no-wait"]
    job = server.spawn_detached("promotion", [sys.executable, "-m", "strataflow", *argv])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if job.id_file.exists() and job.id_file.read_text().strip():
            flow_run_id = job.id_file.read_text().strip()
            print(f"running as flow run {flow_run_id} (log: {job.log})")
            print(f"approve with: strata approve {flow_run_id} --as NAME")
            url = state.flow_run_url(flow_run_id)
            if url:
                print(f"or in the UI: {url}")
            return 0
        code = job.process.poll()
        if code is not None:
            sys.stderr.write(job.log.read_text(errors="replace"))
            return code
        time.sleep(0.2)
    raise StrataError(f"the run did not start within 120 s; see {job.log}")
