"""Small platforms of `command` components for flow, state and promotion tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.support.configs import unique


def promotion_platform(root: Path, *, approval_timeout: str = "10m", fail: str | None = None) -> dict[str, str]:
    """Components `base` -> `app` (+ `side`) in three environments: dev -> staging -> prod (approval).

    Each apply appends its component and environment to `applied.log`, so tests can count runs.
    A component named in ``fail`` fails while the file `FAIL` exists in the config directory.
    Returns the environment names.
    """
    names = {"dev": unique("d"), "staging": unique("s"), "prod": unique("p")}
    log = root / "applied.log"

    def command(name: str) -> dict[str, Any]:
        apply = f"echo {name} $STRATA_ENV >> {log}; echo '{{\"id\": \"{name}-'$STRATA_ENV'\"}}'"
        if name == fail:
            apply = f"if [ -e {root / 'FAIL'} ]; then echo {name} broke >&2; exit 3; fi; {apply}"
        return {"backend": "command", "apply": apply, "outputs": "json", "version": "1.0.0"}

    components = {
        "base": command("base"),
        "app": {**command("app"), "parameters": {"size": "${var.size}"}, "depends_on": ["base"]},
        "side": command("side"),
    }
    components["app"]["apply"] = components["app"]["apply"].replace("echo app", "echo app ${base.outputs.id}")
    (root / "environments").mkdir(parents=True, exist_ok=True)
    (root / "components.yaml").write_text(yaml.safe_dump({"components": components}, sort_keys=False))
    envs = {
        names["dev"]: {"variables": {"size": 1}},
        names["staging"]: {"promote_from": names["dev"], "variables": {"size": 2}},
        names["prod"]: {
            "promote_from": names["staging"],
            "approval": {"required": True, "approvers": ["alice", "bob"], "timeout": approval_timeout},
            "variables": {"size": 3},
        },
    }
    for name, body in envs.items():
        (root / "environments" / f"{name}.yaml").write_text(yaml.safe_dump(body))
    return names


def applied(root: Path) -> list[str]:
    log = root / "applied.log"
    return log.read_text().splitlines() if log.exists() else []
