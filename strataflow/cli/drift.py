"""`strata drift ENV`: check what is deployed against what was applied.

Exit codes, as ``terraform plan -detailed-exitcode``: 0 nothing drifted, 6 something drifted
(``DriftFound``), 1 a component could not be checked (before drift: an incomplete check), 4
the environment is locked by another run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from strataflow.cli.common import add_common, add_wait_lock, environment, parallelism, prefect_session, write_report
from strataflow.errors import DriftFound, StrataError


def add(commands: Any) -> None:
    p = commands.add_parser("drift", help="check what is deployed against what was applied")
    p.add_argument("env")
    add_common(p, run=True)
    add_wait_lock(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    _, cloud = environment(args)
    max_parallel = parallelism(args)
    prefect_session(args.verbose)
    from flows.drift import drift

    state = drift(
        env=args.env,
        cloud=cloud,
        select=args.select,
        config_dir=str(Path(args.config).resolve()),
        sandbox=args.sandbox,
        actor=args.actor,
        max_parallel=max_parallel,
        wait_lock=args.wait_lock,
        return_state=True,
    )
    data = state.result(raise_on_failure=False)
    if isinstance(data, StrataError):
        raise data
    if not isinstance(data, dict):
        raise StrataError(f"the drift check failed: {data}")
    write_report(args, data)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(f"drift {args.env} ({cloud}): " + (", ".join(data["drifted"]) or "none"))
        for name, result in data["components"].items():
            print(f"  {name:<20} {result['status']}")
            for line in result.get("resources", []):
                print(f"      {line}")
            if result.get("error"):
                print(f"      {result['error']}")
    failed = [name for name, result in data["components"].items() if result["status"] == "error"]
    if failed:
        raise StrataError(f"the drift of {', '.join(failed)} could not be checked; see above")
    if data["drifted"]:
        where = f"{args.env} ({cloud})"
        raise DriftFound(f"{where} drifted: {', '.join(data['drifted'])}; apply it again, or fix it by hand")
    return 0
