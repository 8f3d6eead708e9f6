"""`strata releases ENV`: the releases an environment ran, newest first: id, when, who, how, components."""

from __future__ import annotations

import argparse
import json
from typing import Any

from strataflow.cli.common import add_common, environment, prefect_session
from strataflow.releases import SHORT


def add(commands: Any) -> None:
    p = commands.add_parser("releases", help="the releases an environment ran")
    p.add_argument("env")
    add_common(p, select=False)
    p.add_argument("--limit", type=int, default=20, metavar="N")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    _, cloud = environment(args)
    prefect_session()
    from strataflow import state

    found = state.releases(args.env, cloud, args.limit, args.sandbox)
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in found], indent=2))
        return 0
    if not found:
        print(f"{args.env} ({cloud}) has no recorded release")
    for release in found:
        print(f"{release.short}  {str(release.created_at)[:19]}  {release.actor or '-':<12} {release.describe().split(' ', 1)[1]}")
        for name, digest in release.components.items():
            print(f"    {name:<20} {release.versions.get(name) or '-':<10} {digest[:SHORT]}")
    return 0
