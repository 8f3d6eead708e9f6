"""`strata unlock ENV --force`: drop an environment's lock held by a dead run (recorded)."""

from __future__ import annotations

import argparse
from typing import Any

from strataflow.cli.common import add_common, environment, prefect_session


def add(commands: Any) -> None:
    p = commands.add_parser("unlock", help="drop an environment's lock held by a dead run")
    p.add_argument("env")
    add_common(p, select=False)
    p.add_argument("--force", action="store_true", required=True)
    p.add_argument("--as", dest="actor", metavar="NAME")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    _, cloud = environment(args)
    prefect_session()
    from strataflow import state
    from strataflow.actor import resolve_actor

    existed = state.force_unlock(args.env, cloud, resolve_actor(args.actor), args.sandbox)
    print(f"{args.env} ({cloud}): " + ("lock removed" if existed else "was not locked"))
    return 0
