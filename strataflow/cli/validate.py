"""`strata validate`: check the configuration (no Prefect, no cloud)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from strataflow.cli.common import add_config
from strataflow.load import load_platform


def add(commands: Any) -> None:
    p = commands.add_parser("validate", help="check the configuration")
    add_config(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
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
