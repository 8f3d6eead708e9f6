"""Helpers for tests of the arm backend against the sandbox ARM emulator over HTTPS.

``running_arm_sandbox`` starts the emulator (``strataflow.sandbox.arm.serve``) on a free
port in a daemon thread and stops it afterwards; the ``arm_sandbox`` fixture does that once
per test session (import it into a test module or ``tests/conftest.py`` to use it).
``make_run`` builds the ``ComponentRun`` the backend receives, pointed at the sandbox with
the real SDK clients' settings: endpoint, static bearer token and the sandbox's CA.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from strataflow.backends.arm import ArmImpl
from strataflow.backends.base import Action, ComponentRun
from strataflow.config import AzureTarget
from strataflow.sandbox.arm import SANDBOX_SUBSCRIPTION, ArmEmulator, ArmServer, serve

REPO = Path(__file__).resolve().parents[2]
SAMPLE_CONFIG = REPO / "config"
SAMPLE_TEMPLATES = "templates/azure"


@dataclass
class ArmSandbox:
    """A running emulator: where it listens, the CA to trust, and its test handle."""

    server: ArmServer
    base_url: str
    ca_path: Path
    subscription: str = SANDBOX_SUBSCRIPTION

    @property
    def emulator(self) -> ArmEmulator:
        return self.server.emulator

    def target(self, **overrides: Any) -> AzureTarget:
        """An environment's Azure settings pointing at the sandbox."""
        settings: dict[str, Any] = {
            "subscription_id": self.subscription,
            "location": "westeurope",
            "resource_group": f"strata-test-{uuid.uuid4().hex[:8]}",
            "endpoint_url": self.base_url,
        }
        return AzureTarget(**{**settings, **overrides})

    def credentials(self, token: str = "test-token") -> dict[str, Any]:
        """The credentials block values the backend gets: a static token and the CA bundle."""
        return {"token": token, "ca_bundle": str(self.ca_path)}


@contextmanager
def running_arm_sandbox(cert_dir: Path) -> Iterator[ArmSandbox]:
    """Start the emulator on 127.0.0.1 on a free port; stop it on exit."""
    server, base_url, ca_path = serve("127.0.0.1", 0, cert_dir)
    try:
        yield ArmSandbox(server, base_url, ca_path)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def arm_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArmSandbox]:
    """One ARM emulator for the whole session (tests keep apart by resource group names)."""
    with running_arm_sandbox(tmp_path_factory.mktemp("arm-sandbox")) as sandbox:
        yield sandbox


def write_template(config_dir: Path, name: str, template: dict[str, Any]) -> str:
    """Write ``template`` under ``config_dir/templates``; returns its path relative to the config dir."""
    relative = f"templates/{name}.json"
    path = config_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(template, indent=2), encoding="utf-8")
    return relative


def make_run(
    sandbox: ArmSandbox,
    config_dir: Path,
    template: str,
    *,
    component: str = "network",
    env: str = "dev",
    action: Action = "apply",
    parameters: dict[str, Any] | None = None,
    target: AzureTarget | None = None,
    resource_group: str | None = None,
    credentials: dict[str, Any] | None = None,
    log: list[str] | None = None,
) -> ComponentRun:
    """A resolved ``ComponentRun`` of ``template`` (relative to ``config_dir``) for the sandbox."""
    lines = log if log is not None else []
    return ComponentRun(
        env=env,
        cloud="azure",
        component=component,
        action=action,
        impl=ArmImpl(backend="arm", template=template, resource_group=resource_group),
        parameters=parameters or {},
        config_dir=config_dir,
        target=target or sandbox.target(),
        credentials=credentials if credentials is not None else sandbox.credentials(),
        log=lines.append,
    )


def minimal_template(
    resources: list[dict[str, Any]] | None = None,
    outputs: dict[str, Any] | None = None,
    parameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An ARM template skeleton around ``resources``, ``outputs`` and ``parameters``."""
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": parameters or {},
        "resources": resources or [],
        "outputs": outputs or {},
    }


def vnet_template() -> dict[str, Any]:
    """A virtual network named by a parameter, with a secure and a plain output."""
    vnet_id = "[resourceId('Microsoft.Network/virtualNetworks', parameters('name'))]"
    return minimal_template(
        parameters={
            "name": {"type": "string", "defaultValue": "vnet-dev"},
            "addressPrefix": {"type": "string", "defaultValue": "10.0.0.0/16"},
            "token": {"type": "securestring", "defaultValue": "s3cret-value"},
        },
        resources=[
            {
                "type": "Microsoft.Network/virtualNetworks",
                "apiVersion": "2023-09-01",
                "name": "[parameters('name')]",
                "location": "[resourceGroup().location]",
                "properties": {
                    "addressSpace": {"addressPrefixes": ["[parameters('addressPrefix')]"]},
                    "subnets": [
                        {
                            "name": "nodes",
                            "properties": {"addressPrefix": "[cidrSubnet(parameters('addressPrefix'), 24, 0)]"},
                        }
                    ],
                },
            }
        ],
        outputs={
            "vnetId": {"type": "string", "value": vnet_id},
            "addressPrefixes": {
                "type": "array",
                "value": "[reference(" + vnet_id[1:-1] + ").addressSpace.addressPrefixes]",
            },
            "token": {"type": "securestring", "value": "[parameters('token')]"},
        },
    )
