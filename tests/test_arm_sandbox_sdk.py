"""The sandbox ARM emulator end to end through the real Azure SDK over HTTPS."""

from __future__ import annotations

import ssl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.mgmt.resource.deployments import DeploymentsMgmtClient
from azure.mgmt.resource.deployments.models import Deployment, DeploymentProperties
from azure.mgmt.resource.resources import ResourceManagementClient

from strataflow.sandbox.arm import SANDBOX_SUBSCRIPTION, ArmServer, serve

SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"


class Token:
    """A credential that always presents the same bearer token."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        del scopes, kwargs
        return AccessToken("sandbox-token", int(time.time()) + 3600)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ArmServer, str, Path]]:
    """One emulator over HTTPS on a free loopback port for this module."""
    running, url, ca_path = serve("127.0.0.1", 0, tmp_path_factory.mktemp("arm-sdk"))
    try:
        yield running, url, ca_path
    finally:
        running.stop()


@pytest.fixture
def clients(server: tuple[ArmServer, str, Path]) -> tuple[ResourceManagementClient, DeploymentsMgmtClient]:
    """The real SDK clients pointed at the emulator and trusting its CA."""
    _, url, ca_path = server
    options: dict[str, Any] = {"base_url": url, "connection_verify": str(ca_path), "polling_interval": 0.01}
    credential: Any = Token()
    return (
        ResourceManagementClient(credential, SANDBOX_SUBSCRIPTION, **options),
        DeploymentsMgmtClient(credential, SANDBOX_SUBSCRIPTION, **options),
    )


def _storage(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "Microsoft.Storage/storageAccounts",
        "apiVersion": "2023-01-01",
        "name": name,
        "location": "[resourceGroup().location]",
        "sku": {"name": "Standard_LRS"},
        "kind": "StorageV2",
        "properties": {},
        **extra,
    }


def _platform_template() -> dict[str, Any]:
    """A template using loops, conditions, both nested scopes, reference() and listKeys()."""
    inner = {
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "parameters": {"name": {"type": "string"}},
        "resources": [_storage("[parameters('name')]")],
        "outputs": {"blob": {"type": "string", "value": "[reference(parameters('name')).primaryEndpoints.blob]"}},
    }
    outer = {
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "resources": [_storage("[concat(variables('prefix'), 'outer')]")],
    }
    return {
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "parameters": {
            "count": {"type": "int", "defaultValue": 2},
            "withExtra": {"type": "bool", "defaultValue": False},
        },
        "variables": {"prefix": "[concat('sf', substring(uniqueString(resourceGroup().id), 0, 6))]"},
        "resources": [
            _storage(
                "[concat(variables('prefix'), copyIndex())]",
                copy={"name": "accounts", "count": "[parameters('count')]"},
            ),
            _storage("[concat(variables('prefix'), 'extra')]", condition="[parameters('withExtra')]"),
            {
                "type": "Microsoft.Resources/deployments",
                "apiVersion": "2022-09-01",
                "name": "innerModule",
                "dependsOn": ["accounts"],
                "properties": {
                    "mode": "Incremental",
                    "expressionEvaluationOptions": {"scope": "inner"},
                    "parameters": {"name": {"value": "[concat(variables('prefix'), 'inner')]"}},
                    "template": inner,
                },
            },
            {
                "type": "Microsoft.Resources/deployments",
                "apiVersion": "2022-09-01",
                "name": "outerModule",
                "properties": {"mode": "Incremental", "template": outer},
            },
        ],
        "outputs": {
            "innerBlob": {"type": "string", "value": "[reference('innerModule').outputs.blob.value]"},
            "firstKey": {
                "type": "string",
                "value": "[listKeys(resourceId('Microsoft.Storage/storageAccounts', concat(variables('prefix'), '0')), '2023-01-01').keys[0].value]",
            },
            "names": {
                "type": "array",
                "copy": {"count": "[parameters('count')]", "input": "[concat(variables('prefix'), copyIndex())]"},
            },
        },
    }


def test_a_template_with_loops_conditions_and_nested_deployments(
    clients: tuple[ResourceManagementClient, DeploymentsMgmtClient],
) -> None:
    """Through the SDK: every declared resource exists afterwards, outputs come from nested deployments."""
    resources, deployments = clients
    group = f"sdk-{uuid.uuid4().hex[:8]}"
    resources.resource_groups.create_or_update(group, {"location": "westeurope"})
    poller = deployments.deployments.begin_create_or_update(
        group,
        "platform",
        Deployment(
            properties=DeploymentProperties(
                mode="Incremental", template=_platform_template(), parameters={"count": {"value": 3}}
            )
        ),
    )
    result = poller.result()
    assert result.properties.provisioning_state == "Succeeded"
    outputs = {k: v["value"] for k, v in result.properties.outputs.items()}
    names = outputs["names"]
    prefix = names[0][:-1]
    assert names == [f"{prefix}{i}" for i in range(3)]
    assert outputs["innerBlob"] == f"https://{prefix}inner.blob.core.windows.net/"
    assert len(outputs["firstKey"]) == 88
    listed = sorted(r.name for r in resources.resources.list_by_resource_group(group))
    assert listed == sorted([*names, f"{prefix}inner", f"{prefix}outer"])
    account = resources.resources.get_by_id(
        f"/subscriptions/{SANDBOX_SUBSCRIPTION}/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/{prefix}outer",
        api_version="2023-01-01",
    )
    assert account.properties["primaryEndpoints"]["blob"] == f"https://{prefix}outer.blob.core.windows.net/"
    nested = deployments.deployments.get(group, "innerModule")
    assert nested.properties.provisioning_state == "Succeeded"
    assert nested.properties.outputs["blob"]["value"] == outputs["innerBlob"]


def test_a_template_with_comments_through_the_sdk(
    clients: tuple[ResourceManagementClient, DeploymentsMgmtClient], server: tuple[ArmServer, str, Path]
) -> None:
    """A template text with comments, sent as ARM receives it from the CLI, deploys."""
    import httpx

    _, url, ca_path = server
    resources, deployments = clients
    group = f"sdk-{uuid.uuid4().hex[:8]}"
    resources.resource_groups.create_or_update(group, {"location": "westeurope"})
    text = (
        '{"$schema": "SCHEMA", "contentVersion": "1.0.0.0", // where it goes\n'
        '"resources": [/* one account */ {"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-01-01",'
        ' "name": "withcomments", "location": "westeurope", "properties": {},}],}'
    ).replace("SCHEMA", SCHEMA)
    body = '{"properties": {"mode": "Incremental", "template": ' + text + "}}"
    path = f"/subscriptions/{SANDBOX_SUBSCRIPTION}/resourcegroups/{group}/providers/Microsoft.Resources/deployments/c"
    with httpx.Client(
        verify=ssl.create_default_context(cafile=str(ca_path)), headers={"Authorization": "Bearer t"}
    ) as client:
        assert client.put(f"{url}{path}?api-version=2024-03-01", content=body).status_code == 201
    poller = deployments.deployments.get(group, "c")
    for _ in range(3):
        poller = deployments.deployments.get(group, "c")
    assert poller.properties.provisioning_state == "Succeeded"
    assert [r.name for r in resources.resources.list_by_resource_group(group)] == ["withcomments"]


def test_an_unsupported_feature_is_refused_clearly_through_the_sdk(
    clients: tuple[ResourceManagementClient, DeploymentsMgmtClient],
) -> None:
    """The SDK sees SandboxUnsupported, not Azure's 'function is not valid'."""
    from azure.core.exceptions import HttpResponseError

    resources, deployments = clients
    group = f"sdk-{uuid.uuid4().hex[:8]}"
    resources.resource_groups.create_or_update(group, {"location": "westeurope"})
    template = {"$schema": SCHEMA, "contentVersion": "1.0.0.0", "resources": [], "imports": [{"from": "x"}]}
    with pytest.raises(HttpResponseError) as refused:
        deployments.deployments.begin_create_or_update(
            group, "u", Deployment(properties=DeploymentProperties(mode="Incremental", template=template))
        ).result()
    assert refused.value.error is not None and refused.value.error.code == "SandboxUnsupported"
    assert "is not supported by the strataflow sandbox" in str(refused.value)
