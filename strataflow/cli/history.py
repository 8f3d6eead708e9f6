"""`strata history ENV`: the audit trail of an environment (or of one component in it)."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import Any

from strataflow.cli.common import add_common, environment, prefect_session
from strataflow.errors import UsageError
from strataflow.records import ComponentRecord, Decision, RunRecord


def add(commands: Any) -> None:
    p = commands.add_parser("history", help="the audit trail of an environment")
    p.add_argument("env")
    add_common(p, select=False)
    p.add_argument("--component", metavar="NAME")
    p.add_argument("--limit", type=int, default=20, metavar="N")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    platform, cloud = environment(args)
    if args.component and args.component not in platform.components:
        raise UsageError(f"unknown component '{args.component}'; known: {', '.join(sorted(platform.components))}")
    prefect_session()
    from strataflow import state

    if args.component:
        records = state.component_history(args.env, cloud, args.component, args.limit, args.sandbox)
        if args.json:
            print(json.dumps([r.model_dump(mode="json") for r in records], indent=2))
            return 0
        for record in records:
            print(component_line(record))
        return 0
    runs = state.run_history(args.env, cloud, args.limit, args.sandbox)
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in runs], indent=2))
        return 0
    for run_record in runs:
        print(run_line(run_record))
    return 0


def component_line(record: ComponentRecord) -> str:
    """when, who, action, status, flow run, and what put it there (release, how, approval) or why it failed."""
    line = f"{str(record.finished_at or '')[:19]}  {record.actor or '-':<12} {record.action:<8} {record.status:<10}"
    applied = record.applied
    if applied is not None and record.status == "succeeded" and record.action == "apply":
        line += f" {applied.version or '-'} release {(applied.release or '-')[:12]} by {applied.how}"
        if applied.approval is not None and applied.approval.decision != "auto":
            line += f", approved by {applied.approval.who()}"
    if record.error:
        line += f"  {record.error}"
    return line + f"  {record.flow_run_id or ''}"


def run_line(record: RunRecord) -> str:
    """One run of the history: when, who, what kind, action, status, what happened, and its flow run."""
    when = f"{str(record.started_at or '')[:19]}  {record.actor or '-':<12}"
    detail = record.detail
    if record.kind == "approval":
        why = detail.get("reason") or detail.get("comment") or ""
        verified = " (verified)" if detail.get("verified") else ""
        return f"{when} {'approval':<11} {record.action:<8} {record.status:<10}{verified} {why}  on {detail.get('promotion')}"
    counts = Counter(record.components.values())
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    extra = ""
    if record.kind == "promote":
        extra = f"  from {detail.get('source')}" if detail.get("source") else f"  to {detail.get('rollback')}"
        if record.status == "awaiting approval":
            extra += f"; awaiting approval by {', '.join(detail.get('approvers') or [])}"
        elif detail.get("approval"):
            decision = Decision.model_validate(detail["approval"])
            extra += f"; {decision.decision} by {decision.who()}" + (f" ({decision.comment})" if decision.comment else "")
    elif detail.get("how") == "break-glass":
        extra = f"  break-glass: {detail.get('break_glass')}"
    if record.release:
        extra += f"; release {record.release[:12]}"
    return f"{when} {record.kind:<11} {record.action:<8} {record.status:<10} {summary}{extra}  {record.flow_run_id or ''}"
