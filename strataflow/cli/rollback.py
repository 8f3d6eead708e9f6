"""`strata rollback ENV [--to RELEASE]`: redeploy a release ENV ran before, through the gates and approval of a promotion."""

from __future__ import annotations

import argparse
from typing import Any

from strataflow.cli.common import add_common
from strataflow.cli.promote import run_promotion


def add(commands: Any) -> None:
    p = commands.add_parser("rollback", help="redeploy the release an environment ran before (or a named one)")
    p.add_argument("env")
    add_common(p, run=True)
    p.add_argument("--to", metavar="RELEASE", default="previous", help="a release id (prefix) from `strata releases`")
    p.add_argument("--no-wait", action="store_true", help="start the rollback and return with its flow run id")
    p.add_argument("--override-freeze", metavar="REASON", help="roll back inside a freeze window (approvers only)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    return run_promotion(args, None, args.env, args.to)
