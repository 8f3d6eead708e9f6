"""`strata plan|apply|destroy ENV`: the orchestrator flow, run in this process with a live view."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from strataflow.cli.common import add_common, emit_report, flow_outcome, parallelism, prefect_session, resolve_target


def add(commands: Any) -> None:
    for action in ("plan", "apply", "destroy"):
        p = commands.add_parser(action, help=f"{action} an environment")
        p.add_argument("env")
        add_common(p, run=True)
        p.add_argument("--force", action="store_true", help="deploy components even when unchanged")
        p.add_argument(
            "--wait-lock",
            type=float,
            nargs="?",
            const=3600.0,
            default=0.0,
            metavar="SECONDS",
            help="wait for another run of the environment to finish instead of exiting 4",
        )
        if action == "apply":
            p.add_argument(
                "--resume",
                action="store_true",
                help="re-run the failed, skipped and cancelled components of the last run",
            )
        p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    _, cloud, graph, selected = resolve_target(args)
    max_parallel = parallelism(args)
    prefect_session(args.verbose)
    from flows.orchestrate import orchestrate
    from strataflow.cli.view import RunView

    resume = getattr(args, "resume", False)
    names = graph.subgraph(selected).order()
    with RunView(names if not resume else []) as view:
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
            return_state=True,
        )
    data, code = flow_outcome(state)
    emit_report(args, data, view.summaries if args.command == "plan" else None)
    return code
