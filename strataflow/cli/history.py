"""`strata history ENV`: the audit trail of an environment (or of one component in it)."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import Any

from strataflow.cli.common import add_common, environment, prefect_session
from strataflow.errors import UsageError


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
        entries = [
            r.model_dump(mode="json") for r in state.component_history(args.env, cloud, args.component, args.limit)
        ]
        if args.json:
            print(json.dumps(entries, indent=2))
        for e in [] if args.json else entries:
            print(
                f"{(e['finished_at'] or '')[:19]}  {e['actor'] or '-':<12} {e['action']:<8} {e['status']:<10} {e['flow_run_id'] or ''}"
                + (f"  {e['error']}" if e["error"] else "")
            )
        return 0
    runs = [r.model_dump(mode="json") for r in state.run_history(args.env, cloud, args.limit)]
    if args.json:
        print(json.dumps(runs, indent=2))
        return 0
    for r in runs:
        if r["kind"] == "approval":
            why = r["detail"].get("reason") or r["detail"].get("comment") or ""
            print(
                f"{(r['started_at'] or '')[:19]}  {r['actor'] or '-':<12} {'approval':<11} {r['action']:<8} {r['status']:<10} {why}  promotion {r['detail'].get('promotion')}"
            )
            continue
        counts = Counter(r["components"].values())
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        extra = ""
        if r["kind"] == "promote":
            approval = r["detail"].get("approval") or {}
            extra = f"  from {r['detail'].get('source')}; approval: {approval.get('decision', 'auto')} by {approval.get('approver', '-')}"
            if approval.get("comment"):
                extra += f" ({approval['comment']})"
        print(
            f"{(r['started_at'] or '')[:19]}  {r['actor'] or '-':<12} {r['kind']:<11} {r['action']:<8} {r['status']:<10} {summary}{extra}  {r['flow_run_id'] or ''}"
        )
    return 0
