"""What every command shares: the parser, the common options, the Prefect session, reports out.

A leaf of the command line: command modules import it, it imports none of them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, NoReturn

from strataflow import graph as graphs
from strataflow import report as reports
from strataflow.config import Platform
from strataflow.errors import ApprovalRejected, ApprovalTimeout, GateRefused, LockLost, StrataError
from strataflow.load import load_platform

_ENDED: dict[str, type[StrataError]] = {
    "refused": GateRefused,
    "rejected": ApprovalRejected,
    "timed out": ApprovalTimeout,
}
"""Run outcomes that are not a deployment's: the error (and exit code) each means."""


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


def add_config(parser: argparse.ArgumentParser, help_text: str = "the config directory (default ./config)") -> None:
    """``--config DIR``: accepted by every command."""
    parser.add_argument("--config", default="config", metavar="DIR", help=help_text)


def add_wait_lock(parser: argparse.ArgumentParser) -> None:
    """``--wait-lock [SECONDS]``: wait for the environment's lock (an hour when no number is given)."""
    parser.add_argument(
        "--wait-lock",
        type=float,
        nargs="?",
        const=3600.0,
        default=0.0,
        metavar="SECONDS",
        help="wait for another run of the environment to finish instead of exiting 4",
    )


def add_common(parser: argparse.ArgumentParser, *, run: bool = False, select: bool = True) -> None:
    """The options of the commands that work on an environment (DIR, cloud, JSON; and of runs)."""
    add_config(parser)
    parser.add_argument("--cloud", choices=["aws", "azure"], help="needed when the environment declares several clouds")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--sandbox", action="store_true", help="the emulated clouds on this machine (their own state, never the cloud's)"
    )
    if select:
        parser.add_argument(
            "--select", metavar="SPEC", help="components: NAME, +NAME (with upstream), NAME+ (with downstream)"
        )
    if run:
        parser.add_argument(
            "--max-parallel", type=int, default=8, metavar="N", help="components in flight at once (default 8)"
        )
        parser.add_argument("--sequential", action="store_true", help="one component at a time (--max-parallel 1)")
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
    """The report a finished flow run returned and the exit code it means; raises its StrataError.

    A run refused by a gate or by protection raises GateRefused (exit 5); one rejected or not
    approved in time, ApprovalRejected or ApprovalTimeout (exit 3).
    """
    data = state.result(raise_on_failure=False)
    if isinstance(data, StrataError):
        raise data
    if isinstance(data, dict) and data.get("lock_lost"):
        return data, LockLost.exit_code
    if isinstance(data, dict) and data.get("status") in _ENDED:
        reason = str(data.get("reason") or (data.get("promotion") or {}).get("reason") or data["status"])
        raise _ENDED[data["status"]](reason)
    if isinstance(data, BaseException):
        raise StrataError(f"the flow run failed: {type(data).__name__}: {data}")
    if not isinstance(data, dict):
        raise StrataError(f"the flow run ended {state.type.value} without a report: {state.message}")
    return data, 0 if data.get("status") == "succeeded" else 1


API_TIMEOUT = float(os.environ.get("STRATA_API_TIMEOUT", "45"))
"""Seconds the Prefect API may stay unreachable during a run before `strata` gives up on it."""


class ApiWatch:
    """While a flow runs in this process, notice the Prefect API going away and end the command in bounded time.

    Prefect's client retries for minutes; a run whose API is gone can record nothing more.
    After ``API_TIMEOUT`` seconds without an answer from the API's health endpoint, the
    command writes what it knows of the report (to ``--report FILE``, else under
    ``$STRATA_HOME/reports/``), says which API and what to do, and exits 1.
    """

    def __init__(self, args: argparse.Namespace, env: str, cloud: str, view: Any) -> None:
        self.args, self.env, self.cloud, self.view = args, env, cloud, view
        self._stop = threading.Event()

    def __enter__(self) -> ApiWatch:
        threading.Thread(target=self._watch, name="strata-api-watch", daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()

    def _healthy(self, url: str) -> bool:
        try:
            with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=3) as response:  # noqa: S310 - the configured API
                return bool(response.status < 500)
        except (OSError, ValueError):
            return False

    def _watch(self) -> None:
        url = os.environ.get("PREFECT_API_URL", "")
        last_ok = time.monotonic()
        while not self._stop.wait(5):
            if self._healthy(url):
                last_ok = time.monotonic()
            elif time.monotonic() - last_ok > API_TIMEOUT and not self._stop.is_set():
                self._give_up(url, time.monotonic() - last_ok)

    def _give_up(self, url: str, silent: float) -> None:
        statuses = dict(getattr(self.view, "status", {}))
        components = {
            name: {"status": status}
            if status in ("succeeded", "unchanged", "planned", "failed", "skipped")
            else {"status": "cancelled", "error": f"unknown: the Prefect API went away while it was {status}"}
            for name, status in statuses.items()
        }
        command = getattr(self.args, "command", "apply")
        report = {"env": self.env, "cloud": self.cloud, "action": command, "status": "failed", "components": components}
        path = Path(self.args.report) if getattr(self.args, "report", None) else _reports_dir() / f"{self.env}-{int(time.time())}.json"
        with contextlib.suppress(OSError):
            path.write_text(json.dumps(report, indent=2) + "\n")
        print(
            f"error: the Prefect API at {url} has not answered for {silent:.0f}s, so this run can record nothing more; "
            f"what it knew is in {path}. Start the server (`strata server start`, or yours), then "
            f"`strata {command} {self.env} --resume --wait-lock 120`",
            file=sys.stderr,
            flush=True,
        )
        os._exit(1)


def _reports_dir() -> Path:
    from strataflow.paths import strata_home

    found = strata_home() / "reports"
    found.mkdir(exist_ok=True, mode=0o700)
    return found


def write_report(args: argparse.Namespace, data: dict[str, Any]) -> None:
    """``--report FILE``: the JSON document, written as is."""
    if getattr(args, "report", None):
        Path(args.report).write_text(json.dumps(data, indent=2) + "\n")


def emit_report(args: argparse.Namespace, data: dict[str, Any], plans: dict[str, list[str]] | None = None) -> None:
    """The run report: to ``--report FILE``, and printed (JSON with ``--json``, else as text)."""
    extra = {key: data.pop(key) for key in ("plans", "lock_lost", "cost") if key in data}  # not part of the run report
    write_report(args, data)
    if extra.get("lock_lost"):
        print(f"error: {extra['lock_lost']}", file=sys.stderr)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(reports.text(reports.RunReport.model_validate(data), plans))
        if extra.get("cost"):
            print("monthly cost:")
            print("\n".join(f"  {line}" for line in extra["cost"]))


__all__ = [
    "ApiWatch",
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
