"""`strata graph ENV`: an environment's component graph as text, JSON or mermaid (no Prefect)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from strataflow import report as reports
from strataflow.cli.common import add_common, resolve_target


def add(commands: Any) -> None:
    p = commands.add_parser("graph", help="show an environment's component graph")
    p.add_argument("env")
    add_common(p)
    p.add_argument("--format", choices=["text", "json", "mermaid"], default="text")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
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
