"""What every command shares: the parser, the common options, the Prefect session, reports out.

A leaf of the command line: command modules import it, it imports none of them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from strataflow import graph as graphs
from strataflow import report as reports
from strataflow.config import Platform
from strataflow.errors import StrataError
from strataflow.load import load_platform


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


def add_config(parser: argparse.ArgumentParser, help_text: str = "the config directory (default ./config)") -> None:
    """``--config DIR``: accepted by every command."""
    parser.add_argument("--config", default="config", metavar="DIR", help=help_text)


def add_common(parser: argparse.ArgumentParser, *, run: bool = False, select: bool = True) -> None:
    """The options of the commands that work on an environment (DIR, cloud, JSON; and of runs)."""
    add_config(parser)
    parser.add_argument("--cloud", choices=["aws", "azure"], help="needed when the environment declares several clouds")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    if select:
        parser.add_argument(
            "--select", metavar="SPEC", help="components: NAME, +NAME (with upstream), NAME+ (with downstream)"
        )
    if run:
        parser.add_argument(
            "--max-parallel", type=int, default=8, metavar="N", help="components in flight at once (default 8)"
        )
        parser.add_argument("--sequential", action="store_true", help="one component at a time (--max-parallel 1)")
        parser.add_argument("--sandbox", action="store_true", help="deploy to an emulated cloud on this machine")
        parser.add_argument("--report", metavar="FILE", help="write the run report (JSON) to FILE")
        parser.add_argument(
            "--as", dest="actor", metavar="NAME", help="who acts (default: STRATA_ACTOR, CI actor, OS user)"
        )
        parser.add_argument("--verbose", "-v", action="store_true", help="show Prefect's own log lines")


def parallelism(args: argparse.Namespace) -> int:
    """The run's cap on components in flight, checked before anything starts."""
    return graphs.check_parallelism(1 if getattr(args, "sequential", False) else args.max_parallel)


def environment(args: argparse.Namespace, env: str | None = None) -> tuple[Platform, str]:
    """The loaded config and the cloud the command works on (pure: no Prefect)."""
    platform = load_platform(args.config)
    return platform, platform.cloud_for(platform.environment(env or args.env), args.cloud)


def resolve_target(args: argparse.Namespace) -> tuple[Platform, str, graphs.Graph, set[str]]:
    """The config, the cloud, the environment's graph and the selection (all pure)."""
    platform, cloud = environment(args)
    graph, selected = graphs.select_components(platform, args.env, cloud, getattr(args, "select", None))
    return platform, cloud, graph, selected


def prefect_session(verbose: bool = False) -> None:
    """Point this process at the Prefect API and keep Prefect's console lines out of the view."""
    # Prefect's console lines (with tracebacks) would drown the progress view; the run's
    # logs still go to the API. --verbose shows them.
    os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "INFO" if verbose else "CRITICAL"
    from strataflow import server

    server.ensure_api()


def flow_outcome(state: Any) -> tuple[dict[str, Any], int]:
    """The report a finished flow run returned and the exit code it means; raises its StrataError."""
    data = state.result(raise_on_failure=False)
    if isinstance(data, StrataError):
        raise data
    if isinstance(data, BaseException):
        raise StrataError(f"the flow run failed: {type(data).__name__}: {data}")
    if not isinstance(data, dict):
        raise StrataError(f"the flow run ended {state.type.value} without a report: {state.message}")
    return data, 0 if data.get("status") == "succeeded" else 1


def write_report(args: argparse.Namespace, data: dict[str, Any]) -> None:
    """``--report FILE``: the JSON document, written as is."""
    if getattr(args, "report", None):
        Path(args.report).write_text(json.dumps(data, indent=2) + "\n")


def emit_report(args: argparse.Namespace, data: dict[str, Any], plans: dict[str, list[str]] | None = None) -> None:
    """The run report: to ``--report FILE``, and printed (JSON with ``--json``, else as text)."""
    write_report(args, data)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(reports.text(reports.RunReport.model_validate(data), plans))


__all__ = [
    "Parser",
    "add_common",
    "add_config",
    "emit_report",
    "environment",
    "flow_outcome",
    "parallelism",
    "prefect_session",
    "resolve_target",
    "write_report",
]
