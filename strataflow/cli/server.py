"""`strata server start|stop|status`: the local Prefect server and the sandbox clouds."""

from __future__ import annotations

import argparse
import json
from typing import Any

from strataflow.cli.common import add_config


def add(commands: Any) -> None:
    p = commands.add_parser("server", help="the local Prefect server and sandbox")
    p.add_argument("op", choices=["start", "stop", "status"])
    p.add_argument("--json", action="store_true")
    add_config(p, "accepted by every command; unused here")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from strataflow import server

    if args.op == "start":
        info = server.start_local()
        print(f"local Prefect server: {info['url']}")
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
