"""The pure cost estimate: the sample's templates priced with a fake price book, changes, the budget gate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from strataflow.config import Budget, Environment
from strataflow.cost import arm as armcost
from strataflow.cost import aws as awscost
from strataflow.cost import budget_action, budget_gate, change_lines, estimate, monthly_changes, total_change
from strataflow.cost.estimate import component_usages, price_usage
from strataflow.cost.model import HOURS_PER_MONTH, Usage
from strataflow.errors import ConfigError
from strataflow.load import load_platform
from strataflow.templateparams.arm import load_template_document as load_arm
from strataflow.templateparams.cloudformation import load_template_document as load_cfn
from strataflow.templateparams.model import TemplateParamsError
from tests.support.pricing import SAMPLE, T3_MEDIUM_US, FakePrices, applied, sample_prices

AWS_COMPONENTS = ["network", "identity", "registry", "clusters", "observability", "addons", "platform"]


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A copy of the sample platform the test may edit."""
    root = tmp_path / "config"
    shutil.copytree(SAMPLE, root)
    return root


def _set(root: Path, env: str, **variables: Any) -> None:
    path = root / "environments" / f"{env}.yaml"
    data = yaml.safe_load(path.read_text())
    data.setdefault("variables", {}).update(variables)
    path.write_text(yaml.safe_dump(data))


def _dev_parameters(node_count: int = 2, nat: str = "false") -> dict[str, dict[str, Any]]:
    """What an apply of dev records for the priced AWS components (upstream outputs filled in)."""
    return {
        "network": {"VpcCidr": "10.10.0.0/16", "CreateNatGateway": nat},
        "identity": {"ParameterPathPrefix": "/strata/dev"},
        "registry": {"RepositoryName": "strata-dev-platform"},
        "clusters": {"SubnetIds": "subnet-1,subnet-2", "NodeCount": node_count},
        "observability": {"VpcId": "vpc-1", "RetentionInDays": 7},
        "addons": {"ClusterName": "c"},
        "platform": {"ClusterName": "c", "DesiredCount": 1},
    }


def _outputs(records: dict[str, Any]) -> None:
    """Give the fake records the outputs their consumers reference, so the working config resolves."""
    outputs = {
        "network": {
            "PrivateSubnetIds": "subnet-1,subnet-2",
            "PublicSubnetIds": "subnet-3,subnet-4",
            "SecurityGroupId": "sg-1",
            "VpcId": "vpc-1",
        },
        "identity": {
            "ClusterRoleArn": "arn:aws:iam::111111111111:role/c",
            "NodeInstanceProfileArn": "arn:aws:iam::111111111111:instance-profile/n",
        },
        "registry": {"RepositoryUri": "111111111111.dkr.ecr.us-east-1.amazonaws.com/r"},
        "clusters": {"ClusterName": "c", "ExecutionRoleArn": "arn:aws:iam::111111111111:role/c"},
        "addons": {"ClusterName": "c", "SettingsPath": "/strata/dev/c/addons"},
        "platform": {"Hostname": "lb.example.com"},
    }
    for name, record in records.items():
        assert record.applied is not None
        record.applied.outputs.update(outputs.get(name, {}))


class TestSampleAws:
    def test_dev_lists_priced_and_not_priced_resources_per_component(self, sample: Path) -> None:
        """The sample's dev estimate prices the node group, load balancer, log groups and repository, and lists the rest as not priced (null)."""
        platform = load_platform(sample)
        env = platform.environment("dev")
        records = applied("dev", "aws", _dev_parameters())
        _outputs(records)
        doc = estimate(platform, env, "aws", AWS_COMPONENTS, records, sample_prices())
        clusters = doc.components["clusters"]
        assert clusters.monthly == pytest.approx(round(2 * T3_MEDIUM_US * HOURS_PER_MONTH, 2))
        group = next(r for r in clusters.resources if r.name == "NodeGroup")
        assert group.monthly == clusters.monthly and "2 x t3.medium" in group.note
        platform_cost = doc.components["platform"]
        assert {r.name for r in platform_cost.resources if r.monthly is not None} == {"LoadBalancer", "LogGroup"}
        network = doc.components["network"]
        assert network.monthly is None and all(
            r.monthly is None and r.note.startswith("not priced") for r in network.resources
        )
        assert not any(r.name == "NatGateway" for r in network.resources)  # dev: nat_gateway "false"
        assert doc.components["identity"].monthly is None
        expected = sum(c.monthly or 0 for c in doc.components.values())
        assert doc.total_monthly == pytest.approx(expected) and doc.prices_as_of == "2025-06-01"

    def test_json_has_the_documented_shape(self, sample: Path) -> None:
        """`--json` is {env, cloud, currency, prices_as_of, total_monthly, components: {NAME: {monthly, planned_monthly, resources}}}."""
        platform = load_platform(sample)
        records = applied("dev", "aws", _dev_parameters())
        _outputs(records)
        doc = json.loads(
            estimate(
                platform, platform.environment("dev"), "aws", ["clusters"], records, sample_prices()
            ).model_dump_json()
        )
        assert set(doc) == {"env", "cloud", "currency", "prices_as_of", "total_monthly", "components"}
        assert set(doc["components"]["clusters"]) == {"monthly", "planned_monthly", "resources"}
        assert set(doc["components"]["clusters"]["resources"][0]) == {"name", "type", "monthly", "note"}

    def test_node_count_change_gives_the_monthly_change(self, sample: Path) -> None:
        """Raising node_count from 2 to 5 in the working config adds 3 nodes' hours to planned_monthly and to the change line."""
        _set(sample, "dev", node_count=5)
        platform = load_platform(sample)
        env = platform.environment("dev")
        records = applied("dev", "aws", _dev_parameters(node_count=2))
        _outputs(records)
        prices = sample_prices()
        doc = estimate(platform, env, "aws", ["clusters"], records, prices)
        node = T3_MEDIUM_US * HOURS_PER_MONTH
        assert doc.components["clusters"].planned_monthly == pytest.approx(round(5 * node, 2))
        changes = monthly_changes(platform, env, "aws", ["clusters"], records, prices)
        assert changes[0].delta == pytest.approx(round(3 * node, 2))
        assert change_lines(changes)[0] == f"clusters: +${3 * node:,.2f}/month (NodeCount 2 -> 5)"
        assert total_change(changes) == pytest.approx(round(3 * node, 2))

    def test_nat_gateway_condition_adds_the_gateway_and_its_address(self, sample: Path) -> None:
        """With nat_gateway "true" the NAT gateway and its public IPv4 address are planned and priced, driven by CreateNatGateway."""
        _set(sample, "dev", nat_gateway="true")
        platform = load_platform(sample)
        env = platform.environment("dev")
        records = applied("dev", "aws", _dev_parameters(nat="false"))
        changes = monthly_changes(platform, env, "aws", ["network"], records, sample_prices())
        assert changes[0].delta == pytest.approx(round((0.045 + 0.005) * HOURS_PER_MONTH, 2))
        assert changes[0].drivers == ["CreateNatGateway false -> true"]

    def test_a_new_component_is_its_whole_cost(self, sample: Path) -> None:
        """A component never applied counts as 0 now and its full planned cost as the change ('new')."""
        platform = load_platform(sample)
        changes = monthly_changes(platform, platform.environment("dev"), "aws", ["registry"], {}, sample_prices())
        assert changes[0].before is None and changes[0].line() == "registry: +$0.50/month (new)"

    def test_terraform_and_command_components_are_not_priced(self, sample: Path) -> None:
        """dns (Terraform) and smoke-test (command) are listed as one not-priced resource each, never zero."""
        platform = load_platform(sample)
        doc = estimate(platform, platform.environment("dev"), "aws", ["dns", "smoke-test"], {}, sample_prices())
        for name in ("dns", "smoke-test"):
            (only,) = doc.components[name].resources
            assert only.monthly is None and only.note.startswith("not priced")
            assert doc.components[name].monthly is None


class TestNotPriced:
    TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  InstanceType: {Type: String}
Resources:
  Mystery:
    Type: AWS::Quantum::Computer
  Box:
    Type: AWS::EC2::Instance
    Properties: {InstanceType: !Ref InstanceType}
"""

    def test_unknown_resource_type_is_not_priced_never_zero(self, tmp_path: Path) -> None:
        """A resource type without a price rule has monthly None and a note saying it is not priced."""
        path = tmp_path / "t.yaml"
        path.write_text(self.TEMPLATE)
        usages = awscost.template_usages(path, {"InstanceType": "m5.large"}, "us-east-1", "s")
        mystery = price_usage(next(u for u in usages if u.name == "Mystery"), FakePrices({}))
        assert mystery.monthly is None and "no price rule for AWS::Quantum::Computer" in mystery.note

    def test_missing_price_is_not_priced_never_zero(self, tmp_path: Path) -> None:
        """A priced type whose SKU the price list lacks is not priced (None), naming what was asked."""
        path = tmp_path / "t.yaml"
        path.write_text(self.TEMPLATE)
        box = next(
            u for u in awscost.template_usages(path, {"InstanceType": "x9.huge"}, "us-east-1", "s") if u.name == "Box"
        )
        priced = price_usage(box, FakePrices({}))
        assert priced.monthly is None and "no price for ec2-instance x9.huge in us-east-1" in priced.note

    def test_value_known_after_apply_is_not_priced(self, tmp_path: Path) -> None:
        """An instance type that is an upstream output not yet known leaves the instance not priced, saying why."""
        path = tmp_path / "t.yaml"
        path.write_text(self.TEMPLATE)
        usages = awscost.template_usages(path, {"InstanceType": "(known after apply)"}, "us-east-1", "s")
        box = next(u for u in usages if u.name == "Box")
        assert not box.priced and "known only after" in box.reason

    def test_fargate_service_is_priced_by_vcpu_and_memory(self, tmp_path: Path) -> None:
        """An ECS service on Fargate is priced as tasks x (vCPU-hours + GB-hours) of its task definition."""
        path = tmp_path / "f.yaml"
        path.write_text(
            "Resources:\n"
            "  Task: {Type: AWS::ECS::TaskDefinition, Properties: {Cpu: '512', Memory: '1024'}}\n"
            "  Svc: {Type: AWS::ECS::Service, Properties: {LaunchType: FARGATE, DesiredCount: 3, TaskDefinition: !Ref Task}}\n"
        )
        svc = next(u for u in awscost.template_usages(path, {}, "us-east-1", "s") if u.name == "Svc")
        prices = FakePrices({("fargate-vcpu", "", "us-east-1"): 0.04, ("fargate-memory", "", "us-east-1"): 0.004})
        assert price_usage(svc, prices).monthly == pytest.approx(3 * HOURS_PER_MONTH * (0.5 * 0.04 + 1 * 0.004))


class TestSampleAzure:
    def test_aks_pools_registry_workspace_and_ip_are_priced(self, sample: Path) -> None:
        """On Azure the AKS pool is count x VM size, the registry a daily unit, the workspace ingestion and the IP hourly."""
        platform = load_platform(sample)
        env = platform.environment("dev")
        prices = sample_prices()
        pool = next(u for u in component_usages(platform, env, "azure", "clusters", {"nodeCount": 3}) if u.charges)
        assert price_usage(pool, prices).monthly == pytest.approx(3 * 0.23 * HOURS_PER_MONTH)
        assert pool.drivers >= {"nodeCount"}
        (registry,) = component_usages(platform, env, "azure", "registry", {})
        assert price_usage(registry, prices).monthly == pytest.approx(0.1666 * HOURS_PER_MONTH / 24)
        (ip,) = component_usages(platform, env, "azure", "platform", {"namePrefix": "strata-dev"})
        assert ip.name.startswith("strata-dev-ingress-") and price_usage(ip, prices).monthly == pytest.approx(
            0.005 * 730
        )
        control = next(
            u for u in component_usages(platform, env, "azure", "clusters", {}) if u.type.endswith("managedClusters")
        )
        assert price_usage(control, prices).monthly == 0.0 and "Free tier" in price_usage(control, prices).note
        identities = component_usages(platform, env, "azure", "identity", {})
        assert all(price_usage(u, prices).monthly is None for u in identities)

    def test_arm_condition_and_copy(self, tmp_path: Path) -> None:
        """An ARM resource whose condition is false is left out; copy multiplies the count."""
        template = {
            "parameters": {"withNat": {"type": "bool", "defaultValue": False}, "n": {"type": "int", "defaultValue": 2}},
            "resources": [
                {
                    "type": "Microsoft.Network/natGateways",
                    "name": "nat",
                    "condition": "[parameters('withNat')]",
                    "sku": {"name": "Standard"},
                },
                {
                    "type": "Microsoft.Compute/virtualMachines",
                    "name": "[concat('vm', copyIndex())]",
                    "copy": {"name": "c", "count": "[parameters('n')]"},
                    "properties": {"hardwareProfile": {"vmSize": "Standard_B2s"}},
                },
            ],
        }
        found = armcost.usages(template, {}, location="westeurope", resource_group="rg")
        assert [u.type for u in found] == ["Microsoft.Compute/virtualMachines"]
        assert found[0].charges[0].quantity == 2 * HOURS_PER_MONTH
        with_nat = armcost.usages(template, {"withNat": True}, location="westeurope", resource_group="rg")
        assert with_nat[0].charges[0].query.kind == "nat-gateway"


class TestBudgetGate:
    def _env(self, limit: float | None, approvers: list[str] | None = None) -> Environment:
        data: dict[str, Any] = {"name": "staging"}
        if limit is not None:
            data["budget"] = {"monthly_increase": limit}
        if approvers:
            data["approval"] = {"approvers": approvers}
        return Environment.model_validate(data)

    def test_within_budget_passes(self) -> None:
        """A monthly increase at or below budget.monthly_increase passes the budget gate."""
        gate = budget_gate(self._env(100), 100.0)
        assert gate.passed and gate.name == "budget"

    def test_above_budget_fails_and_needs_an_approver(self) -> None:
        """Above the budget the gate fails saying so; with approvers the promotion waits for one, without it is refused."""
        gate = budget_gate(self._env(50), 91.1)
        assert not gate.passed and "+$91.10/month exceeds staging's budget of +$50.00/month" in gate.reason
        assert budget_action(self._env(50, ["alice"]), gate) == "approval"
        assert budget_action(self._env(50), gate) == "refuse"

    def test_unknown_change_fails_only_with_a_budget(self) -> None:
        """A change that cannot be estimated fails the gate when a budget is set, and passes when none is."""
        assert not budget_gate(self._env(10), None).passed
        assert budget_gate(self._env(None), None).passed

    def test_budget_key_is_accepted_and_checked(self, sample: Path) -> None:
        """`budget: {monthly_increase: N}` loads from an environment file; a negative amount is a config error."""
        path = sample / "environments" / "staging.yaml"
        data = yaml.safe_load(path.read_text())
        path.write_text(yaml.safe_dump({**data, "budget": {"monthly_increase": 25}}))
        assert load_platform(sample).environment("staging").budget == Budget(monthly_increase=25)
        path.write_text(yaml.safe_dump({**data, "budget": {"monthly_increase": -1}}))
        with pytest.raises(ConfigError):
            load_platform(sample)


class TestTemplateDocuments:
    def test_cloudformation_document_loads_short_tags(self) -> None:
        """load_template_document reads the whole CFN template with short-form tags as mappings."""
        doc = load_cfn(SAMPLE / "templates" / "aws" / "clusters.yaml")
        assert doc["Resources"]["NodeGroup"]["Properties"]["DesiredCapacity"] == {"Ref": "NodeCount"}

    def test_arm_document_refuses_bicep(self, tmp_path: Path) -> None:
        """The ARM reader returns the JSON document and refuses Bicep (it runs no compiler)."""
        assert load_arm(SAMPLE / "templates" / "azure" / "clusters.json")["resources"][0]["type"].endswith(
            "managedClusters"
        )
        bicep = tmp_path / "main.bicep"
        bicep.write_text("param x string\n")
        with pytest.raises(TemplateParamsError):
            load_arm(bicep)


def test_usage_without_charges_reports_its_reason() -> None:
    """A usage with no charges is priced as None with its own reason."""
    priced = price_usage(Usage("x", "T", reason="not priced: because"), FakePrices({}))
    assert (priced.monthly, priced.note) == (None, "not priced: because")
