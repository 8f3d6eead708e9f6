"""`strata plan|apply|destroy ENV`: the orchestrator flow, run in this process with a live view.

Ctrl-C or SIGTERM during the run cancels it (``strataflow/cancel.py``): the command waits for
what runs to stop, prints the report (those components ``cancelled``) and exits 130 (143
after SIGTERM); a second signal exits at once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from strataflow import cancel, events
from strataflow.cli.common import (
    ApiWatch,
    add_common,
    add_wait_lock,
    emit_report,
    flow_outcome,
    parallelism,
    prefect_session,
    resolve_target,
)
from strataflow.cli.view import RunView, approval_notices
from strataflow.errors import UsageError


def add(commands: Any) -> None:
    for action in ("plan", "apply", "destroy"):
        p = commands.add_parser(action, help=f"{action} an environment")
        p.add_argument("env")
        add_common(p, run=True)
        p.add_argument("--force", action="store_true", help="deploy components even when unchanged")
        add_wait_lock(p)
        if action != "plan":
            p.add_argument(
                "--break-glass",
                metavar="REASON",
                help="change a protected environment from the working tree, after an approver approves it",
            )
        if action == "destroy":
            p.add_argument(
                "--orphans",
                action="store_true",
                help="destroy what is still deployed but no longer in the config (`strata status` lists it)",
            )
        if action != "plan":
            p.add_argument(
                "--resume",
                action="store_true",
                help=f"re-run what the last {action} did not finish (failed, skipped, cancelled, never recorded)",
            )
        p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    _, cloud, graph, selected = resolve_target(args)
    max_parallel = parallelism(args)
    prefect_session(args.verbose)
    from flows.orchestrate import orchestrate

    resume = getattr(args, "resume", False)
    names = graph.subgraph(selected).order()
    release = _orphans(args, cloud, graph.upstream) if getattr(args, "orphans", False) else None
    if release is not None:
        names = sorted(release)
    unsubscribe = events.subscribe(approval_notices)
    with cancel.signals() as token, RunView(names if not resume else []) as view, ApiWatch(args, args.env, cloud, view):
        state = orchestrate(
            env=args.env,
            cloud=cloud,
            select=args.select,
            action=args.command,
            max_parallel=max_parallel,
            resume=resume,
            config_dir=str(Path(args.config).resolve()),
            force=args.force,
            sandbox=args.sandbox,
            actor=args.actor,
            wait_lock=args.wait_lock,
            break_glass=getattr(args, "break_glass", None),
            release=release,
            return_state=True,
        )
    unsubscribe()
    data, code = flow_outcome(state)
    emit_report(args, data, view.summaries if args.command == "plan" else None)
    if token.cancelled():
        again = "" if args.command == "plan" else " --resume"
        print(
            f"cancelled: {token.reason}; what was running stopped and is recorded cancelled. "
            f"`strata {args.command} {args.env} --cloud {cloud}{again}` finishes the rest",
            file=sys.stderr,
        )
        return token.exit_code
    return code


def _orphans(args: argparse.Namespace, cloud: str, in_config: Any) -> dict[str, str]:
    """Component -> bundle of what is still deployed but no longer in the environment's config."""
    from strataflow import state

    if args.select:
        raise UsageError("--orphans destroys every orphan; it takes no --select")
    found = {
        name: record.applied.bundle
        for name, record in state.all_components(args.env, cloud, args.sandbox).items()
        if name not in in_config and record.applied is not None and record.state == "applied"
    }
    unknown = sorted(name for name, bundle in found.items() if not bundle)
    if unknown:
        raise UsageError(
            f"{', '.join(unknown)} were deployed before releases were recorded: their definition is not stored; "
            "destroy them by hand or put them back in the config and `strata destroy --select`"
        )
    if not found:
        raise UsageError(f"{args.env} ({cloud}) has no orphans: everything deployed is in the config")
    return {name: str(bundle) for name, bundle in found.items()}
