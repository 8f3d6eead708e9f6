"""`strata`: the command line (DESIGN §3).

Thin: it parses, validates the config without Prefect, and for the commands that run or
read runs, points this process at a Prefect API (``server.ensure_api``) and imports Prefect
only then. Every StrataError becomes its lines on stderr and its exit code; nothing
prints a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from strataflow import graph as graphs
from strataflow import report as reports
from strataflow.config import Platform, load_platform
from strataflow.errors import StrataError, UsageError


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


def _common(parser: argparse.ArgumentParser, *, run: bool = False, select: bool = True) -> None:
    parser.add_argument("--config", default="config", metavar="DIR", help="the config directory (default ./config)")
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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="strata", description="Deploy a platform's components into environments, in dependency order."
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = commands.add_parser("validate", help="check the configuration")
    p.add_argument("--config", default="config", metavar="DIR")
    p.add_argument("--json", action="store_true")

    p = commands.add_parser("graph", help="show an environment's component graph")
    p.add_argument("env")
    _common(p)
    p.add_argument("--format", choices=["text", "json", "mermaid"], default="text")

    for action in ("plan", "apply", "destroy"):
        p = commands.add_parser(action, help=f"{action} an environment")
        p.add_argument("env")
        _common(p, run=True)
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

    p = commands.add_parser("status", help="what is deployed in an environment")
    p.add_argument("env")
    _common(p, select=False)

    p = commands.add_parser("history", help="the audit trail of an environment")
    p.add_argument("env")
    _common(p, select=False)
    p.add_argument("--component", metavar="NAME")
    p.add_argument("--limit", type=int, default=20, metavar="N")

    p = commands.add_parser("unlock", help="drop an environment's lock held by a dead run")
    p.add_argument("env")
    _common(p, select=False)
    p.add_argument("--force", action="store_true", required=True)
    p.add_argument("--as", dest="actor", metavar="NAME")

    p = commands.add_parser("server", help="the local Prefect server and sandbox")
    p.add_argument("op", choices=["start", "stop", "status"])
    p.add_argument("--json", action="store_true")
    p.add_argument("--config", default="config", metavar="DIR", help="accepted by every command; unused here")

    p = commands.add_parser("blocks", help="register strataflow's Prefect blocks")
    p.add_argument("op", choices=["register"])
    p.add_argument("--config", default="config", metavar="DIR", help="accepted by every command; unused here")

    from strataflow import cli_promote

    cli_promote.add_commands(commands, _common)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = COMMANDS.get(args.command) or _promote_handler(args.command)
    try:
        code = handler(args)
    except StrataError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:  # `strata graph dev | head`: the reader left; nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    except Exception as exc:
        print(f"error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        if os.environ.get("STRATA_DEBUG"):
            raise
        code = 1
    _drain_prefect()
    raise SystemExit(code)


def _drain_prefect() -> None:
    """Send Prefect's queued logs and events before exiting, quietly (it would print progress lines)."""
    if "prefect" not in sys.modules:
        return
    import contextlib
    import io

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogHandler

    with contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(Exception):
        APILogHandler().flush()
        EventsWorker.drain_all(timeout=5)


def _promote_handler(command: str) -> Callable[[argparse.Namespace], int]:
    from strataflow import cli_promote

    return cli_promote.HANDLERS[command]


# --- commands that never import Prefect -----------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    platform = load_platform(args.config)
    summary: dict[str, Any] = {
        "valid": True,
        "components": len(platform.components),
        "environments": sorted(platform.environments),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"ok: {summary['components']} components, environments: {', '.join(summary['environments']) or 'none'}")
    return 0


def resolve_target(args: argparse.Namespace) -> tuple[Platform, str, graphs.Graph, set[str]]:
    """Load the config, pick the cloud, build the graph and the selection (all pure)."""
    platform = load_platform(args.config)
    env = platform.environment(args.env)
    cloud = platform.cloud_for(env, args.cloud)
    graph, selected = graphs.select_components(platform, args.env, cloud, getattr(args, "select", None))
    return platform, cloud, graph, selected


def cmd_graph(args: argparse.Namespace) -> int:
    _, cloud, graph, selected = resolve_target(args)
    sub = graph.subgraph(selected)
    fmt = "json" if args.json else args.format
    if fmt == "json":
        phases = sub.phases()
        print(
            json.dumps(
                {
                    "env": args.env,
                    "cloud": cloud,
                    "components": {
                        n: {"depends_on": sorted(sub.upstream[n]), "phase": i} for i, p in enumerate(phases) for n in p
                    },
                    "order": sub.order(),
                    "phases": phases,
                    "edges": [[dep, n] for n in sub.order() for dep in sorted(sub.upstream[n])],
                }
            )
        )
    elif fmt == "mermaid":
        print(reports.mermaid(sub))
    else:
        print(f"{args.env} ({cloud}): {len(sub)} components")
        for i, phase in enumerate(sub.phases()):
            print(f"phase {i}:")
            for name in phase:
                deps = sorted(sub.upstream[name])
                print(f"  {name}" + (f"  <- {', '.join(deps)}" if deps else ""))
    return 0


# --- commands that run or read flows ----------------------------------------------------------------


def prefect_session(verbose: bool = False) -> None:
    """Point this process at the Prefect API and keep Prefect's console lines out of the view."""
    # Prefect's console lines (with tracebacks) would drown the progress view; the run's
    # logs still go to the API. --verbose shows them.
    os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "INFO" if verbose else "CRITICAL"
    from strataflow import server

    server.ensure_api()


def flow_outcome(state: Any) -> tuple[dict[str, Any] | None, int]:
    """The report a finished flow run returned and the exit code it means; raises its StrataError."""
    data = state.result(raise_on_failure=False)
    if isinstance(data, StrataError):
        raise data
    if isinstance(data, BaseException):
        raise StrataError(f"the flow run failed: {type(data).__name__}: {data}")
    if not isinstance(data, dict):
        raise StrataError(f"the flow run ended {state.type.value} without a report: {state.message}")
    return data, 0 if data.get("status") == "succeeded" else 1


def emit_report(args: argparse.Namespace, data: dict[str, Any], plans: dict[str, list[str]] | None = None) -> None:
    if getattr(args, "report", None):
        Path(args.report).write_text(json.dumps(data, indent=2) + "\n")
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(reports.text(reports.RunReport.model_validate(data), plans))


def cmd_run(args: argparse.Namespace) -> int:
    _, cloud, graph, selected = resolve_target(args)
    if args.max_parallel < 1:
        raise UsageError("--max-parallel must be at least 1")
    prefect_session(args.verbose)
    from flows.orchestrate import orchestrate
    from strataflow.live import ProgressView

    names = graph.subgraph(selected).order()
    with ProgressView(names if not getattr(args, "resume", False) else []) as view:
        state = orchestrate(
            env=args.env,
            cloud=cloud,
            select=args.select,
            action=args.command,
            max_parallel=1 if args.sequential else args.max_parallel,
            resume=getattr(args, "resume", False),
            config_dir=str(Path(args.config).resolve()),
            force=args.force,
            sandbox=args.sandbox,
            actor=args.actor,
            wait_lock=args.wait_lock,
            return_state=True,
        )
    data, code = flow_outcome(state)
    assert data is not None
    emit_report(args, data, view.summaries if args.command == "plan" else None)
    return code


def cmd_status(args: argparse.Namespace) -> int:
    platform = load_platform(args.config)
    cloud = platform.cloud_for(platform.environment(args.env), args.cloud)
    prefect_session()
    from strataflow import status

    doc = status.environment_status(platform, args.env, cloud)
    print(json.dumps(doc, indent=2) if args.json else status.render(doc))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    platform = load_platform(args.config)
    cloud = platform.cloud_for(platform.environment(args.env), args.cloud)
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


def cmd_unlock(args: argparse.Namespace) -> int:
    platform = load_platform(args.config)
    cloud = platform.cloud_for(platform.environment(args.env), args.cloud)
    prefect_session()
    from strataflow import state
    from strataflow.actor import resolve_actor

    existed = state.force_unlock(args.env, cloud, resolve_actor(args.actor))
    print(f"{args.env} ({cloud}): " + ("lock removed" if existed else "was not locked"))
    return 0


def cmd_server(args: argparse.Namespace) -> int:
    from strataflow import server

    if args.op == "start":
        os.environ.pop("PREFECT_API_URL", None)
        server.ensure_api(announce=False)
        info = server.local_server()
        print(f"local Prefect server: {info['url'] if info else 'not running'}")
    elif args.op == "stop":
        stopped = server.stop()
        print("stopped: " + (", ".join(stopped) or "nothing was running"))
    else:
        found = server.status()
        if args.json:
            print(json.dumps(found, indent=2))
        else:
            srv = found["server"]
            print(f"home: {found['home']}")
            print(f"server: {srv['url'] if srv else 'not running'}")
            for cloud in ("aws", "azure"):
                box = found[f"sandbox-{cloud}"]
                print(f"sandbox {cloud}: {box['url'] if box else 'not running'}")
    return 0


def cmd_blocks(args: argparse.Namespace) -> int:
    del args
    prefect_session()
    import blocks

    for block in (blocks.AwsDeployCredentials, blocks.AzureDeployCredentials, blocks.GitHubIssueTracker):
        block.register_type_and_schema()
        print(f"registered block type {block.get_block_type_slug()}")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "validate": cmd_validate,
    "graph": cmd_graph,
    "plan": cmd_run,
    "apply": cmd_run,
    "destroy": cmd_run,
    "status": cmd_status,
    "history": cmd_history,
    "unlock": cmd_unlock,
    "server": cmd_server,
    "blocks": cmd_blocks,
}
