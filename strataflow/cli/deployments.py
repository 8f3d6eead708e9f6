"""`strata deployments [--check | --write]`: prefect.yaml's strataflow section, from the config (no Prefect).

Without an option it prints the section the config generates. ``--check`` exits 0 when
prefect.yaml holds exactly that and 1 when it is out of date (saying which deployments
differ); ``--write`` rewrites the section in place and leaves the rest of the file as it is.
Problems with the file itself (marker lines, missing anchors, a deployment defined twice)
are config errors: one line each, exit 2. The file is ``prefect.yaml`` in the directory
above the config directory (the project directory), unless ``--file`` names another.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from strataflow import deployments
from strataflow.cli.common import add_config
from strataflow.errors import ConfigError, Problem
from strataflow.load import load_platform


def add(commands: Any) -> None:
    p = commands.add_parser("deployments", help="generate prefect.yaml's deployments from the config")
    add_config(p)
    p.add_argument("--file", metavar="PATH", help="the prefect.yaml to check or write (default: next to the config directory)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 when prefect.yaml is out of date")
    mode.add_argument("--write", action="store_true", help="rewrite prefect.yaml's strataflow section")
    p.set_defaults(handler=run)


def prefect_file(config: str, file: str | None = None) -> Path:
    """Where prefect.yaml is: ``--file``, else next to the config directory."""
    return Path(file) if file else Path(config).resolve().parent / "prefect.yaml"


def run(args: argparse.Namespace) -> int:
    platform = load_platform(args.config)
    path = prefect_file(args.config, args.file)
    if not (args.check or args.write):
        text = path.read_text() if path.is_file() else ""
        pools = {a for a in deployments.anchors(text) if a.endswith("-pool")}
        print(deployments.block(platform, pools), end="")
        return 0
    if not path.is_file():
        raise ConfigError(Problem(str(path), None, None, "not found; run strata deployments in the project directory or pass --file"))
    text = path.read_text()
    new = deployments.updated(text, platform, str(path))
    if new == text:
        print(f"{path}: up to date ({len(deployments.plan(platform))} deployments from {args.config})")
        return 0
    found = deployments.changes(text, new)
    summary = found.text() or "the generated section was edited by hand"
    if args.check:
        print(f"{path} is out of date with {args.config}: {summary}; run `strata deployments --write`")
        return 1
    write_atomically(path, new)
    print(f"{path}: {summary}")
    if found.removed:
        names = " ".join(f"'{n}'" for n in found.removed)
        print(f"removed from {path.name} but still on the server until deleted: prefect deployment delete {names}")
    print("register them on the server: prefect deploy --all --no-prompt")
    return 0


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step (a reader never sees half a file), keeping its mode."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
        if path.exists():
            os.chmod(temporary, path.stat().st_mode & 0o7777)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
