"""`strata`: the command line.

Thin: each command lives in the module its name suggests and adds its own parser; this
module assembles them (``COMMANDS``, the one table) and turns every StrataError into its
lines on stderr and its exit code, never a traceback. Commands that only read the config
(``validate``, ``graph``) never import Prefect; the others point this process at a Prefect
API (``common.prefect_session``) and import Prefect only then.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from collections.abc import Sequence

from strataflow.cli import (
    approve,
    blocks,
    cost,
    deployments,
    drift,
    env,
    graph,
    history,
    metrics,
    promote,
    releases,
    rollback,
    run,
    server,
    status,
    unlock,
    validate,
)
from strataflow.cli.common import Parser
from strataflow.errors import StrataError

COMMANDS = (
    validate,
    graph,
    env,
    deployments,
    run,
    status,
    history,
    cost,
    releases,
    promote,
    rollback,
    approve,
    drift,
    metrics,
    unlock,
    server,
    blocks,
)
"""Every command module; each adds its parsers (``add``) with the handler it runs."""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="strata", description="Deploy a platform's components into environments, in dependency order.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in COMMANDS:
        module.add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        code = args.handler(args)
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
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogHandler

    with contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(Exception):
        APILogHandler().flush()
        EventsWorker.drain_all(timeout=5)


__all__ = ["COMMANDS", "build_parser", "main"]
