"""A small platform whose `web` component runs a script and reads an input file from the config directory,
so tests can see exactly which bytes each environment deployed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.support.configs import unique
from tests.support.promotions import ok

WEB = """#!/bin/sh
echo "web $(cat web.conf) $STRATA_ENV" >> {log}
echo '{{"served": "yes"}}'
"""


def release_platform(root: Path) -> dict[str, Any]:
    """`base` -> `web` (a script and an input file in the config directory) in dev -> staging -> prod (approval)."""
    names = {"dev": unique("d"), "staging": unique("s"), "prod": unique("p")}
    log = root / "deployed.log"
    components = {
        "base": {"backend": "command", "apply": "echo '{\"id\": \"base\"}'", "outputs": "json", "version": "1.0"},
        "web": {
            "backend": "command",
            "apply": "sh scripts/web.sh ${base.outputs.id}",
            "outputs": "json",
            "inputs": ["web.conf"],
            "depends_on": ["base"],
            "version": "1.0",
        },
    }
    (root / "environments").mkdir(parents=True)
    (root / "scripts").mkdir()
    (root / "components.yaml").write_text(yaml.safe_dump({"components": components}, sort_keys=False))
    (root / "scripts" / "web.sh").write_text(WEB.format(log=log))
    (root / "web.conf").write_text("v1-reviewed\n")
    envs = {
        names["dev"]: {},
        names["staging"]: {"promote_from": names["dev"]},
        names["prod"]: {
            "promote_from": names["staging"],
            "approval": {"required": True, "approvers": ["alice", "bob"], "timeout": "10m"},
        },
    }
    for name, body in envs.items():
        (root / "environments" / f"{name}.yaml").write_text(yaml.safe_dump(body))
    return {"config": root, "log": log, **names}


def deployed(platform: dict[str, Any], env: str) -> list[str]:
    log = platform["log"]
    return [line for line in (log.read_text().splitlines() if log.exists() else []) if line.endswith(f" {env}")]


def status(platform: dict[str, Any], env: str, *extra: str) -> dict[str, Any]:
    return dict(json.loads(ok("status", env, "--config", str(platform["config"]), "--json", *extra).stdout))


def keyed_release_platform(root: Path) -> dict[str, Any]:
    """The release platform with prod's approvers alice and bob holding SSH keys (``keys``); staging has dev's release."""
    from tests.support.ssh import keypair

    found = release_platform(root / "cfg")
    keys = {name: keypair(root, name) for name in ("alice", "bob")}
    prod_file = found["config"] / "environments" / f"{found['prod']}.yaml"
    body = yaml.safe_load(prod_file.read_text())
    body["approval"]["approvers"] = [{"name": n, "key": k.public} for n, k in keys.items()]
    prod_file.write_text(yaml.safe_dump(body))
    ok("apply", found["dev"], "--config", str(found["config"]))
    ok("promote", found["dev"], found["staging"], "--config", str(found["config"]))
    return {**found, "keys": keys}
