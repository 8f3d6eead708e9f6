"""`strata validate`: check the configuration (no Prefect, no cloud).

One pass over everything, one line per problem, exit 2: the components and environments
(``load_platform``), the blueprints under ``config/blueprints/`` (``strataflow.blueprints``:
their holes, and each validated like an environment), and the promotion chain (a loop of
``promote_from`` through several environments). When the project's ``prefect.yaml`` (next to
the config directory) has a strataflow section that the config would generate differently,
a ``warning:`` line on stderr says so and what to run; the exit code stays 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from strataflow import blueprints, deployments, newenv, yamlsrc
from strataflow.cli.common import add_config
from strataflow.cli.deployments import prefect_file
from strataflow.config import Platform, env_file
from strataflow.errors import ConfigError, Problem
from strataflow.load import load_platform


def add(commands: Any) -> None:
    p = commands.add_parser("validate", help="check the configuration")
    add_config(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    problems: list[Problem] = []
    platform: Platform | None = None
    try:
        platform = load_platform(args.config)
    except ConfigError as exc:
        problems += exc.problems
    found, broken = blueprints.load(Path(args.config))
    problems += broken
    for blueprint in found.values():
        problems += blueprints.check(blueprint, platform)
    if platform is not None:
        problems += _promotion_loops(platform)
    if problems or platform is None:
        raise ConfigError(problems)
    warning = _deployments_warning(args.config, platform)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    summary: dict[str, Any] = {
        "valid": True,
        "components": len(platform.components),
        "environments": sorted(platform.environments),
    }
    if found:
        summary["blueprints"] = sorted(found)
    if args.json:
        print(json.dumps(summary))
    else:
        line = f"ok: {summary['components']} components, environments: {', '.join(summary['environments']) or 'none'}"
        print(line + (f"; blueprints: {', '.join(sorted(found))}" if found else ""))
    return 0


def _promotion_loops(platform: Platform) -> list[Problem]:
    loop = newenv.promotion_cycle({env.name: env.promote_from for env in platform.environments.values()})
    if not loop:
        return []
    file = env_file(platform.root, loop[-1])
    data, _ = yamlsrc.load(Path(file))
    line, column = yamlsrc.position(data, ("promote_from",))
    message = f"the promotion chain loops: {' -> '.join(loop)}; one of these environments must promote from elsewhere"
    return [Problem(file, line, column, message)]


def _deployments_warning(config: str, platform: Platform) -> str | None:
    """What is wrong with prefect.yaml's strataflow section, when it has one (None: nothing to say)."""
    path = prefect_file(config)
    try:
        text = path.read_text()
    except OSError:
        return None
    try:
        if deployments.split(text, str(path)).current is None:
            return None
        found = deployments.stale(text, platform, str(path))
    except ConfigError as exc:
        return "; ".join(str(p) for p in exc.problems)
    if found is None:
        return None
    what = found.text() or "its generated section was edited by hand"
    return f"{path} is out of date with {config}: {what}; run `strata deployments --write`"
