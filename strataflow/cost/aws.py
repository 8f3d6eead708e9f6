"""A CloudFormation template's resources as ``Usage``: what each one is charged for a month.

Pure. ``RULES`` says how each priced resource type is charged (instances and node groups by
type and count, NAT gateways, public IPv4 addresses, load balancers, log ingestion, image
storage, EKS clusters, Fargate services); ``FREE_TYPES`` and ``USAGE_BASED`` say why the
common others are "not priced"; any other type is "not priced" too, saying so. Values come
from ``strataflow.cost.cfn``'s evaluation of the template with the given parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from strataflow.cost.cfn import ResourceRef, Template
from strataflow.cost.model import (
    ASSUMED_LOG_GB,
    ASSUMED_REGISTRY_GB,
    HOURS_PER_MONTH,
    NOT_PRICED,
    Charge,
    PriceQuery,
    Unknown,
    Usage,
    count_of,
)
from strataflow.templateparams.cloudformation import load_template_document

FREE_TYPES = frozenset(
    {
        "AWS::EC2::VPC",
        "AWS::EC2::Subnet",
        "AWS::EC2::RouteTable",
        "AWS::EC2::Route",
        "AWS::EC2::SubnetRouteTableAssociation",
        "AWS::EC2::InternetGateway",
        "AWS::EC2::VPCGatewayAttachment",
        "AWS::EC2::SecurityGroup",
        "AWS::EC2::SecurityGroupIngress",
        "AWS::EC2::SecurityGroupEgress",
        "AWS::EC2::LaunchTemplate",
        "AWS::IAM::Role",
        "AWS::IAM::Policy",
        "AWS::IAM::ManagedPolicy",
        "AWS::IAM::InstanceProfile",
        "AWS::SSM::Parameter",
        "AWS::ECS::Cluster",
        "AWS::ECS::TaskDefinition",
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        "AWS::ElasticLoadBalancingV2::Listener",
        "AWS::ElasticLoadBalancingV2::ListenerRule",
    }
)
"""Types AWS charges nothing for by themselves: "not priced", saying so."""
USAGE_BASED = {
    "AWS::SNS::Topic": "charged per request and delivery",
    "AWS::EC2::FlowLog": "charged as the log data it delivers",
    "AWS::Lambda::Function": "charged per request and duration",
    "AWS::SQS::Queue": "charged per request",
    "AWS::S3::Bucket": "charged per GB stored and per request",
    "AWS::DynamoDB::Table": "charged per request or provisioned capacity",
}

# --- resources to usages ---------------------------------------------------------------


def _launch_data(t: Template, props: Mapping[str, Any]) -> Any:
    """The instance type of an auto scaling group: launch template, mixed instances or launch configuration."""
    mixed = props.get("MixedInstancesPolicy")
    if isinstance(mixed, dict):
        spec = t.value(mixed.get("LaunchTemplate") or {})
        overrides = spec.get("Overrides") or [] if isinstance(spec, dict) else []
        if overrides and isinstance(overrides[0], dict) and overrides[0].get("InstanceType"):
            return overrides[0]["InstanceType"]
        props = {"LaunchTemplate": (mixed.get("LaunchTemplate") or {}).get("LaunchTemplateSpecification") or {}}
    template = props.get("LaunchTemplate")
    if isinstance(template, dict):
        ref = t.value(template.get("LaunchTemplateId") or template.get("LaunchTemplateName"))
        if isinstance(ref, ResourceRef) and isinstance(t.resources.get(ref), dict):
            data = (t.resources[ref].get("Properties") or {}).get("LaunchTemplateData") or {}
            return t.value(data.get("InstanceType")) if data.get("InstanceType") else Unknown("no InstanceType")
        return Unknown("a launch template outside this template")
    config = t.value(props.get("LaunchConfigurationName"))
    if isinstance(config, ResourceRef) and isinstance(t.resources.get(config), dict):
        return t.value((t.resources[config].get("Properties") or {}).get("InstanceType"))
    return Unknown("no launch template or configuration in this template")


def _instances(t: Template, name: str, kind: str, itype: Any, count: Any) -> Usage:
    drivers = frozenset(t.touched)
    if isinstance(itype, Unknown) or isinstance(count, Unknown):
        why = itype.why if isinstance(itype, Unknown) else count.why
        return Usage(name, kind, reason=f"{NOT_PRICED}: {why}", drivers=drivers)
    query = PriceQuery("aws", t.region, "ec2-instance", str(itype))
    basis = f"{count} x {itype}"
    return Usage(name, kind, (Charge(query, count * HOURS_PER_MONTH, basis),), drivers=drivers)


def _hourly(kind: str, sku: str = "", extra: str = "") -> Callable[[Template, str, str, Mapping[str, Any]], Usage]:
    def rule(t: Template, name: str, rtype: str, props: Mapping[str, Any]) -> Usage:
        del props
        return Usage(
            name, rtype, (Charge(PriceQuery("aws", t.region, kind, sku), HOURS_PER_MONTH, "730 h"),), extra=extra
        )

    return rule


def _asg(t: Template, name: str, rtype: str, props: Mapping[str, Any]) -> Usage:
    count = count_of(t.value(props.get("DesiredCapacity", props.get("MinSize"))), "DesiredCapacity")
    return _instances(t, name, rtype, _launch_data(t, props), count)


def _instance(t: Template, name: str, rtype: str, props: Mapping[str, Any]) -> Usage:
    return _instances(t, name, rtype, t.value(props.get("InstanceType", "m1.small")), 1)


def _nodegroup(t: Template, name: str, rtype: str, props: Mapping[str, Any]) -> Usage:
    scaling = t.value(props.get("ScalingConfig") or {})
    count = count_of(scaling.get("DesiredSize", scaling.get("MinSize", 1)), "DesiredSize")
    types = t.value(props.get("InstanceTypes") or ["t3.medium"])
    itype = types[0] if isinstance(types, list) and types else types
    return _instances(t, name, rtype, itype, count)


def _load_balancer(t: Template, name: str, rtype: str, props: Mapping[str, Any]) -> Usage:
    lb = t.value(props.get("Type", "application"))
    if isinstance(lb, Unknown):
        return Usage(name, rtype, reason=f"{NOT_PRICED}: {lb.why}")
    charge = Charge(PriceQuery("aws", t.region, "load-balancer", str(lb)), HOURS_PER_MONTH, f"{lb}, 730 h")
    return Usage(name, rtype, (charge,), extra="capacity units (LCU) not estimated")


def _per_gb(kind: str, gb: float, basis: str, extra: str) -> Callable[[Template, str, str, Mapping[str, Any]], Usage]:
    def rule(t: Template, name: str, rtype: str, props: Mapping[str, Any]) -> Usage:
        del props
        return Usage(name, rtype, (Charge(PriceQuery("aws", t.region, kind), gb, basis),), extra=extra)

    return rule


def _service(t: Template, name: str, rtype: str, props: Mapping[str, Any]) -> Usage:
    launch = t.value(props.get("LaunchType", "EC2"))
    providers = t.value(props.get("CapacityProviderStrategy") or [])
    fargate = launch == "FARGATE" or any(
        isinstance(p, dict) and str(p.get("CapacityProvider", "")).startswith("FARGATE") for p in providers or []
    )
    if not fargate:
        return Usage(name, rtype, reason=f"{NOT_PRICED}: its tasks run on the cluster's instances (priced there)")
    count = count_of(t.value(props.get("DesiredCount", 1)), "DesiredCount")
    task = t.value(props.get("TaskDefinition"))
    spec = (t.resources.get(task) or {}).get("Properties") or {} if isinstance(task, ResourceRef) else {}
    cpu, memory = t.value(spec.get("Cpu")), t.value(spec.get("Memory"))
    drivers = frozenset(t.touched)
    try:
        vcpu, gb = float(cpu) / 1024, float(memory) / 1024
    except (TypeError, ValueError):
        return Usage(name, rtype, reason=f"{NOT_PRICED}: the task's Cpu and Memory are not known", drivers=drivers)
    if isinstance(count, Unknown):
        return Usage(name, rtype, reason=f"{NOT_PRICED}: {count.why}", drivers=drivers)
    hours = count * HOURS_PER_MONTH
    charges = (
        Charge(PriceQuery("aws", t.region, "fargate-vcpu"), vcpu * hours, f"{count} task(s) x {vcpu:g} vCPU"),
        Charge(PriceQuery("aws", t.region, "fargate-memory"), gb * hours, f"{count} task(s) x {gb:g} GB"),
    )
    return Usage(name, rtype, charges, drivers=drivers)


Rule = Callable[[Template, str, str, Mapping[str, Any]], Usage]
RULES: dict[str, Rule] = {
    "AWS::AutoScaling::AutoScalingGroup": _asg,
    "AWS::EC2::Instance": _instance,
    "AWS::EKS::Nodegroup": _nodegroup,
    "AWS::EKS::Cluster": _hourly("eks-cluster"),
    "AWS::EC2::NatGateway": _hourly("nat-gateway", extra="data processed per GB not estimated"),
    "AWS::EC2::EIP": _hourly("public-ipv4"),
    "AWS::ElasticLoadBalancingV2::LoadBalancer": _load_balancer,
    "AWS::Logs::LogGroup": _per_gb(
        "log-ingestion", ASSUMED_LOG_GB, f"{ASSUMED_LOG_GB:g} GB ingested/month (assumed)", "storage not estimated"
    ),
    "AWS::ECR::Repository": _per_gb(
        "registry-storage",
        ASSUMED_REGISTRY_GB,
        f"{ASSUMED_REGISTRY_GB:g} GB stored (assumed)",
        "transfer not estimated",
    ),
    "AWS::ECS::Service": _service,
}
"""How each priced resource type is charged (every other type is "not priced")."""


def usages(doc: Mapping[str, Any], parameters: Mapping[str, Any], region: str, stack: str) -> list[Usage]:
    """Every resource of the template ``doc`` given ``parameters``, in template order (conditions applied)."""
    t = Template(doc, parameters, region, stack)
    found: list[Usage] = []
    for name, resource in t.resources.items():
        if not isinstance(resource, dict):
            continue
        rtype = str(resource.get("Type", "?"))
        t.reading()
        included = t.included(resource)
        if included is False:
            continue
        props = resource.get("Properties") or {}
        if isinstance(included, Unknown):
            found.append(Usage(name, rtype, reason=f"{NOT_PRICED}: whether it is created is unknown ({included.why})"))
        elif rtype in RULES:
            usage = RULES[rtype](t, name, rtype, props)
            found.append(replace(usage, drivers=usage.drivers | frozenset(t.touched)))
        elif rtype in FREE_TYPES:
            found.append(Usage(name, rtype, reason=f"{NOT_PRICED}: no charge of its own"))
        elif rtype in USAGE_BASED:
            found.append(Usage(name, rtype, reason=f"{NOT_PRICED}: {USAGE_BASED[rtype]}"))
        else:
            found.append(Usage(name, rtype, reason=f"{NOT_PRICED}: strataflow has no price rule for {rtype}"))
    return found


def template_usages(path: Path, parameters: Mapping[str, Any], region: str, stack: str) -> list[Usage]:
    """``usages`` of the template file at ``path`` (raises ``TemplateParamsError`` when it is unreadable)."""
    return usages(load_template_document(path), parameters, region, stack)


__all__ = ["FREE_TYPES", "RULES", "USAGE_BASED", "template_usages", "usages"]
