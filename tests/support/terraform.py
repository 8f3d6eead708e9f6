"""Helpers for tests of the terraform backend against the real CLI.

Modules here use only what is built into terraform (``terraform_data``, outputs, the local
backend, the ``local-exec`` provisioner), so nothing is downloaded. ``make_run`` builds a
``ComponentRun`` for a module written into a temporary config directory; ``hold_state_lock``
locks a local state file exactly as terraform's local backend does (an fcntl lock on the
state file plus ``.terraform.tfstate.lock.info`` saying who holds it).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from strataflow.backends.base import Action, ComponentRun
from strataflow.backends.terraform import TerraformImpl, TerraformSettings
from strataflow.config import AwsTarget

REPO = Path(__file__).resolve().parents[2]
SAMPLE_CONFIG = REPO / "config"

# A record with a sensitive output; `rotation` feeds triggers_replace, `name` the input.
RECORD_MODULE = """\
variable "name" {
  type = string
}

variable "rotation" {
  type    = string
  default = "1"
}

variable "token" {
  type      = string
  sensitive = true
  default   = "not-a-secret"
}

resource "terraform_data" "record" {
  input            = { name = var.name }
  triggers_replace = var.rotation
}

output "name" {
  value = terraform_data.record.output.name
}

output "record_id" {
  value = terraform_data.record.id
}

output "token_hash" {
  value     = sha256(var.token)
  sensitive = true
}
"""

# Prints its `token` in a warning, so a test can check the log is masked.
NOISY_MODULE = """\
variable "token" {
  type = string
}

resource "terraform_data" "noisy" {
  input = "ok"
}

check "token" {
  assert {
    condition     = terraform_data.noisy.output == "never"
    error_message = "the token is ${var.token}"
  }
}
"""

# Sleeps inside apply: holds the state lock, or outlives a timeout.
SLOW_MODULE = """\
variable "seconds" {
  type    = number
  default = 30
}

resource "terraform_data" "slow" {
  provisioner "local-exec" {
    command = "sleep ${var.seconds}"
  }
}
"""


def terraform_path() -> str:
    """The terraform binary, or an AssertionError saying how to get it (never a skip)."""
    found = shutil.which("terraform")
    assert found, (
        "terraform is not on PATH: the terraform backend tests need the real CLI; install it from "
        "https://developer.hashicorp.com/terraform/install"
    )
    return found


def write_module(config_dir: Path, name: str, main_tf: str, **files: str) -> str:
    """Write ``modules/<name>/main.tf`` (and ``files``) under ``config_dir``; returns the module path."""
    module = config_dir / "modules" / name
    module.mkdir(parents=True, exist_ok=True)
    (module / "main.tf").write_text(main_tf)
    for filename, text in files.items():
        (module / filename).write_text(text)
    return f"modules/{name}"


def make_run(
    config_dir: Path,
    state_dir: Path,
    module: str,
    *,
    parameters: dict[str, Any] | None = None,
    env: str = "dev",
    cloud: str = "aws",
    component: str = "record",
    action: Action = "apply",
    timeout: float | None = None,
    secrets: frozenset[str] = frozenset(),
    terraform: TerraformSettings | None = None,
    log: Callable[[str], None] | None = None,
) -> ComponentRun:
    """A resolved terraform component run of ``module`` (relative to ``config_dir``)."""
    run = ComponentRun(
        env=env,
        cloud=cloud,
        component=component,
        action=action,
        impl=TerraformImpl(backend="terraform", module=module),
        parameters=dict(parameters or {}),
        config_dir=config_dir,
        target=AwsTarget(),
        timeout=timeout,
        secrets=secrets,
        state_dir=state_dir,
        settings=terraform or TerraformSettings(),
    )
    if log is not None:
        run.log = log
    return run


def read_state(state_file: Path) -> dict[str, Any]:
    """The JSON of a local state file."""
    data: dict[str, Any] = json.loads(state_file.read_text())
    return data


def edit_state(state_file: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Change a local state file out of band, bumping its serial as `terraform state push` requires."""
    state = read_state(state_file)
    change(state)
    state["serial"] = int(state["serial"]) + 1
    state_file.write_text(json.dumps(state, indent=2))


def instance_attributes(state: dict[str, Any], address: str) -> dict[str, Any]:
    """The attributes of the single instance of ``address`` (``type.name``) in a state."""
    kind, _, name = address.partition(".")
    for resource in state["resources"]:
        if resource["type"] == kind and resource["name"] == name:
            attributes: dict[str, Any] = resource["instances"][0]["attributes"]
            return attributes
    raise KeyError(address)


@contextmanager
def hold_state_lock(
    state_file: Path,
    *,
    who: str = "alice@ci-runner-7",
    operation: str = "OperationTypeApply",
    created: str = "2026-01-02T03:04:05.000000Z",
    lock_id: str = "9f3c2a1e-0000-4000-8000-000000000001",
) -> Iterator[dict[str, str]]:
    """Hold the local backend's lock on ``state_file`` as another terraform process would.

    terraform's local backend takes a POSIX record lock (fcntl F_SETLK, whole file) on the
    state file and writes who holds it to ``.terraform.tfstate.lock.info`` beside it; a second
    terraform then fails with "Error acquiring the state lock" and prints that information.
    """
    state_file.parent.mkdir(parents=True, exist_ok=True)
    info = {
        "ID": lock_id,
        "Operation": operation,
        "Info": "",
        "Who": who,
        "Version": "1.11.4",
        "Created": created,
        "Path": state_file.name,
    }
    info_file = state_file.parent / f".{state_file.name}.lock.info"
    fd = os.open(state_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        info_file.write_text(json.dumps(info))
        yield info
    finally:
        info_file.unlink(missing_ok=True)
        os.close(fd)
