"""Template features of the sandbox ARM emulator, driven through its request handler."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strataflow.sandbox.arm import SANDBOX_SUBSCRIPTION, ArmEmulator

SUB = f"/subscriptions/{SANDBOX_SUBSCRIPTION}"
API = "?api-version=2024-03-01"
SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"


class Harness:
    """An in-process emulator with helpers to deploy templates and read what they created."""

    def __init__(self) -> None:
        self.emulator = ArmEmulator()

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One request; ``body`` may be an object or raw text."""
        data = body.encode() if isinstance(body, str) else (json.dumps(body).encode() if body is not None else b"")
        reply = self.emulator.handle(method, path + API, {"authorization": "Bearer t"}, data, "https://sandbox")
        return reply.status, reply.body

    def group(self, name: str = "rg") -> str:
        self.call("PUT", f"{SUB}/resourcegroups/{name}", {"location": "westeurope"})
        return f"{SUB}/resourceGroups/{name}"

    def deploy(
        self, template: dict[str, Any] | str, parameters: dict[str, Any] | None = None, group: str = "rg"
    ) -> dict[str, Any]:
        """PUT a deployment and poll it to its end; the deployment as GET shows it (or the 400 body)."""
        self.group(group)
        path = f"{SUB}/resourcegroups/{group}/providers/Microsoft.Resources/deployments/main"
        params = {k: {"value": v} for k, v in (parameters or {}).items()}
        if isinstance(template, str):
            body: Any = json.dumps({"properties": {"mode": "Incremental", "parameters": params}})[:-2]
            body += ', "template": ' + template + "}}"
        else:
            body = {"properties": {"mode": "Incremental", "parameters": params, "template": template}}
        status, answer = self.call("PUT", path, body)
        if status >= 400:
            return {"status": status, **answer}
        for _ in range(3):
            _, answer = self.call("GET", path)
        return answer  # type: ignore[no-any-return]

    def get(self, resource_id: str) -> dict[str, Any] | None:
        status, body = self.call("GET", resource_id)
        return body if status == 200 else None

    def operations(self, group: str = "rg") -> list[dict[str, Any]]:
        path = f"{SUB}/resourcegroups/{group}/providers/Microsoft.Resources/deployments/main/operations"
        return self.call("GET", path)[1]["value"]  # type: ignore[no-any-return]


def template(resources: Any = (), outputs: Any = None, **extra: Any) -> dict[str, Any]:
    """A template around ``resources`` and ``outputs``."""
    return {
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "resources": list(resources) if not isinstance(resources, dict) else resources,
        "outputs": outputs or {},
        **extra,
    }


def storage(name: str, **extra: Any) -> dict[str, Any]:
    """A storage account declaration."""
    return {
        "type": "Microsoft.Storage/storageAccounts",
        "apiVersion": "2023-01-01",
        "name": name,
        "location": "westeurope",
        "sku": {"name": "Standard_LRS"},
        "kind": "StorageV2",
        "properties": {},
        **extra,
    }


def outputs_of(view: dict[str, Any]) -> dict[str, Any]:
    assert view["properties"]["provisioningState"] == "Succeeded", view["properties"].get("error")
    return {k: v.get("value") for k, v in view["properties"]["outputs"].items()}


def error_of(view: dict[str, Any]) -> dict[str, Any]:
    """The innermost error of a failed deployment."""
    error = view["properties"]["error"] if "properties" in view else view["error"]
    while error.get("details"):
        error = error["details"][0]
    return error  # type: ignore[no-any-return]


@pytest.fixture
def arm() -> Harness:
    """A fresh in-process emulator."""
    return Harness()


def sa_id(name: str, group: str = "rg") -> str:
    return f"{SUB}/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/{name}"


class TestCopyLoops:
    """Resource, property, variable and output copy loops."""

    def test_resource_copy_creates_every_instance(self, arm: Harness) -> None:
        """copy count 3 with copyIndex(1) creates sa1..sa3, each visible through GET."""
        view = arm.deploy(template([storage("[concat('sa', copyIndex(1))]", copy={"name": "accounts", "count": 3})]))
        assert view["properties"]["provisioningState"] == "Succeeded"
        assert all(arm.get(sa_id(f"sa{i}")) is not None for i in (1, 2, 3))
        assert arm.get(sa_id("sa0")) is None and arm.get(sa_id("sa4")) is None

    def test_serial_copy_and_dependson_on_a_loop_name(self, arm: Harness) -> None:
        """mode serial keeps order; a resource depending on the loop name comes after every instance."""
        loop = storage(
            "[concat('sa', copyIndex())]", copy={"name": "accounts", "count": 3, "mode": "serial", "batchSize": 1}
        )
        after = storage("last", dependsOn=["accounts"])
        arm.deploy(template([after, loop]))
        names = [op["properties"]["targetResource"]["resourceName"] for op in arm.operations()]
        assert names == ["sa0", "sa1", "sa2", "last"]

    def test_property_copy_builds_an_array(self, arm: Harness) -> None:
        """A copy block in properties makes the named array, copyIndex('subnets') per element."""
        vnet = {
            "type": "Microsoft.Network/virtualNetworks",
            "apiVersion": "2023-09-01",
            "name": "vnet",
            "location": "westeurope",
            "properties": {
                "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                "copy": [
                    {
                        "name": "subnets",
                        "count": 2,
                        "input": {
                            "name": "[concat('s', copyIndex('subnets'))]",
                            "properties": {"addressPrefix": "[cidrSubnet('10.0.0.0/16', 24, copyIndex('subnets'))]"},
                        },
                    }
                ],
            },
        }
        arm.deploy(template([vnet]))
        found = arm.get(f"{SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet")
        assert found is not None
        assert [s["name"] for s in found["properties"]["subnets"]] == ["s0", "s1"]
        assert found["properties"]["subnets"][1]["properties"]["addressPrefix"] == "10.0.1.0/24"
        assert arm.get(f"{SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/s1")

    def test_variable_and_output_copy(self, arm: Harness) -> None:
        """Variable copy defines an array variable; output copy returns an array."""
        body = template(
            outputs={
                "disks": {"type": "array", "value": "[variables('disks')]"},
                "names": {"type": "array", "copy": {"count": 2, "input": "[concat('n', copyIndex())]"}},
            },
            variables={"copy": [{"name": "disks", "count": 2, "input": {"lun": "[copyIndex('disks', 10)]"}}]},
        )
        assert outputs_of(arm.deploy(body)) == {"disks": [{"lun": 10}, {"lun": 11}], "names": ["n0", "n1"]}


class TestConditions:
    """A false condition deploys nothing and reference() to it fails."""

    def test_a_false_condition_creates_nothing_and_dependents_still_deploy(self, arm: Harness) -> None:
        """The skipped account does not exist; one depending on it still deploys."""
        body = template([storage("skipped", condition="[equals(1, 2)]"), storage("kept", dependsOn=["skipped"])])
        view = arm.deploy(body)
        assert view["properties"]["provisioningState"] == "Succeeded"
        assert arm.get(sa_id("skipped")) is None and arm.get(sa_id("kept")) is not None

    def test_reference_to_a_skipped_resource_fails_as_in_azure(self, arm: Harness) -> None:
        """reference() to a resource whose condition is false fails with ResourceNotFound."""
        body = template(
            [storage("skipped", condition="[false()]")],
            {"blob": {"type": "string", "value": "[reference('skipped').primaryEndpoints.blob]"}},
        )
        view = arm.deploy(body)
        assert view["properties"]["provisioningState"] == "Failed"
        assert view["properties"]["error"]["code"] == "ResourceNotFound"

    def test_a_loop_condition_sees_copy_index(self, arm: Harness) -> None:
        """A condition inside a copy loop is evaluated per instance."""
        arm.deploy(
            template(
                [
                    storage(
                        "[concat('c', copyIndex())]",
                        copy={"name": "l", "count": 4},
                        condition="[equals(mod(copyIndex(), 2), 0)]",
                    )
                ]
            )
        )
        assert [arm.get(sa_id(f"c{i}")) is not None for i in range(4)] == [True, False, True, False]


def nested(name: str, inner_template: dict[str, Any], *, scope: str | None = None, **extra: Any) -> dict[str, Any]:
    """A Microsoft.Resources/deployments resource with an inline template."""
    props: dict[str, Any] = {"mode": "Incremental", "template": inner_template}
    if scope is not None:
        props["expressionEvaluationOptions"] = {"scope": scope}
    props.update(extra.pop("properties", {}))
    return {
        "type": "Microsoft.Resources/deployments",
        "apiVersion": "2022-09-01",
        "name": name,
        "properties": props,
        **extra,
    }


class TestNestedDeployments:
    """Inline nested deployments in both scopes really create their resources."""

    def test_inner_scope_gets_its_own_parameters_and_exposes_outputs(self, arm: Harness) -> None:
        """An inner-scope nested deployment creates its account; its output is read by the parent."""
        inner = template(
            [storage("[parameters('name')]")],
            {"blob": {"type": "string", "value": "[reference(parameters('name')).primaryEndpoints.blob]"}},
            parameters={"name": {"type": "string"}},
        )
        module = nested(
            "module", inner, scope="inner", properties={"parameters": {"name": {"value": "[variables('n')]"}}}
        )
        body = template(
            [module],
            {"blob": {"type": "string", "value": "[reference('module').outputs.blob.value]"}},
            variables={"n": "innersa"},
        )
        assert outputs_of(arm.deploy(body)) == {"blob": "https://innersa.blob.core.windows.net/"}
        assert arm.get(sa_id("innersa")) is not None
        status, record = arm.call("GET", f"{SUB}/resourcegroups/rg/providers/Microsoft.Resources/deployments/module")
        assert status == 200 and record["properties"]["provisioningState"] == "Succeeded"

    def test_outer_scope_sees_the_parents_parameters_and_variables(self, arm: Harness) -> None:
        """An outer-scope nested template reads the parent's variables and parameters."""
        inner = template([storage("[concat(variables('prefix'), parameters('suffix'))]")])
        view = arm.deploy(
            template(
                [nested("outer", inner)], parameters={"suffix": {"type": "string"}}, variables={"prefix": "outer"}
            ),
            {"suffix": "sa"},
        )
        assert view["properties"]["provisioningState"] == "Succeeded"
        assert arm.get(sa_id("outersa")) is not None
        assert sa_id("outersa").lower() in [r["id"].lower() for r in view["properties"]["outputResources"]]

    def test_a_nested_deployment_targets_another_resource_group(self, arm: Harness) -> None:
        """With resourceGroup set, the nested resources land in that group."""
        arm.group("other")
        inner = template([storage("elsewhere")])
        view = arm.deploy(template([nested("cross", inner, scope="inner", resourceGroup="other")]))
        assert view["properties"]["provisioningState"] == "Succeeded"
        assert arm.get(sa_id("elsewhere", "other")) is not None and arm.get(sa_id("elsewhere")) is None

    def test_a_missing_target_group_fails_the_deployment(self, arm: Harness) -> None:
        """A nested deployment into a group that does not exist fails; nothing is reported created."""
        view = arm.deploy(template([nested("cross", template([storage("nowhere")]), resourceGroup="missing")]))
        assert view["properties"]["provisioningState"] == "Failed"
        assert error_of(view)["code"] == "ResourceGroupNotFound"
        assert arm.get(sa_id("nowhere", "missing")) is None

    def test_a_failing_nested_resource_fails_the_parent(self, arm: Harness) -> None:
        """A failure inside the nested template fails the parent with DeploymentFailed."""
        view = arm.deploy(template([nested("bad", template([storage("willfail")]))]))
        assert view["properties"]["provisioningState"] == "Failed"
        assert error_of(view)["code"] == "InvalidResourceName"


class TestReferenceAndList:
    """reference() and list*() answer with the providers' read-only properties."""

    def test_read_only_properties_of_common_types(self, arm: Harness) -> None:
        """Endpoints, host names, FQDNs and ids that templates commonly read."""
        resources = [
            storage("sa1"),
            {
                "type": "Microsoft.KeyVault/vaults",
                "apiVersion": "2023-02-01",
                "name": "kv1",
                "location": "westeurope",
                "properties": {},
            },
            {
                "type": "Microsoft.Web/sites",
                "apiVersion": "2022-09-01",
                "name": "app1",
                "location": "westeurope",
                "properties": {},
            },
            {
                "type": "Microsoft.Sql/servers",
                "apiVersion": "2022-05-01-preview",
                "name": "sql1",
                "location": "westeurope",
                "properties": {},
            },
            {
                "type": "Microsoft.DocumentDB/databaseAccounts",
                "apiVersion": "2023-04-15",
                "name": "cosmos1",
                "location": "westeurope",
                "properties": {},
            },
            {
                "type": "Microsoft.ContainerRegistry/registries",
                "apiVersion": "2023-01-01-preview",
                "name": "acr1",
                "location": "westeurope",
                "properties": {},
            },
            {
                "type": "Microsoft.Insights/components",
                "apiVersion": "2020-02-02",
                "name": "ai1",
                "location": "westeurope",
                "properties": {},
            },
            {
                "type": "Microsoft.Cache/redis",
                "apiVersion": "2023-04-01",
                "name": "redis1",
                "location": "westeurope",
                "properties": {},
            },
            {
                "type": "Microsoft.Network/publicIPAddresses",
                "apiVersion": "2023-09-01",
                "name": "ip1",
                "location": "westeurope",
                "properties": {"dnsSettings": {"domainNameLabel": "myapp"}},
            },
            {
                "type": "Microsoft.Example/widgets",
                "apiVersion": "2024-01-01",
                "name": "w1",
                "properties": {"color": "blue"},
            },
        ]
        outputs = {
            "blob": "[reference('sa1').primaryEndpoints.blob]",
            "vault": "[reference('kv1').vaultUri]",
            "host": "[reference('app1').defaultHostName]",
            "sql": "[reference('sql1').fullyQualifiedDomainName]",
            "cosmos": "[reference('cosmos1').documentEndpoint]",
            "acr": "[reference('acr1').loginServer]",
            "redis": "[reference('redis1').hostName]",
            "fqdn": "[reference('ip1').dnsSettings.fqdn]",
            "widget": "[reference('w1').color]",
            "state": "[reference('w1').provisioningState]",
        }
        found = outputs_of(
            arm.deploy(template(resources, {k: {"type": "string", "value": v} for k, v in outputs.items()}))
        )
        assert found == {
            "blob": "https://sa1.blob.core.windows.net/",
            "vault": "https://kv1.vault.azure.net/",
            "host": "app1.azurewebsites.net",
            "sql": "sql1.database.windows.net",
            "cosmos": "https://cosmos1.documents.azure.com:443/",
            "acr": "acr1.azurecr.io",
            "redis": "redis1.redis.cache.windows.net",
            "fqdn": "myapp.westeurope.cloudapp.azure.com",
            "widget": "blue",
            "state": "Succeeded",
        }

    def test_list_functions_answer_with_provider_shapes(self, arm: Harness) -> None:
        """listKeys of storage and cosmos, listConnectionStrings, and an implied service bus rule."""
        resources = [
            storage("sa2"),
            {
                "type": "Microsoft.DocumentDB/databaseAccounts",
                "apiVersion": "2023-04-15",
                "name": "cosmos2",
                "location": "westeurope",
                "properties": {},
            },
            {
                "type": "Microsoft.ServiceBus/namespaces",
                "apiVersion": "2022-10-01-preview",
                "name": "bus2",
                "location": "westeurope",
                "properties": {},
            },
        ]
        rule = "[resourceId('Microsoft.ServiceBus/namespaces/authorizationRules', 'bus2', 'RootManageSharedAccessKey')]"
        outputs = {
            "key": {"type": "string", "value": "[listKeys('sa2', '2023-01-01').keys[0].value]"},
            "master": {"type": "string", "value": "[listKeys('cosmos2', '2023-04-15').primaryMasterKey]"},
            "cs": {
                "type": "string",
                "value": "[listConnectionStrings('cosmos2', '2023-04-15').connectionStrings[0].connectionString]",
            },
            "bus": {
                "type": "string",
                "value": f"[listKeys({rule[1:-1]}, '2022-10-01-preview').primaryConnectionString]",
            },
        }
        found = outputs_of(arm.deploy(template(resources, outputs)))
        assert len(found["key"]) == 88
        assert found["cs"].startswith(
            "AccountEndpoint=https://cosmos2.documents.azure.com:443/;AccountKey=" + found["master"]
        )
        assert found["bus"].startswith(
            "Endpoint=sb://bus2.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;"
        )

    def test_identities_get_principal_ids(self, arm: Harness) -> None:
        """A user-assigned identity and a system-assigned identity expose principalId."""
        identity = {
            "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
            "apiVersion": "2023-01-31",
            "name": "id1",
            "location": "westeurope",
        }
        site = {
            "type": "Microsoft.Web/sites",
            "apiVersion": "2022-09-01",
            "name": "app2",
            "location": "westeurope",
            "identity": {"type": "SystemAssigned"},
            "properties": {},
        }
        outputs = {
            "user": {"type": "string", "value": "[reference('id1').principalId]"},
            "system": {"type": "string", "value": "[reference('app2', '2022-09-01', 'Full').identity.principalId]"},
        }
        found = outputs_of(arm.deploy(template([identity, site], outputs)))
        assert len(found["user"]) == 36 and len(found["system"]) == 36 and found["user"] != found["system"]

    def test_an_implicit_dependency_through_reference(self, arm: Harness) -> None:
        """A resource reading another with reference() deploys after it without dependsOn."""
        reader = storage("reader", tags={"blob": "[reference('source').primaryEndpoints.blob]"})
        view = arm.deploy(template([reader, storage("source")]))
        assert view["properties"]["provisioningState"] == "Succeeded"
        found = arm.get(sa_id("reader"))
        assert found is not None and found["tags"]["blob"] == "https://source.blob.core.windows.net/"

    def test_reference_to_a_resource_that_does_not_exist(self, arm: Harness) -> None:
        """A resource id nobody deployed fails with ResourceNotFound."""
        body = template(
            outputs={
                "x": {
                    "type": "object",
                    "value": "[reference(resourceId('Microsoft.Storage/storageAccounts', 'ghost'), '2023-01-01')]",
                }
            }
        )
        view = arm.deploy(body)
        assert view["properties"]["provisioningState"] == "Failed"
        assert "Microsoft.Storage/storageAccounts/ghost" in view["properties"]["error"]["message"]


class TestTemplateSyntax:
    """Comments, user-defined functions, symbolic names and parameter defaults."""

    def test_comments_and_trailing_commas_are_accepted(self, arm: Harness) -> None:
        """// and /* */ comments and trailing commas in the template text deploy like Azure."""
        text = """{
          // a line comment
          "$schema": "SCHEMA",
          "contentVersion": "1.0.0.0", /* a block
          comment */
          "resources": [
            {"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-01-01", "name": "commented",
             "location": "westeurope", "properties": {},},
          ],
          "outputs": {"url": {"type": "string", "value": "// not a comment"},},
        }""".replace("SCHEMA", SCHEMA)
        assert outputs_of(arm.deploy(text)) == {"url": "// not a comment"}
        assert arm.get(sa_id("commented")) is not None

    def test_user_defined_functions_and_empty_functions(self, arm: Harness) -> None:
        """functions: [] is accepted; a namespace member is called as ns.member(...)."""
        assert arm.deploy(template(functions=[]))["properties"]["provisioningState"] == "Succeeded"
        udf = [
            {
                "namespace": "contoso",
                "members": {
                    "uniqueName": {
                        "parameters": [{"name": "prefix", "type": "string"}],
                        "output": {"type": "string", "value": "[concat(toLower(parameters('prefix')), 'x1')]"},
                    }
                },
            }
        ]
        body = template(
            [storage("[contoso.uniqueName('UDF')]")],
            {"n": {"type": "string", "value": "[contoso.uniqueName('Out')]"}},
            functions=udf,
        )
        assert outputs_of(arm.deploy(body)) == {"n": "outx1"}
        assert arm.get(sa_id("udfx1")) is not None

    def test_symbolic_names_in_language_version_2(self, arm: Harness) -> None:
        """languageVersion 2.0: resources by symbolic name, dependsOn and reference by symbol, existing ones."""
        arm.deploy(template([storage("preexisting")]))
        body = template(
            {
                "first": storage("symfirst"),
                "second": storage(
                    "symsecond", dependsOn=["first"], tags={"peer": "[reference('first').primaryEndpoints.blob]"}
                ),
                "old": {
                    "type": "Microsoft.Storage/storageAccounts",
                    "apiVersion": "2023-01-01",
                    "name": "preexisting",
                    "existing": True,
                },
            },
            {
                "peer": {"type": "string", "value": "[reference('second', '2023-01-01', 'full').tags.peer]"},
                "old": {"type": "string", "value": "[reference('old').primaryEndpoints.blob]"},
                "info": {"type": "string", "value": "[resourceInfo('first').name]"},
            },
            languageVersion="2.0",
        )
        assert outputs_of(arm.deploy(body)) == {
            "peer": "https://symfirst.blob.core.windows.net/",
            "old": "https://preexisting.blob.core.windows.net/",
            "info": "symfirst",
        }

    def test_a_default_may_read_a_later_parameter(self, arm: Harness) -> None:
        """Parameter defaults are bound in dependency order, not declaration order."""
        body = template(
            outputs={"a": {"type": "string", "value": "[parameters('a')]"}},
            parameters={
                "a": {"type": "string", "defaultValue": "[concat(parameters('b'), '!')]"},
                "b": {"type": "string", "defaultValue": "b"},
            },
        )
        assert outputs_of(arm.deploy(body)) == {"a": "b!"}

    def test_utc_now_only_in_parameter_defaults(self, arm: Harness) -> None:
        """utcNow in a default works; in a variable the deployment is refused."""
        good = template(
            outputs={"t": {"type": "string", "value": "[parameters('t')]"}},
            parameters={"t": {"type": "string", "defaultValue": "[utcNow('yyyy')]"}},
        )
        assert len(outputs_of(arm.deploy(good))["t"]) == 4
        bad = template(outputs={"t": {"type": "string", "value": "[variables('t')]"}}, variables={"t": "[utcNow()]"})
        view = arm.deploy(bad)
        assert view["properties"]["provisioningState"] == "Failed"
        assert "'utcNow' is not expected at this location" in view["properties"]["error"]["message"]


class TestUnsupportedAndScopes:
    """Features the sandbox lacks say so; subscription deployments and listings work."""

    def test_unsupported_features_say_so(self, arm: Harness) -> None:
        """A non-loopback templateLink and managementGroup() answer SandboxUnsupported, not 'not valid'."""
        linked = template([nested("remote", {}, properties={"templateLink": {"uri": "https://example.com/t.json"}})])
        del linked["resources"][0]["properties"]["template"]
        view = arm.deploy(linked)
        error = error_of(view)
        assert (
            error["code"] == "SandboxUnsupported" and "is not supported by the strataflow sandbox" in error["message"]
        )
        view = arm.deploy(template(outputs={"m": {"type": "object", "value": "[managementGroup()]"}}))
        assert view["properties"]["error"]["code"] == "SandboxUnsupported"
        assert "not valid" not in view["properties"]["error"]["message"]

    def test_a_subscription_deployment_creates_a_group_and_deploys_into_it(self, arm: Harness) -> None:
        """A subscription-scope template creates a resource group and a nested deployment fills it."""
        body = template(
            [
                {
                    "type": "Microsoft.Resources/resourceGroups",
                    "apiVersion": "2022-09-01",
                    "name": "made",
                    "location": "westeurope",
                },
                nested(
                    "fill", template([storage("insidemade")]), scope="inner", resourceGroup="made", dependsOn=["made"]
                ),
            ]
        )
        path = f"{SUB}/providers/Microsoft.Resources/deployments/sub"
        status, _ = arm.call(
            "PUT", path, {"location": "westeurope", "properties": {"mode": "Incremental", "template": body}}
        )
        assert status == 201
        for _ in range(3):
            _, view = arm.call("GET", path)
        assert view["properties"]["provisioningState"] == "Succeeded", view["properties"].get("error")
        assert arm.emulator.find_group("made") is not None
        assert arm.get(sa_id("insidemade", "made")) is not None

    def test_resources_are_listed_by_group(self, arm: Harness) -> None:
        """GET .../resources lists what the deployments created."""
        arm.deploy(template([storage("listed")]))
        status, body = arm.call("GET", f"{SUB}/resourcegroups/rg/resources")
        assert status == 200 and [r["name"] for r in body["value"]] == ["listed"]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """``tmp_path`` served over HTTP on 127.0.0.1."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None  # type: ignore[assignment]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_a_linked_template_on_loopback_deploys(arm: Harness, served: str, tmp_path: Path) -> None:
    """A templateLink to a template served on 127.0.0.1 is fetched and its resources created."""
    (tmp_path / "child.json").write_text(
        json.dumps(template([storage("[parameters('n')]")], parameters={"n": {"type": "string"}})), encoding="utf-8"
    )
    link = nested(
        "linked",
        {},
        properties={"templateLink": {"uri": served + "child.json"}, "parameters": {"n": {"value": "linkedsa"}}},
    )
    del link["properties"]["template"]
    view = arm.deploy(template([link]))
    assert view["properties"]["provisioningState"] == "Succeeded", view["properties"].get("error")
    assert arm.get(sa_id("linkedsa")) is not None
