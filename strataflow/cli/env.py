"""`strata env new NAME --blueprint B | --from ENV ...` and `strata env list` (no Prefect).

``env new`` decides the whole file first (``strataflow.newenv``), writes it into a temporary
copy of the config directory and loads that with ``load_platform``, regenerates prefect.yaml's
strataflow section for the would-be config, and only then writes: the environment file
(created exclusively, so a file that appeared meanwhile is not overwritten), then prefect.yaml
(replaced in one step). Any refusal happens before the first write, so a refused command
leaves every file as it was; ``--dry-run`` stops before writing and prints the file.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from strataflow import blueprints, copyenv, deployments, newenv, yamlsrc
from strataflow.cli.common import add_config
from strataflow.cli.deployments import prefect_file, write_atomically
from strataflow.config import Environment, Platform, env_file
from strataflow.errors import ConfigError, Problem, UsageError
from strataflow.hints import did_you_mean
from strataflow.load import load_platform


def add(commands: Any) -> None:
    p = commands.add_parser("env", help="create or list environments")
    sub = p.add_subparsers(dest="env_command", required=True, metavar="{new,list}")
    new = sub.add_parser("new", help="write config/environments/NAME.yaml from a blueprint or another environment")
    new.add_argument("name", help="the new environment's name")
    source = new.add_mutually_exclusive_group(required=True)
    source.add_argument("--blueprint", metavar="B", help="fill in config/blueprints/B.yaml")
    source.add_argument("--from", dest="source", metavar="ENV", help="copy environment ENV (networks re-allocated, names replaced)")
    new.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a value of the file (dotted path; the value is YAML)")
    new.add_argument("--promote-from", metavar="ENV", help="the environment it receives promotions from")
    new.add_argument("--dry-run", action="store_true", help="show what would be written, write nothing")
    add_config(new)
    listing = sub.add_parser("list", help="environments with their promotion chain, clouds and approval rules")
    add_config(listing)
    listing.add_argument("--json", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    return _new(args) if args.env_command == "new" else _list(args)


# --- env new ------------------------------------------------------------------------------------


def _new(args: argparse.Namespace) -> int:
    root = Path(args.config)
    request = newenv.Request(args.name, tuple(newenv.parse_set(text) for text in args.set), args.promote_from)
    platform = load_platform(root)
    target = Path(env_file(root, args.name))
    for existing in (target, target.with_suffix(".yml")):
        if existing.exists():
            raise UsageError(f"environment '{args.name}' already exists ({existing}); choose another name")
    found, problems = blueprints.load(root)
    if args.blueprint:
        draft = newenv.from_blueprint(platform, _blueprint(root, args.blueprint, found, problems, platform), request)
    else:
        raw = None
        if args.source in platform.environments:
            raw, errors = yamlsrc.load(Path(env_file(root, args.source)))
            if errors:
                raise ConfigError(errors)
        pools = [pool for blueprint in found.values() for pool in blueprint.pools()]
        draft = copyenv.from_environment(platform, args.source, raw, request, pools)
    text = newenv.render(draft)
    would_be = _verify(root, args.name, text)
    prefect = prefect_file(args.config)
    new_prefect, prefect_line = _deployments(prefect, platform, would_be)
    if not args.dry_run:
        try:
            with open(target, "x", encoding="utf-8") as out:
                out.write(text)
        except FileExistsError:
            raise UsageError(f"environment '{args.name}' already exists ({target}, written meanwhile); nothing written") from None
        if new_prefect is not None:
            write_atomically(prefect, new_prefect)
    _report(args, draft, target, would_be, prefect_line, text)
    return 0


def _blueprint(
    root: Path, name: str, found: dict[str, blueprints.Blueprint], problems: list[Problem], platform: Platform
) -> blueprints.Blueprint:
    """Blueprint ``name``, refused when unknown or not valid."""
    file = str(root / blueprints.DIRECTORY / f"{name}.yaml")
    own = [problem for problem in problems if problem.file == file]
    if name not in found:
        if own:
            raise ConfigError(own)
        known = ", ".join(sorted(found)) or "none"
        raise UsageError(f"unknown blueprint '{name}'{did_you_mean(name, found)} (known: {known}); add {file}")
    own += blueprints.check(found[name], platform)
    if own:
        raise ConfigError(own)
    return found[name]


def _verify(root: Path, name: str, text: str) -> Platform:
    """The config as it would be with the new file, loaded and checked in a temporary copy."""
    with tempfile.TemporaryDirectory(prefix="strata-env-new-") as temporary:
        copy = Path(temporary) / "config"
        shutil.copytree(root, copy, symlinks=True, ignore=shutil.ignore_patterns(".terraform", ".git"))
        (copy / "environments" / f"{name}.yaml").write_text(text, encoding="utf-8")
        try:
            platform = load_platform(copy)
        except ConfigError as exc:
            moved = [Problem(p.file.replace(str(copy), str(root), 1), p.line, p.column, p.message) for p in exc.problems]
            raise ConfigError(moved) from None
    return platform.model_copy(update={"root": root})


def _deployments(path: Path, before: Platform, after: Platform) -> tuple[str | None, str]:
    """prefect.yaml as it would be, and the line saying what changes in it (None: not touched)."""
    if not path.is_file():
        return None, f"no {path}: no deployments to update"
    text = path.read_text()
    if deployments.split(text, str(path)).current is None:
        return None, f"{path} has no strataflow section; not changed (see docs/environments.md, then strata deployments --write)"
    if deployments.stale(text, before, str(path)) is not None:
        note = "; it was out of date already, so this also brings in what other config changes need"
    else:
        note = ""
    new = deployments.updated(text, after, str(path))
    schedules = {d.full: d.schedule for d in deployments.plan(after)}
    found = deployments.changes(text, new)
    parts = [f"+ {n}" + (f" ({schedules[n]})" if schedules.get(n) else "") for n in found.added]
    parts += [f"~ {n}" + (f" ({schedules[n]})" if schedules.get(n) else "") for n in found.changed]
    parts += [f"- {n}" for n in found.removed]
    return new, f"{path}: {', '.join(parts) or 'no change'}{note}"


def _report(args: argparse.Namespace, draft: newenv.Draft, target: Path, platform: Platform, prefect_line: str, text: str) -> None:
    name = draft.name
    print(f"{name}: from {draft.origin}")
    width = max((len(path) for path, _, _ in draft.decisions), default=0)
    for path, value, why in draft.ordered():
        print(f"  {path.ljust(width)} = {value}  ({why})")
    edges = {env.name: env.promote_from for env in platform.environments.values()}
    source = edges.get(name)
    if source:
        siblings = sorted(n for n, s in edges.items() if s == source and n != name)
        also = f" ({source} also promotes to {', '.join(siblings)})" if siblings else ""
        print(f"chain: {' -> '.join(newenv.chain(edges, name))}{also}")
    else:
        print(f"chain: {name} heads its own chain (nothing promotes into it)")
    if args.dry_run:
        print(f"dry run: nothing written; {target} would be:")
        print("".join(f"  | {line}\n" for line in text.splitlines()), end="")
        print(prefect_line.replace(": ", " would change: ", 1) if "strataflow section" not in prefect_line else prefect_line)
    else:
        print(f"wrote {target}")
        print(prefect_line)
    print("left to do:")
    for note in draft.notes:
        print(f"  - {note}")
    config = "" if args.config == "config" else f" --config {args.config}"
    print(f"  - strata plan {name}{config}, then strata apply {name}{config}")
    print("  - prefect deploy --all --no-prompt   (registers the deployments on the Prefect server)")


# --- env list ----------------------------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    platform = load_platform(args.config)
    edges = {env.name: env.promote_from for env in platform.environments.values()}
    rows = [_describe(platform.environments[name], edges) for name in deployments.chain_order(platform)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = [("ENVIRONMENT", "FROM", "CLOUDS", "APPROVAL")]
    for row in rows:
        indent = "  " * (len(row["chain"]) - 1)
        table.append((indent + row["name"], row["promote_from"] or "-", _clouds_text(row), _approval_text(row)))
    widths = [max(len(line[i]) for line in table) for i in range(3)]
    for line in table:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line[:3])) + "  " + line[3])
    return 0


def _describe(env: Environment, edges: dict[str, str | None]) -> dict[str, Any]:
    clouds: dict[str, Any] = {}
    if env.clouds.aws is not None:
        clouds["aws"] = {"region": env.clouds.aws.region, "account_id": env.clouds.aws.account_id}
    if env.clouds.azure is not None:
        azure = env.clouds.azure
        clouds["azure"] = {"location": azure.location, "subscription_id": azure.subscription_id, "resource_group": azure.resource_group}
    return {
        "name": env.name,
        "promote_from": env.promote_from,
        "promotes_to": sorted(n for n, s in edges.items() if s == env.name and n != env.name),
        "chain": newenv.chain(edges, env.name),
        "default_cloud": env.default_cloud,
        "clouds": clouds,
        "approval": {"required": env.approval.required, "approvers": env.approval.names, "timeout_s": env.approval.timeout},
        "freeze_windows": len(env.freeze),
    }


def _clouds_text(row: dict[str, Any]) -> str:
    parts = []
    for cloud, info in row["clouds"].items():
        default = " (default)" if row["default_cloud"] == cloud and len(row["clouds"]) > 1 else ""
        if cloud == "aws":
            parts.append(f"aws{default} {info['region']} {info['account_id'] or 'any account'}")
        else:
            parts.append(f"azure{default} {info['location']} {info['subscription_id'] or 'any subscription'}")
    return "; ".join(parts) or "-"


def _approval_text(row: dict[str, Any]) -> str:
    approval = row["approval"]
    text = "not required"
    if approval["required"]:
        hours = approval["timeout_s"] / 3600
        text = f"{' or '.join(approval['approvers'])}, within {hours:g}h"
    if row["freeze_windows"]:
        text += f"; {row['freeze_windows']} freeze window{'s' * (row['freeze_windows'] != 1)}"
    return text
