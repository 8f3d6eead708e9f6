"""An ARM template's resources as ``Usage``: what each one is charged for a month.

Pure. Expressions are evaluated by ``armexpr`` (parameters, variables, the resource group's
location, ...); ``condition`` leaves a resource out, ``copy`` multiplies it, child
``resources`` are read too. AKS clusters are priced per node pool (VM size x count) plus
their control-plane tier; the other priced types are in ``RULES``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from strataflow.cost.armexpr import Scope
from strataflow.cost.model import (
    ASSUMED_LOG_GB,
    DAYS_PER_MONTH,
    HOURS_PER_MONTH,
    NOT_PRICED,
    Charge,
    PriceQuery,
    Unknown,
    Usage,
    count_of,
)
from strataflow.templateparams.arm import load_template_document

FREE_TYPES = frozenset(
    {
        "microsoft.network/virtualnetworks",
        "microsoft.network/virtualnetworks/subnets",
        "microsoft.network/networksecuritygroups",
        "microsoft.network/networksecuritygroups/securityrules",
        "microsoft.network/routetables",
        "microsoft.managedidentity/userassignedidentities",
        "microsoft.authorization/roleassignments",
        "microsoft.kubernetesconfiguration/extensions",
        "microsoft.kubernetesconfiguration/fluxconfigurations",
    }
)
"""Types Azure charges nothing for by themselves: "not priced", saying so."""
USAGE_BASED = {
    "microsoft.insights/actiongroups": "charged per notification",
    "microsoft.storage/storageaccounts": "charged per GB stored and per operation",
    "microsoft.keyvault/vaults": "charged per operation",
    "microsoft.resources/deployments": "a nested deployment: its resources are not estimated",
}


def _vms(scope: Scope, name: str, rtype: str, size: Any, count: Any, location: str) -> Usage:
    drivers = frozenset(scope.touched)
    bad = next((v for v in (size, count) if isinstance(v, Unknown)), None)
    if bad is not None:
        return Usage(name, rtype, reason=f"{NOT_PRICED}: {bad.why}", drivers=drivers)
    charge = Charge(PriceQuery("azure", location, "vm", str(size)), count * HOURS_PER_MONTH, f"{count} x {size}")
    return Usage(name, rtype, (charge,), drivers=drivers)


def _aks(scope: Scope, name: str, rtype: str, res: Mapping[str, Any], location: str) -> Iterator[Usage]:
    tier = scope.value((res.get("sku") or {}).get("tier", "Free"))
    if tier == "Free":
        yield Usage(name, rtype, fixed=0.0, extra="Free tier: no control-plane charge")
    elif isinstance(tier, Unknown):
        yield Usage(name, rtype, reason=f"{NOT_PRICED}: its tier is unknown ({tier.why})")
    else:
        query = PriceQuery("azure", location, "aks-control-plane", str(tier))
        yield Usage(name, rtype, (Charge(query, HOURS_PER_MONTH, f"{tier} tier, 730 h"),))
    for pool in (res.get("properties") or {}).get("agentPoolProfiles") or []:
        scope.reading()
        pool_name = scope.value(pool.get("name", "pool"))
        count = scope.value(pool.get("count", pool.get("minCount", 1)))
        yield _vms(
            scope,
            f"{name}/{_display(pool_name)}",
            "Microsoft.ContainerService/managedClusters/agentPools",
            scope.value(pool.get("vmSize")),
            count_of(count, "count"),
            location,
        )


def _agent_pool(scope: Scope, name: str, rtype: str, res: Mapping[str, Any], location: str) -> Iterator[Usage]:
    props = res.get("properties") or {}
    count = count_of(scope.value(props.get("count", props.get("minCount", 1))), "count")
    yield _vms(scope, name, rtype, scope.value(props.get("vmSize")), count, location)


def _vm(scope: Scope, name: str, rtype: str, res: Mapping[str, Any], location: str) -> Iterator[Usage]:
    size = scope.value(((res.get("properties") or {}).get("hardwareProfile") or {}).get("vmSize"))
    yield _vms(scope, name, rtype, size, 1, location)


def _scale_set(scope: Scope, name: str, rtype: str, res: Mapping[str, Any], location: str) -> Iterator[Usage]:
    sku = res.get("sku") or {}
    yield _vms(
        scope,
        name,
        rtype,
        scope.value(sku.get("name")),
        count_of(scope.value(sku.get("capacity", 1)), "capacity"),
        location,
    )


def _sku_rule(kind: str, default: str, quantity: float, basis: str, extra: str = "") -> RuleFn:
    def rule(scope: Scope, name: str, rtype: str, res: Mapping[str, Any], location: str) -> Iterator[Usage]:
        sku = scope.value((res.get("sku") or {}).get("name", default))
        drivers = frozenset(scope.touched)
        if isinstance(sku, Unknown):
            yield Usage(name, rtype, reason=f"{NOT_PRICED}: its SKU is unknown ({sku.why})", drivers=drivers)
            return
        charge = Charge(PriceQuery("azure", location, kind, str(sku)), quantity, basis.format(sku=sku))
        yield Usage(name, rtype, (charge,), extra=extra, drivers=drivers)

    return rule


def _public_ip(scope: Scope, name: str, rtype: str, res: Mapping[str, Any], location: str) -> Iterator[Usage]:
    sku = scope.value((res.get("sku") or {}).get("name", "Basic"))
    method = scope.value((res.get("properties") or {}).get("publicIPAllocationMethod", "Dynamic"))
    if isinstance(sku, Unknown) or isinstance(method, Unknown):
        yield Usage(name, rtype, reason=f"{NOT_PRICED}: its SKU or allocation is unknown")
        return
    query = PriceQuery("azure", location, "public-ip", f"{sku} {method}")
    yield Usage(name, rtype, (Charge(query, HOURS_PER_MONTH, f"{sku} {method} IPv4, 730 h"),))


RuleFn = Callable[[Scope, str, str, Mapping[str, Any], str], Iterator[Usage]]
RULES: dict[str, RuleFn] = {
    "microsoft.containerservice/managedclusters": _aks,
    "microsoft.containerservice/managedclusters/agentpools": _agent_pool,
    "microsoft.compute/virtualmachines": _vm,
    "microsoft.compute/virtualmachinescalesets": _scale_set,
    "microsoft.containerregistry/registries": _sku_rule(
        "container-registry",
        "Basic",
        DAYS_PER_MONTH,
        "{sku} registry, 30.4 days",
        "storage over the included amount not estimated",
    ),
    "microsoft.operationalinsights/workspaces": _sku_rule(
        "log-ingestion",
        "PerGB2018",
        ASSUMED_LOG_GB,
        f"{ASSUMED_LOG_GB:g} GB ingested/month (assumed)",
        "retention beyond 31 days not estimated",
    ),
    "microsoft.network/natgateways": _sku_rule(
        "nat-gateway", "Standard", HOURS_PER_MONTH, "{sku}, 730 h", "data processed per GB not estimated"
    ),
    "microsoft.network/loadbalancers": _sku_rule(
        "load-balancer", "Basic", HOURS_PER_MONTH, "{sku}, 730 h", "rules over 5 and data processed not estimated"
    ),
    "microsoft.network/publicipaddresses": _public_ip,
}
"""How each priced resource type is charged, by lowercased type (every other type is "not priced")."""


def _display(value: Any) -> str:
    return value.hint if isinstance(value, Unknown) else str(value)


def _resources(template: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], str, str]]:
    """Every resource with its full type and raw name (children joined to their parent's)."""
    top = template.get("resources") or []
    items = list(top.values()) if isinstance(top, dict) else list(top)  # languageVersion 2.0: symbolic names

    def walk(resources: list[Any], parent: tuple[str, str] | None) -> Iterator[tuple[Mapping[str, Any], str, str]]:
        for resource in resources:
            if not isinstance(resource, dict):
                continue
            rtype, name = str(resource.get("type", "?")), resource.get("name", "?")
            if parent and "/" not in rtype:
                rtype = f"{parent[0]}/{rtype}"
            yield resource, rtype, name
            children = resource.get("resources") or []
            yield from walk(list(children.values()) if isinstance(children, dict) else list(children), (rtype, name))

    yield from walk(items, None)


def usages(
    template: Mapping[str, Any],
    parameters: Mapping[str, Any],
    *,
    location: str,
    resource_group: str,
    subscription: str = "00000000-0000-0000-0000-000000000000",
) -> list[Usage]:
    """Every resource of the ARM ``template`` given ``parameters``, in template order."""
    scope = Scope(template, parameters, location=location, resource_group=resource_group, subscription=subscription)
    found: list[Usage] = []
    for resource, rtype, raw_name in _resources(template):
        name = _display(scope.value(raw_name))
        scope.reading()
        if "condition" in resource:
            included = scope.value(resource["condition"])
            if included is False:
                continue
            if isinstance(included, Unknown):
                found.append(Usage(name, rtype, reason=f"{NOT_PRICED}: whether it is created is unknown"))
                continue
        where = scope.value(resource.get("location", location))
        region = str(where).replace(" ", "").lower() if isinstance(where, str) else location
        copies = count_of(scope.value((resource.get("copy") or {}).get("count", 1)), "copy count")
        key = rtype.lower()
        if key in RULES:
            condition = frozenset(scope.touched)
            made = [replace(u, drivers=u.drivers | condition) for u in RULES[key](scope, name, rtype, resource, region)]
            if isinstance(copies, Unknown):
                made = [Usage(u.name, u.type, reason=f"{NOT_PRICED}: copy count unknown ({copies.why})") for u in made]
            elif copies != 1:
                made = [_times(u, copies) for u in made]
            found.extend(made)
        elif key in FREE_TYPES:
            found.append(Usage(name, rtype, reason=f"{NOT_PRICED}: no charge of its own"))
        elif key in USAGE_BASED:
            found.append(Usage(name, rtype, reason=f"{NOT_PRICED}: {USAGE_BASED[key]}"))
        else:
            found.append(Usage(name, rtype, reason=f"{NOT_PRICED}: strataflow has no price rule for {rtype}"))
    return found


def _times(usage: Usage, copies: int) -> Usage:
    charges = tuple(Charge(c.query, c.quantity * copies, f"{copies} copies x ({c.basis})") for c in usage.charges)
    fixed = None if usage.fixed is None else usage.fixed * copies
    return Usage(usage.name, usage.type, charges, usage.reason, fixed, usage.extra, usage.drivers)


def template_usages(
    path: Path, parameters: Mapping[str, Any], *, location: str, resource_group: str, subscription: str | None = None
) -> list[Usage]:
    """``usages`` of the ARM JSON template at ``path`` (raises ``TemplateParamsError`` when it is unreadable)."""
    return usages(
        load_template_document(path),
        parameters,
        location=location,
        resource_group=resource_group,
        subscription=subscription or "00000000-0000-0000-0000-000000000000",
    )


__all__ = ["FREE_TYPES", "RULES", "template_usages", "usages"]
