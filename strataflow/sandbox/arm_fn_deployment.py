"""Deployment, scope and resource functions of the ARM template language.

``parameters``, ``variables``, ``copyIndex``, ``deployment``, ``environment`` (Azure's public
cloud), ``resourceGroup``, ``subscription``, ``tenant``; resource ids (``resourceId``,
``subscriptionResourceId``, ``tenantResourceId``, ``managementGroupResourceId``,
``extensionResourceId``); ``reference``, ``resourceInfo``, ``references`` and every
``list*`` function (answered through the scope's hooks by ``arm_templates``);
``pickZones``, ``providers`` and the CIDR functions (``cidrSubnet``, ``cidrHost``,
``parseCidr``).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from strataflow.sandbox.arm_values import (
    HELP,
    Ctx,
    ExpressionError,
    Spec,
    Unsupported,
    ci_key,
    expect,
    fail,
    integer,
    spec,
    text,
    to_string,
)

ENVIRONMENT: dict[str, Any] = {
    "name": "AzureCloud",
    "gallery": "https://gallery.azure.com/",
    "graph": "https://graph.windows.net/",
    "portal": "https://portal.azure.com",
    "graphAudience": "https://graph.windows.net/",
    "activeDirectoryDataLake": "https://datalake.azure.net/",
    "batch": "https://batch.core.windows.net/",
    "media": "https://rest.media.azure.net",
    "sqlManagement": "https://management.core.windows.net:8443/",
    "vmImageAliasDoc": "https://raw.githubusercontent.com/Azure/azure-rest-api-specs/master/arm-compute/quickstart-templates/aliases.json",
    "resourceManager": "https://management.azure.com/",
    "authentication": {
        "loginEndpoint": "https://login.microsoftonline.com/",
        "audiences": ["https://management.core.windows.net/", "https://management.azure.com/"],
        "tenant": "common",
        "identityProvider": "AAD",
    },
    "suffixes": {
        "acrLoginServer": ".azurecr.io",
        "azureDatalakeAnalyticsCatalogAndJob": "azuredatalakeanalytics.net",
        "azureDatalakeStoreFileSystem": "azuredatalakestore.net",
        "azureFrontDoorEndpointSuffix": "azurefd.net",
        "keyvaultDns": ".vault.azure.net",
        "sqlServerHostname": ".database.windows.net",
        "storage": "core.windows.net",
    },
}
ZONAL_REGIONS = frozenset(
    [
        "australiaeast",
        "brazilsouth",
        "canadacentral",
        "centralindia",
        "centralus",
        "eastasia",
        "eastus",
        "eastus2",
        "francecentral",
        "germanywestcentral",
        "israelcentral",
        "italynorth",
        "japaneast",
        "koreacentral",
        "mexicocentral",
        "newzealandnorth",
        "northeurope",
        "norwayeast",
        "polandcentral",
        "qatarcentral",
        "southafricanorth",
        "southcentralus",
        "southeastasia",
        "spaincentral",
        "swedencentral",
        "switzerlandnorth",
        "uaenorth",
        "uksouth",
        "westeurope",
        "westus2",
        "westus3",
    ]
)


def resource_path(resource_type: str, names: list[str]) -> str:
    """``/providers/NS/t1/n1/t2/n2`` for a (possibly nested) type and its name segments."""
    segments = resource_type.strip("/").split("/")
    if len(segments) < 2 or len(segments) - 1 != len(names):
        raise ExpressionError(
            f"The resource type '{resource_type}' and name '{'/'.join(names)}' have incorrect segment lengths. "
            "A nested resource type must have identical number of segments as its resource name."
        )
    path = f"/providers/{segments[0]}"
    for segment, name in zip(segments[1:], names, strict=True):
        path += f"/{segment}/{name}"
    return path


def _split_type(name: str, args: list[Any]) -> tuple[list[str], str, list[str]]:
    texts = [to_string(expect(name, a, "String", "Integer")) for a in args]
    at = next((i for i, t in enumerate(texts) if "/" in t and not t.startswith("/")), None)
    if at is None:
        raise fail(name, "No resource type (namespace/type) was given.")
    names = [n for part in texts[at + 1 :] for n in part.split("/")]
    return texts[:at], texts[at], names


def _resource_id(ctx: Ctx, args: list[Any]) -> str:
    prefix, kind, names = _split_type("resourceId", args)
    path = resource_path(kind, names)
    scope = ctx.scope
    if len(prefix) > 2:
        raise fail("resourceId", "At most a subscription id and a resource group name may precede the type.")
    if not prefix and scope.resource_group is None:
        return f"/subscriptions/{scope.subscription_id}{path}"
    subscription = prefix[0] if len(prefix) == 2 else scope.subscription_id
    group = prefix[-1] if prefix else scope.resource_group
    return f"/subscriptions/{subscription}/resourceGroups/{group}{path}"


def _subscription_resource_id(ctx: Ctx, args: list[Any]) -> str:
    prefix, kind, names = _split_type("subscriptionResourceId", args)
    if len(prefix) > 1:
        raise fail("subscriptionResourceId", "At most a subscription id may precede the type.")
    return f"/subscriptions/{prefix[0] if prefix else ctx.scope.subscription_id}{resource_path(kind, names)}"


def _tenant_resource_id(ctx: Ctx, args: list[Any]) -> str:
    prefix, kind, names = _split_type("tenantResourceId", args)
    if prefix:
        raise fail("tenantResourceId", "Nothing may precede the resource type.")
    return resource_path(kind, names)


def _management_group_resource_id(ctx: Ctx, args: list[Any]) -> str:
    prefix, kind, names = _split_type("managementGroupResourceId", args)
    if not prefix:
        raise Unsupported("managementGroupResourceId() without a management group id (management group deployments)")
    return f"/providers/Microsoft.Management/managementGroups/{prefix[0]}{resource_path(kind, names)}"


def _extension_resource_id(ctx: Ctx, args: list[Any]) -> str:
    base = text("extensionResourceId", args[0]).rstrip("/")
    names = [n for a in args[2:] for n in to_string(expect("extensionResourceId", a, "String", "Integer")).split("/")]
    return base + resource_path(text("extensionResourceId", args[1]), names)


def _parameters(ctx: Ctx, args: list[Any]) -> Any:
    name = text("parameters", args[0])
    source = ctx.frame.udf if ctx.frame.udf is not None else ctx.scope.parameters
    key = ci_key(source, name)
    if key is None:
        raise ExpressionError(
            f"The template parameter '{name}' is not found. Please see https://aka.ms/arm-syntax-parameters "
            "for usage details."
        )
    return source[key]


def _copy_index(ctx: Ctx, args: list[Any]) -> int:
    name, offset = "", 0
    if args and isinstance(args[0], str):
        name = args[0].lower()
        offset = integer("copyIndex", args[1]) if len(args) > 1 else 0
    elif args:
        offset = integer("copyIndex", args[0])
        if len(args) > 1:
            raise fail("copyIndex", "The loop name must come before the offset.")
    entries: list[tuple[str, int]] = list(ctx.frame.copy)
    for loop, index in entries:
        if loop == name:
            return index + offset
    if not name and entries:
        return entries[0][1] + offset
    where = f"the copy loop '{args[0]}'" if name else "a copy loop"
    raise ExpressionError(
        f"The template function 'copyIndex' is not expected at this location: it must be used in {where}. {HELP}"
    )


def _reference(ctx: Ctx, args: list[Any]) -> Any:
    target = text("reference", args[0])
    api = text("reference", args[1]) if len(args) > 1 and args[1] is not None else None
    full = len(args) > 2 and str(args[2]).lower() == "full"
    return ctx.scope.reference(ctx, target, api, full)


def _resource_info(ctx: Ctx, args: list[Any]) -> Any:
    return ctx.scope.reference(ctx, "resourceinfo:" + text("resourceInfo", args[0]), None, True)


def _references(ctx: Ctx, args: list[Any]) -> Any:
    full = len(args) > 1 and str(args[1]).lower() == "full"
    return ctx.scope.reference(ctx, "references:" + text("references", args[0]), None, full)


def list_function(spelled: str) -> Spec:
    """The ``list*`` function called ``spelled``: ``list*(resourceIdOrName, apiVersion, [body])``."""

    def call(ctx: Ctx, args: list[Any]) -> Any:
        target = text(spelled, args[0])
        api = text(spelled, args[1]) if len(args) > 1 else None
        return ctx.scope.lister(ctx, spelled, target, api, args[2] if len(args) > 2 else None)

    return spec(call, 2, 3)


def _resource_group(ctx: Ctx, args: list[Any]) -> dict[str, Any]:
    scope = ctx.scope
    if scope.resource_group is None:
        raise ExpressionError(
            f"The template function 'resourceGroup' is not expected at this location: "
            f"the deployment is not to a resource group. {HELP}"
        )
    group = dict(scope.group or {})
    return {
        "id": scope.group_id,
        "name": scope.resource_group,
        "type": "Microsoft.Resources/resourceGroups",
        "location": scope.location,
        "tags": group.get("tags") or {},
        "properties": {"provisioningState": "Succeeded"},
    }


def _subscription(ctx: Ctx, args: list[Any]) -> dict[str, Any]:
    scope = ctx.scope
    return {
        "id": f"/subscriptions/{scope.subscription_id}",
        "subscriptionId": scope.subscription_id,
        "tenantId": scope.tenant_id,
        "displayName": "Strata sandbox",
    }


def _tenant(ctx: Ctx, args: list[Any]) -> dict[str, Any]:
    tenant = ctx.scope.tenant_id
    return {"countryCode": "US", "displayName": "Strata sandbox tenant", "id": f"/tenants/{tenant}", "tenantId": tenant}


def _network(name: str, value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text(name, value), strict=False)
    except ValueError as exc:
        raise fail(name, f"The provided value '{value}' is not a valid CIDR: {exc}.") from exc


def _cidr_subnet(ctx: Ctx, args: list[Any]) -> str:
    network = _network("cidrSubnet", args[0])
    bits, index = integer("cidrSubnet", args[1]), integer("cidrSubnet", args[2])
    if (
        bits < network.prefixlen
        or bits > network.max_prefixlen
        or index < 0
        or index >= 2 ** (bits - network.prefixlen)
    ):
        raise fail("cidrSubnet", f"Subnet {index} of size /{bits} does not fit in {network}.")
    size = 2 ** (network.max_prefixlen - bits)
    return str(ipaddress.ip_network(f"{network.network_address + index * size}/{bits}"))


def _cidr_host(ctx: Ctx, args: list[Any]) -> str:
    network = _network("cidrHost", args[0])
    index = integer("cidrHost", args[1])
    reserved = 1 if network.version == 4 and network.prefixlen < 31 else 0
    if index < 0 or index + reserved >= network.num_addresses - (1 if network.version == 4 else 0):
        raise fail("cidrHost", f"Host {index} does not fit in {network}.")
    return str(network.network_address + index + reserved)


def _parse_cidr(ctx: Ctx, args: list[Any]) -> dict[str, Any]:
    network = _network("parseCidr", args[0])
    result: dict[str, Any] = {"network": str(network.network_address), "cidr": network.prefixlen}
    if network.version == 4:
        result["netmask"] = str(network.netmask)
        result["broadcast"] = str(network.broadcast_address)
        small = network.prefixlen >= 31
        result["firstUsable"] = str(network.network_address + (0 if small else 1))
        result["lastUsable"] = str(network.broadcast_address - (0 if small else 1))
    else:
        result["firstUsable"] = str(network.network_address)
        result["lastUsable"] = str(network.broadcast_address)
    return result


def _pick_zones(ctx: Ctx, args: list[Any]) -> list[str]:
    location = text("pickZones", args[2]).lower().replace(" ", "")
    count = integer("pickZones", args[3]) if len(args) > 3 else 1
    offset = integer("pickZones", args[4]) if len(args) > 4 else 0
    if location not in ZONAL_REGIONS:
        return []
    zones = ["1", "2", "3"]
    return [zones[(offset + i) % 3] for i in range(min(count, 3))]


def _providers(ctx: Ctx, args: list[Any]) -> dict[str, Any]:
    namespace = text("providers", args[0])
    kind = text("providers", args[1]) if len(args) > 1 else "resources"
    entry = {"resourceType": kind, "locations": ["West Europe", "East US"], "apiVersions": ["2023-01-01"]}
    if len(args) > 1:
        return entry
    return {"namespace": namespace, "resourceTypes": [entry]}


def _management_group(ctx: Ctx, args: list[Any]) -> Any:
    raise Unsupported("managementGroup() (management group deployments)")


FUNCTIONS: dict[str, Spec] = {
    "parameters": spec(_parameters, 1),
    "variables": spec(lambda ctx, args: ctx.scope.variable(text("variables", args[0])), 1),
    "copyindex": spec(_copy_index, 0, 2),
    "deployment": spec(lambda ctx, args: dict(ctx.scope.deployment), 0),
    "environment": spec(lambda ctx, args: ENVIRONMENT, 0),
    "resourceid": spec(_resource_id, 2, None),
    "subscriptionresourceid": spec(_subscription_resource_id, 2, None),
    "tenantresourceid": spec(_tenant_resource_id, 2, None),
    "managementgroupresourceid": spec(_management_group_resource_id, 2, None),
    "extensionresourceid": spec(_extension_resource_id, 3, None),
    "reference": spec(_reference, 1, 3),
    "resourceinfo": spec(_resource_info, 1),
    "references": spec(_references, 1, 2),
    "resourcegroup": spec(_resource_group, 0),
    "subscription": spec(_subscription, 0),
    "tenant": spec(_tenant, 0),
    "managementgroup": spec(_management_group, 0),
    "cidrsubnet": spec(_cidr_subnet, 3),
    "cidrhost": spec(_cidr_host, 2),
    "parsecidr": spec(_parse_cidr, 1),
    "pickzones": spec(_pick_zones, 3, 5),
    "providers": spec(_providers, 1, 2),
}
