"""The arm backend with the real Azure SDK clients against the sandbox ARM emulator over HTTPS."""

from __future__ import annotations

import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from strataflow.backends.arm.backend import ArmBackend
from strataflow.errors import AccountMismatch, DeploymentFailed, TemplateError, TransientError
from strataflow.refs import KNOWN_AFTER_APPLY
from tests.support.arm import (
    SAMPLE_CONFIG,
    SAMPLE_TEMPLATES,
    ArmSandbox,
    arm_sandbox,  # noqa: F401 - the session fixture, used by name
    make_run,
    minimal_template,
    vnet_template,
    write_template,
)

FAST = {"polling_interval": 0.02, "backoff": 0.05}


@pytest.fixture
def sandbox(arm_sandbox: ArmSandbox) -> ArmSandbox:  # noqa: F811 - the imported fixture
    """The session's emulator, with no fault left over from another test."""
    arm_sandbox.emulator.faults.clear()
    return arm_sandbox


@pytest.fixture
def backend() -> ArmBackend:
    return ArmBackend(**FAST)


@pytest.fixture
def vnet(tmp_path: Path) -> str:
    return write_template(tmp_path, "vnet", vnet_template())


def vnet_id(sandbox: ArmSandbox, group: str, name: str) -> str:
    return (
        f"/subscriptions/{sandbox.subscription}/resourceGroups/{group}"
        f"/providers/Microsoft.Network/virtualNetworks/{name}"
    )


class TestApply:
    """apply deploys the template and returns its outputs, unwrapped."""

    def test_apply_creates_the_deployment_and_returns_unwrapped_outputs(
        self, sandbox: ArmSandbox, backend: ArmBackend, tmp_path: Path, vnet: str
    ) -> None:
        """Outputs come back as plain values; secure outputs are marked sensitive and carry no value."""
        log: list[str] = []
        run = make_run(sandbox, tmp_path, vnet, parameters={"name": "vnet-a", "addressPrefix": "10.1.0.0/16"}, log=log)
        outcome = backend.apply(run)
        group = str(run.target.resource_group)  # type: ignore[union-attr]
        assert outcome.outputs == {"vnetId": vnet_id(sandbox, group, "vnet-a"), "addressPrefixes": ["10.1.0.0/16"]}
        assert outcome.sensitive == frozenset({"token"})
        assert outcome.summary == ["deployed Microsoft.Network/virtualNetworks/vnet-a"]
        assert sandbox.emulator.find_group(group) is not None
        resource = sandbox.emulator.find_resource(vnet_id(sandbox, group, "vnet-a"))
        assert resource is not None and resource["location"] == "westeurope"
        assert backend.exists(run) and backend.outputs(run)["vnetId"] == outcome.outputs["vnetId"]
        assert any("deploying strata-dev-network" in line for line in log)

    def test_a_second_apply_succeeds_with_the_same_outputs(
        self, sandbox: ArmSandbox, backend: ArmBackend, tmp_path: Path, vnet: str
    ) -> None:
        """Applying the same template twice is an Incremental redeploy, not an error."""
        run = make_run(sandbox, tmp_path, vnet)
        first = backend.apply(run)
        second = backend.apply(run)
        assert second.outputs == first.outputs

    def test_a_failing_resource_raises_deployment_failed_with_azures_error(
        self, sandbox: ArmSandbox, backend: ArmBackend, tmp_path: Path, vnet: str
    ) -> None:
        """The error names the failed operation's code and message, not a generic DeploymentFailed."""
        run = make_run(sandbox, tmp_path, vnet, parameters={"name": "vnet-fail"})
        with pytest.raises(DeploymentFailed) as failed:
            backend.apply(run)
        message = str(failed.value)
        assert "InvalidResourceName: Resource name vnet-fail is invalid" in message
        assert "Microsoft.Network/virtualNetworks/vnet-fail" in message
        assert failed.value.context["component"] == "network"
        assert not backend.exists(run)

    def test_secret_parameters_never_reach_the_log(
        self, sandbox: ArmSandbox, backend: ArmBackend, tmp_path: Path, vnet: str
    ) -> None:
        """A secret parameter goes to Azure but into no log line or error message."""
        log: list[str] = []
        secret = "p4ss-" + uuid.uuid4().hex
        run = make_run(sandbox, tmp_path, vnet, parameters={"name": "vnet-fail", "token": secret}, log=log)
        run.secrets = frozenset({secret})
        with pytest.raises(DeploymentFailed) as failed:
            backend.apply(run)
        assert secret not in str(failed.value)
        assert all(secret not in line and "test-token" not in line for line in log)


class TestBicep:
    """A .bicep template is compiled by the bicep CLI before it goes to ARM."""

    def test_a_bicep_template_is_built_with_the_bicep_cli(
        self, sandbox: ArmSandbox, backend: ArmBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`bicep build --stdout FILE` output is what gets deployed."""
        compiled = tmp_path / "compiled.json"
        compiled.write_text(json.dumps(vnet_template()), encoding="utf-8")
        tools = tmp_path / "bin"
        tools.mkdir()
        fake = tools / "bicep"
        fake.write_text(f'#!/bin/sh\n[ "$1 $2" = "build --stdout" ] && [ -f "$3" ] && cat {compiled}\n')
        fake.chmod(0o755)
        (tmp_path / "templates").mkdir()
        (tmp_path / "templates" / "vnet.bicep").write_text(
            "resource vnet 'Microsoft.Network/virtualNetworks@2023-09-01' = {}"
        )
        monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
        outcome = backend.apply(make_run(sandbox, tmp_path, "templates/vnet.bicep", parameters={"name": "vnet-bicep"}))
        assert outcome.outputs["vnetId"].endswith("/virtualNetworks/vnet-bicep")

    def test_a_bicep_template_without_the_cli_is_a_template_error(
        self, sandbox: ArmSandbox, backend: ArmBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without bicep on PATH the error says what to install, before anything changes."""
        (tmp_path / "templates").mkdir()
        (tmp_path / "templates" / "vnet.bicep").write_text("")
        monkeypatch.setenv("PATH", str(tmp_path))
        run = make_run(sandbox, tmp_path, "templates/vnet.bicep")
        with pytest.raises(TemplateError, match="install the bicep CLI"):
            backend.apply(run)
        assert sandbox.emulator.find_group(str(run.target.resource_group)) is None  # type: ignore[union-attr]


class TestPlan:
    """plan validates and runs what-if, changing nothing."""

    def test_plan_before_the_group_exists_lists_what_will_be_created(
        self, sandbox: ArmSandbox, backend: ArmBackend, tmp_path: Path, vnet: str
    ) -> None:
        """Without its own resource group, plan lists the group and the template's resources and creates nothing."""
        group = f"rg-owned-{uuid.uuid4().hex[:6]}"
        run = make_run(sandbox, tmp_path, vnet, action="plan", resource_group=group)
        outcome = backend.plan(run)
        assert outcome.summary[0] == f"+ Create Microsoft.Resources/resourceGroups/{group} (westeurope)"
        assert outcome.changes == 2 and not outcome.no_changes
        assert sandbox.emulator.find_group(group) is None

    def test_a_missing_shared_group_is_not_each_components_change(
        self, sandbox: ArmSandbox, backend: ArmBackend, tmp_path: Path, vnet: str
    ) -> None:
        """The environment's group is every component's: plan lists only the template's resources and says so in the log."""
        logged: list[str] = []
        run = make_run(sandbox, tmp_path, vnet, action="plan", log=logged)
        outcome = backend.plan(run)
        group = str(run.target.resource_group)  # type: ignore[union-attr]
        assert not any("resourceGroups" in line for line in outcome.summary)
        assert outcome.changes == 1 and not outcome.no_changes
        assert any(f"resource group {group} does not exist yet" in line for line in logged)
        assert sandbox.emulator.find_group(group) is None

    def test_plan_shows_what_if_lines_and_no_changes_when_nothing_changes(
        self, sandbox: ArmSandbox, backend: ArmBackend, tmp_path: Path, vnet: str
    ) -> None:
        """What-if lines name each resource; an unchanged deployment plans as no_changes."""
        target = sandbox.target()
        backend.apply(make_run(sandbox, tmp_path, vnet, target=target, parameters={"name": "vnet-p"}))
        same = backend.plan(make_run(sandbox, tmp_path, vnet, target=target, parameters={"name": "vnet-p"}))
        assert same.no_changes and same.changes == 0
        assert same.summary == ["= NoChange Microsoft.Network/virtualNetworks/vnet-p"]
        wider = {"name": "vnet-p", "addressPrefix": "10.9.0.0/16"}
        changed = backend.plan(make_run(sandbox, tmp_path, vnet, target=target, parameters=wider))
        assert changed.changes == 1 and not changed.no_changes
        assert changed.summary[0].startswith("~ Modify Microsoft.Network/virtualNetworks/vnet-p (properties: ")
        assert "properties.addressSpace.addressPrefixes[0]" in changed.summary[0]
        other = backend.plan(make_run(sandbox, tmp_path, vnet, target=target, parameters={"name": "vnet-q"}))
        assert "+ Create Microsoft.Network/virtualNetworks/vnet-q" in other.summary

    def test_inputs_known_after_apply_skip_what_if(
        self, sandbox: ArmSandbox, backend: ArmBackend, tmp_path: Path, vnet: str
    ) -> None:
        """An input that is still '(known after apply)' cannot go to ARM: the template's resources are listed."""
        run = make_run(sandbox, tmp_path, vnet, action="plan", parameters={"addressPrefix": KNOWN_AFTER_APPLY})
        before = len(sandbox.emulator.requests_to("POST"))
        outcome = backend.plan(run)
        assert outcome.summary == ["~ Microsoft.Network/virtualNetworks [parameters('name')] will be created/updated"]
        assert len(sandbox.emulator.requests_to("POST")) == before

    def test_an_invalid_template_is_a_template_error(
        self, sandbox: ArmSandbox, backend: ArmBackend, tmp_path: Path, vnet: str
    ) -> None:
        """Validation failures carry Azure's InvalidTemplate code and message."""
        target = sandbox.target()
        backend.apply(make_run(sandbox, tmp_path, vnet, target=target))
        bad = write_template(tmp_path, "bad", minimal_template(outputs={"x": {"type": "string", "value": "[nope()]"}}))
        with pytest.raises(TemplateError, match=r"InvalidTemplate: .*'nope' is not valid"):
            backend.plan(make_run(sandbox, tmp_path, bad, target=target, component="bad"))


class TestSubscription:
    """The environment's subscription is checked before anything changes."""

    def test_a_subscription_the_credentials_cannot_see_is_refused_before_any_change(
        self, sandbox: ArmSandbox, backend: ArmBackend, tmp_path: Path, vnet: str
    ) -> None:
        """AccountMismatch names the subscription, and no resource group or deployment is created."""
        other = "99999999-0000-4000-8000-000000000099"
        run = make_run(sandbox, tmp_path, vnet, target=sandbox.target(subscription_id=other))
        with pytest.raises(AccountMismatch, match=f"subscription {other}.*SubscriptionNotFound"):
            backend.apply(run)
        with pytest.raises(AccountMismatch):
            backend.destroy(run)
        assert sandbox.emulator.find_group(str(run.target.resource_group)) is None  # type: ignore[union-attr]
        assert sandbox.emulator.requests_to("PUT", other) == []
        assert sandbox.emulator.requests_to("DELETE", other) == []


class TestRetries:
    """Throttling and 5xx are retried (honouring Retry-After); permanent errors are not."""

    def test_a_429_with_retry_after_is_retried_and_succeeds(
        self, sandbox: ArmSandbox, backend: ArmBackend, tmp_path: Path, vnet: str
    ) -> None:
        """The SDK's retry policy waits the Retry-After seconds, then the deployment goes through."""
        run = make_run(sandbox, tmp_path, vnet)
        group = str(run.target.resource_group)  # type: ignore[union-attr]
        sandbox.emulator.inject_fault(429, retry_after=1, method="PUT", path_contains=f"{group}/providers")
        started = time.monotonic()
        outcome = backend.apply(run)
        assert time.monotonic() - started >= 1.0
        assert [r.status for r in sandbox.emulator.requests_to("PUT", f"{group}/providers/")] == [429, 201]
        assert outcome.outputs["vnetId"].endswith("/virtualNetworks/vnet-dev")

    def test_the_backend_retries_when_the_sdk_has_given_up(
        self, sandbox: ArmSandbox, tmp_path: Path, vnet: str
    ) -> None:
        """With no SDK retries left, the backend's own bounded retry honours Retry-After."""
        backend = ArmBackend(sdk_retries=0, attempts=3, **FAST)
        log: list[str] = []
        run = make_run(sandbox, tmp_path, vnet, log=log)
        backend.apply(run)
        sandbox.emulator.inject_fault(503, count=2, retry_after=0.1, method="GET", path_contains="/deployments/")
        assert backend.exists(run)
        retries = [line for line in log if "retrying in 0.1 s" in line]
        assert len(retries) == 2 and "ServiceUnavailable" in retries[0]

    def test_transient_errors_surface_as_transient_after_bounded_retries(
        self, sandbox: ArmSandbox, tmp_path: Path, vnet: str
    ) -> None:
        """When throttling outlasts every retry, TransientError carries Retry-After for the task's retry."""
        backend = ArmBackend(sdk_retries=1, attempts=2, **FAST)
        run = make_run(sandbox, tmp_path, vnet)
        backend.apply(run)
        sandbox.emulator.inject_fault(429, count=10, retry_after=0.1, method="GET", path_contains="/deployments/")
        with pytest.raises(TransientError) as throttled:
            backend.outputs(run)
        assert throttled.value.retry_after == pytest.approx(0.1)
        assert "TooManyRequests" in str(throttled.value)
        assert len(sandbox.emulator.requests_to("GET", "/deployments/")) >= 4
        sandbox.emulator.faults.clear()

    def test_a_permanent_400_is_not_retried(self, sandbox: ArmSandbox, backend: ArmBackend, tmp_path: Path) -> None:
        """An invalid template is refused once: one PUT, a TemplateError, no retry."""
        bad = write_template(tmp_path, "bad", minimal_template(outputs={"x": {"type": "string", "value": "[nope()]"}}))
        run = make_run(sandbox, tmp_path, bad)
        group = str(run.target.resource_group)  # type: ignore[union-attr]
        with pytest.raises(TemplateError, match="InvalidTemplate"):
            backend.apply(run)
        assert [r.status for r in sandbox.emulator.requests_to("PUT", f"{group}/providers/")] == [400]


class TestDestroy:
    """destroy removes what the component created."""

    def test_destroy_removes_the_resource_group_the_component_owns(
        self, sandbox: ArmSandbox, backend: ArmBackend, tmp_path: Path, vnet: str
    ) -> None:
        """An owned group is created in the environment's location and deleted whole."""
        owned = f"rg-owned-{uuid.uuid4().hex[:6]}"
        run = make_run(sandbox, tmp_path, vnet, resource_group=owned, target=sandbox.target(location="northeurope"))
        backend.apply(run)
        group = sandbox.emulator.find_group(owned)
        assert group is not None and group["location"] == "northeurope"
        assert group["tags"]["strata-component"] == "network"
        outcome = backend.destroy(run)
        assert outcome.summary == [f"- Delete Microsoft.Resources/resourceGroups/{owned}"]
        assert sandbox.emulator.find_group(owned) is None
        assert backend.destroy(run).no_changes

    def test_destroy_in_a_shared_group_deletes_only_the_deployments_resources(
        self, sandbox: ArmSandbox, backend: ArmBackend, tmp_path: Path, vnet: str
    ) -> None:
        """In a shared group the deployment's resources and record go; the group and others stay."""
        target = sandbox.target()
        group = str(target.resource_group)
        mine = make_run(sandbox, tmp_path, vnet, target=target, parameters={"name": "vnet-mine"})
        theirs = make_run(sandbox, tmp_path, vnet, target=target, component="other", parameters={"name": "vnet-other"})
        backend.apply(mine)
        backend.apply(theirs)
        outcome = backend.destroy(mine)
        assert outcome.summary == ["- Delete Microsoft.Network/virtualNetworks/vnet-mine"]
        assert sandbox.emulator.find_resource(vnet_id(sandbox, group, "vnet-mine")) is None
        assert sandbox.emulator.find_resource(vnet_id(sandbox, group, "vnet-other")) is not None
        assert not backend.exists(mine) and backend.exists(theirs)
        assert backend.destroy(mine).no_changes


class TestDrift:
    """drift compares the applied template with what exists now."""

    def test_drift_is_detected_after_an_out_of_band_change(
        self, sandbox: ArmSandbox, backend: ArmBackend, tmp_path: Path, vnet: str
    ) -> None:
        """A property changed outside strataflow is drift; so is a deleted resource."""
        run = make_run(sandbox, tmp_path, vnet, parameters={"name": "vnet-d"})
        backend.apply(run)
        clean = backend.drift(run)
        assert clean.supported and not clean.drifted and clean.resources == []
        resource_id = vnet_id(sandbox, str(run.target.resource_group), "vnet-d")  # type: ignore[union-attr]
        sandbox.emulator.patch_resource(
            resource_id, {"properties": {"addressSpace": {"addressPrefixes": ["10.7.0.0/16"]}}}
        )
        changed = backend.drift(run)
        assert changed.drifted
        assert changed.resources == [
            "Microsoft.Network/virtualNetworks/vnet-d: changed (properties.addressSpace.addressPrefixes[0])"
        ]
        sandbox.emulator.delete_resource(resource_id)
        assert backend.drift(run).resources == [
            "Microsoft.Network/virtualNetworks/vnet-d: missing (deleted outside strataflow)"
        ]


class TestSamplePlatform:
    """The sample platform's Azure templates deploy in dependency order, outputs feeding inputs."""

    def test_every_sample_template_deploys_with_outputs_flowing_downstream(
        self, sandbox: ArmSandbox, backend: ArmBackend
    ) -> None:
        """network, identity, registry, observability, clusters, addons, platform: each gets its upstream's outputs."""
        target = sandbox.target()
        outputs: dict[str, dict[str, Any]] = {}

        def deploy(component: str, parameters: dict[str, Any]) -> dict[str, Any]:
            template = f"{SAMPLE_TEMPLATES}/{component}.json"
            run = make_run(sandbox, SAMPLE_CONFIG, template, component=component, target=target, parameters=parameters)
            outputs[component] = backend.apply(run).outputs
            return outputs[component]

        network = deploy("network", {"addressPrefix": "10.20.0.0/16"})
        identity = deploy("identity", {})
        registry = deploy("registry", {})
        deploy("observability", {"alertEmail": "oncall@example.com"})
        clusters = deploy(
            "clusters",
            {"subnetId": network["nodesSubnetId"], "identityId": identity["clusterIdentityId"], "nodeCount": 3},
        )
        addons = deploy("addons", {"clusterName": clusters["clusterName"]})
        platform = deploy(
            "platform",
            {"registryLoginServer": registry["loginServer"], "fluxExtensionId": addons["fluxExtensionId"]},
        )
        assert network["subnetIds"][0] == network["nodesSubnetId"] and len(network["subnetIds"]) == 2
        assert network["nodesSubnetId"].endswith("/subnets/nodes")
        assert registry["loginServer"].endswith(".azurecr.io")
        assert set(outputs["observability"]) >= {"workspaceId", "actionGroupId"}
        assert clusters["clusterId"].endswith(f"/managedClusters/{clusters['clusterName']}")
        assert addons["fluxExtensionId"].startswith(clusters["clusterId"] + "/providers/")
        assert platform["endpoint"].startswith("https://") and platform["endpoint"].endswith(".cloudapp.azure.com")
        cluster = sandbox.emulator.find_resource(clusters["clusterId"])
        assert cluster is not None
        pool = cluster["properties"]["agentPoolProfiles"][0]
        assert pool["count"] == 3 and pool["vnetSubnetID"] == network["nodesSubnetId"]
        assert identity["clusterIdentityId"] in cluster["identity"]["userAssignedIdentities"]
        again = backend.plan(
            make_run(
                sandbox,
                SAMPLE_CONFIG,
                f"{SAMPLE_TEMPLATES}/network.json",
                target=target,
                action="plan",
                parameters={"addressPrefix": "10.20.0.0/16"},
            )
        )
        assert again.no_changes, again.summary
        for component in reversed(list(outputs)):
            template = f"{SAMPLE_TEMPLATES}/{component}.json"
            backend.destroy(make_run(sandbox, SAMPLE_CONFIG, template, component=component, target=target))
        assert sandbox.emulator.resources_in(sandbox.subscription, str(target.resource_group)) == []


class TestConcurrency:
    """Components deploy concurrently from threads through one backend and its shared clients."""

    def test_concurrent_applies_from_threads(self, sandbox: ArmSandbox, backend: ArmBackend, tmp_path: Path) -> None:
        """Six components applied at once into one shared group all succeed with their own outputs."""
        template = write_template(tmp_path, "vnet", vnet_template())
        target = sandbox.target()
        runs = [
            make_run(sandbox, tmp_path, template, component=f"c{i}", target=target, parameters={"name": f"vnet-{i}"})
            for i in range(6)
        ]
        with ThreadPoolExecutor(max_workers=6) as pool:
            outcomes = list(pool.map(backend.apply, runs))
        assert [o.outputs["vnetId"].rsplit("/", 1)[-1] for o in outcomes] == [f"vnet-{i}" for i in range(6)]
