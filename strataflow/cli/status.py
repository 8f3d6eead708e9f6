"""`strata status ENV`: what is deployed in an environment, against the working config."""

from __future__ import annotations

import argparse
import json
from typing import Any

from strataflow.cli.common import add_common, environment, prefect_session


def add(commands: Any) -> None:
    p = commands.add_parser("status", help="what is deployed in an environment")
    p.add_argument("env")
    add_common(p, select=False)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    platform, cloud = environment(args)
    prefect_session()
    from strataflow import status

    doc = status.environment_status(platform, args.env, cloud, args.sandbox)
    print(json.dumps(doc, indent=2) if args.json else status.render(doc))
    return 0
