"""Read-only properties of common Azure resource types, as their providers fill them in.

One hook per resource type (lower case) in ``COMPUTED``: it sets the properties Azure
returns after a PUT (``primaryEndpoints``, ``vaultUri``, ``defaultHostName``,
``fullyQualifiedDomainName``, ``documentEndpoint``, ``loginServer``, ``customerId``,
``InstrumentationKey``, ...) without overriding values the template gave, and returns the
child resources the provider creates with it (a virtual network's subnets).
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from strataflow.sandbox.arm_eval import Scope

Hook = Callable[[dict[str, Any], "Scope"], list[dict[str, Any]]]


def short_name(resource: dict[str, Any]) -> str:
    """The last segment of a resource's name, lower case."""
    return str(resource["name"]).split("/")[-1].lower()


def location_of(resource: dict[str, Any], scope: Scope) -> str:
    """The resource's location (its group's when it has none), normalized."""
    return str(resource.get("location") or scope.location).lower().replace(" ", "")


def _guid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts).lower()))


def _hash(text: str, size: int = 8) -> str:
    return hashlib.sha256(text.lower().encode()).hexdigest()[:size]


def _ip(resource_id: str, first: int = 20) -> str:
    digest = hashlib.sha256(resource_id.lower().encode()).digest()
    return f"{first}.{digest[0]}.{digest[1]}.{digest[2] or 1}"


def _props(resource: dict[str, Any]) -> dict[str, Any]:
    props = resource.setdefault("properties", {})
    return props if isinstance(props, dict) else {}


def _set(**values: Any) -> Hook:
    """A hook that sets properties from templates over ``{name}``, ``{location}``, ``{hash}``, ``{guid}``."""

    def hook(resource: dict[str, Any], scope: Scope) -> list[dict[str, Any]]:
        props = _props(resource)
        fields = {
            "name": short_name(resource),
            "location": location_of(resource, scope),
            "hash": _hash(resource["id"]),
            "guid": _guid(resource["id"]),
            "tenant": scope.tenant_id,
        }
        for key, value in values.items():
            props.setdefault(key, _fill(value, fields))
        return []

    return hook


def _fill(value: Any, fields: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**fields)
    if isinstance(value, dict):
        return {k: _fill(v, fields) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, fields) for v in value]
    return value


def _cluster(resource: dict[str, Any], scope: Scope) -> list[dict[str, Any]]:
    props, location = _props(resource), location_of(resource, scope)
    prefix = props.get("dnsPrefix") or resource["name"]
    props.setdefault("fqdn", f"{prefix}-{_hash(resource['id'])}.hcp.{location}.azmk8s.io")
    props.setdefault("azurePortalFQDN", f"{prefix}-{_hash(resource['id'])}.portal.hcp.{location}.azmk8s.io")
    if (props.get("apiServerAccessProfile") or {}).get("enablePrivateCluster"):
        props.setdefault("privateFQDN", f"{prefix}-{_hash(resource['id'])}.privatelink.{location}.azmk8s.io")
    props.setdefault("nodeResourceGroup", f"MC_{scope.resource_group}_{resource['name']}_{location}")
    props.setdefault("kubernetesVersion", "1.29.9")
    props.setdefault("currentKubernetesVersion", props["kubernetesVersion"])
    props.setdefault("powerState", {"code": "Running"})
    kubelet = (
        f"/subscriptions/{scope.subscription_id}/resourceGroups/{props['nodeResourceGroup']}"
        f"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{resource['name']}-agentpool"
    )
    if scope.resource_group is not None:
        kubelet = (
            f"{scope.group_id}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{resource['name']}-agentpool"
        )
    props.setdefault(
        "identityProfile",
        {
            "kubeletidentity": {
                "resourceId": kubelet,
                "clientId": _guid(kubelet, "client"),
                "objectId": _guid(kubelet, "principal"),
            }
        },
    )
    oidc = props.get("oidcIssuerProfile")
    if isinstance(oidc, dict) and oidc.get("enabled"):
        oidc["issuerURL"] = f"https://{location}.oic.prod-aks.azure.com/{scope.tenant_id}/{_guid(resource['id'])}/"
    return []


def _public_ip(resource: dict[str, Any], scope: Scope) -> list[dict[str, Any]]:
    props = _props(resource)
    props.setdefault("ipAddress", _ip(resource["id"]))
    dns = props.get("dnsSettings")
    if isinstance(dns, dict) and dns.get("domainNameLabel"):
        dns.setdefault(
            "fqdn", f"{str(dns['domainNameLabel']).lower()}.{location_of(resource, scope)}.cloudapp.azure.com"
        )
    return []


def _virtual_network(resource: dict[str, Any], scope: Scope) -> list[dict[str, Any]]:
    children = []
    for subnet in _props(resource).get("subnets", []) or []:
        if not isinstance(subnet, dict):
            continue
        subnet_id = f"{resource['id']}/subnets/{subnet.get('name')}"
        subnet["id"] = subnet_id
        subnet.setdefault("properties", {})["provisioningState"] = "Succeeded"
        children.append(
            {
                "id": subnet_id,
                "name": f"{resource['name']}/{subnet.get('name')}",
                "type": "Microsoft.Network/virtualNetworks/subnets",
                "apiVersion": resource.get("apiVersion"),
                "properties": copy.deepcopy(subnet["properties"]),
            }
        )
    return children


def _nic(resource: dict[str, Any], scope: Scope) -> list[dict[str, Any]]:
    props = _props(resource)
    digest = hashlib.sha256(resource["id"].lower().encode()).digest()
    for index, config in enumerate(props.get("ipConfigurations") or []):
        if isinstance(config, dict):
            inner = config.setdefault("properties", {})
            inner.setdefault("privateIPAddress", f"10.0.{digest[0] % 250}.{4 + index + digest[1] % 200}")
            inner.setdefault("privateIPAllocationMethod", "Dynamic")
    props.setdefault("macAddress", "-".join(f"{b:02X}" for b in digest[:6]))
    return []


def _firewall(resource: dict[str, Any], scope: Scope) -> list[dict[str, Any]]:
    props = _props(resource)
    for index, config in enumerate(props.get("ipConfigurations") or []):
        if isinstance(config, dict):
            config.setdefault("properties", {}).setdefault("privateIPAddress", f"10.0.1.{4 + index}")
    props.setdefault("hubIPAddresses", {"privateIPAddress": "10.0.1.4"})
    return []


def _container_group(resource: dict[str, Any], scope: Scope) -> list[dict[str, Any]]:
    props = _props(resource)
    address = props.setdefault("ipAddress", {"type": "Private", "ports": []})
    if isinstance(address, dict):
        address.setdefault("ip", _ip(resource["id"]))
        if address.get("dnsNameLabel"):
            address.setdefault("fqdn", f"{address['dnsNameLabel']}.{location_of(resource, scope)}.azurecontainer.io")
    return []


def _container_app(resource: dict[str, Any], scope: Scope) -> list[dict[str, Any]]:
    props = _props(resource)
    domain = f"{_hash(str(props.get('managedEnvironmentId') or props.get('environmentId') or scope.group_id))}"
    domain += f".{location_of(resource, scope)}.azurecontainerapps.io"
    ingress = (props.get("configuration") or {}).get("ingress")
    if isinstance(ingress, dict):
        ingress.setdefault("fqdn", f"{short_name(resource)}.{domain}")
    props.setdefault("latestRevisionFqdn", f"{short_name(resource)}--{_hash(resource['id'], 7)}.{domain}")
    props.setdefault("outboundIpAddresses", [_ip(resource["id"])])
    return []


def _key_vault_child(kind: str) -> Hook:
    def hook(resource: dict[str, Any], scope: Scope) -> list[dict[str, Any]]:
        vault, name = str(resource["name"]).split("/")[0].lower(), short_name(resource)
        base = f"https://{vault}.vault.azure.net/{kind}/{name}"
        _props(resource).setdefault(f"{kind[:-1]}Uri", base)
        _props(resource).setdefault(f"{kind[:-1]}UriWithVersion", f"{base}/{_hash(resource['id'], 32)}")
        return []

    return hook


def _traffic_manager(resource: dict[str, Any], scope: Scope) -> list[dict[str, Any]]:
    dns = _props(resource).get("dnsConfig")
    if isinstance(dns, dict) and dns.get("relativeName"):
        dns.setdefault("fqdn", f"{str(dns['relativeName']).lower()}.trafficmanager.net")
    return []


def _record_set(resource: dict[str, Any], scope: Scope) -> list[dict[str, Any]]:
    parts = str(resource["name"]).split("/")
    record = parts[-1]
    _props(resource).setdefault("fqdn", f"{parts[0]}." if record == "@" else f"{record}.{parts[0]}.")
    return []


def _api_management(resource: dict[str, Any], scope: Scope) -> list[dict[str, Any]]:
    props, name = _props(resource), short_name(resource)
    _set(
        gatewayUrl="https://{name}.azure-api.net",
        portalUrl="https://{name}.portal.azure-api.net",
        developerPortalUrl="https://{name}.developer.azure-api.net",
        managementApiUrl="https://{name}.management.azure-api.net",
        scmUrl="https://{name}.scm.azure-api.net",
        publicIPAddresses=["20.7.7.7"],
    )(resource, scope)
    props.setdefault(
        "hostnameConfigurations",
        [
            {
                "type": "Proxy",
                "hostName": f"{name}.azure-api.net",
                "negotiateClientCertificate": False,
                "defaultSslBinding": True,
            }
        ],
    )
    if str(props.get("virtualNetworkType", "None")).lower() in ("internal", "external"):
        props.setdefault("privateIPAddresses", ["10.0.0.5"])
    return []


def _prefix_hook(kind: str) -> Hook | None:
    """Hooks for whole families of types (DNS record sets)."""
    for prefix in ("microsoft.network/dnszones/", "microsoft.network/privatednszones/"):
        if kind.startswith(prefix) and kind.count("/") == 2 and not kind.endswith(("virtualnetworklinks", "soa")):
            return _record_set
    return None


def hook_for(kind: str) -> Hook | None:
    """The read-only-properties hook of a resource type (lower case), if any."""
    return COMPUTED.get(kind) or _prefix_hook(kind)


_ENDPOINTS = {
    "blob": "https://{name}.blob.core.windows.net/",
    "queue": "https://{name}.queue.core.windows.net/",
    "table": "https://{name}.table.core.windows.net/",
    "file": "https://{name}.file.core.windows.net/",
    "web": "https://{name}.z6.web.core.windows.net/",
    "dfs": "https://{name}.dfs.core.windows.net/",
}
_SERVICE_BUS = _set(serviceBusEndpoint="https://{name}.servicebus.windows.net:443/", metricId="{guid}:{name}")

COMPUTED: dict[str, Hook] = {
    "microsoft.managedidentity/userassignedidentities": _set(
        tenantId="{tenant}", principalId="{guid}", clientId="{hash}-0000-4000-8000-000000000000"
    ),
    "microsoft.containerregistry/registries": _set(loginServer="{name}.azurecr.io"),
    "microsoft.containerservice/managedclusters": _cluster,
    "microsoft.operationalinsights/workspaces": _set(customerId="{guid}"),
    "microsoft.network/publicipaddresses": _public_ip,
    "microsoft.network/virtualnetworks": _virtual_network,
    "microsoft.network/networkinterfaces": _nic,
    "microsoft.network/azurefirewalls": _firewall,
    "microsoft.network/bastionhosts": _set(dnsName="bst-{guid}.bastion.azure.com"),
    "microsoft.network/privateendpoints": _set(customDnsConfigs=[], networkInterfaces=[]),
    "microsoft.network/trafficmanagerprofiles": _traffic_manager,
    "microsoft.network/dnszones": _set(
        nameServers=[
            "ns1-01.azure-dns.com.",
            "ns2-01.azure-dns.net.",
            "ns3-01.azure-dns.org.",
            "ns4-01.azure-dns.info.",
        ]
    ),
    "microsoft.network/frontdoors": _set(cname="{name}.azurefd.net"),
    "microsoft.storage/storageaccounts": _set(
        primaryEndpoints=_ENDPOINTS,
        primaryLocation="{location}",
        statusOfPrimary="available",
        creationTime="2024-01-01T00:00:00.0000000Z",
    ),
    "microsoft.keyvault/vaults": _set(vaultUri="https://{name}.vault.azure.net/"),
    "microsoft.keyvault/managedhsms": _set(hsmUri="https://{name}.managedhsm.azure.net/"),
    "microsoft.keyvault/vaults/secrets": _key_vault_child("secrets"),
    "microsoft.keyvault/vaults/keys": _key_vault_child("keys"),
    "microsoft.web/sites": _set(
        defaultHostName="{name}.azurewebsites.net",
        hostNames=["{name}.azurewebsites.net"],
        enabledHostNames=["{name}.azurewebsites.net", "{name}.scm.azurewebsites.net"],
        outboundIpAddresses="20.1.2.3,20.1.2.4",
        possibleOutboundIpAddresses="20.1.2.3,20.1.2.4,20.1.2.5",
        customDomainVerificationId="{hash}{hash}{hash}{hash}",
        state="Running",
    ),
    "microsoft.web/sites/slots": _set(defaultHostName="{name}.azurewebsites.net", state="Running"),
    "microsoft.web/staticsites": _set(defaultHostname="{hash}-{name}.azurestaticapps.net"),
    "microsoft.sql/servers": _set(fullyQualifiedDomainName="{name}.database.windows.net", state="Ready"),
    "microsoft.sql/managedinstances": _set(fullyQualifiedDomainName="{name}.{hash}.database.windows.net"),
    "microsoft.dbforpostgresql/servers": _set(fullyQualifiedDomainName="{name}.postgres.database.azure.com"),
    "microsoft.dbforpostgresql/flexibleservers": _set(fullyQualifiedDomainName="{name}.postgres.database.azure.com"),
    "microsoft.dbformysql/servers": _set(fullyQualifiedDomainName="{name}.mysql.database.azure.com"),
    "microsoft.dbformysql/flexibleservers": _set(fullyQualifiedDomainName="{name}.mysql.database.azure.com"),
    "microsoft.dbformariadb/servers": _set(fullyQualifiedDomainName="{name}.mariadb.database.azure.com"),
    "microsoft.documentdb/databaseaccounts": _set(
        documentEndpoint="https://{name}.documents.azure.com:443/",
        writeLocations=[
            {"locationName": "{location}", "documentEndpoint": "https://{name}-{location}.documents.azure.com:443/"}
        ],
        readLocations=[
            {"locationName": "{location}", "documentEndpoint": "https://{name}-{location}.documents.azure.com:443/"}
        ],
    ),
    "microsoft.insights/components": _set(
        InstrumentationKey="{guid}",
        ConnectionString="InstrumentationKey={guid};IngestionEndpoint=https://{location}-0.in.applicationinsights.azure.com/;"
        "LiveEndpoint=https://{location}.livediagnostics.monitor.azure.com/",
        AppId="{hash}-0000-4000-8000-00000000ab00",
        ApplicationId="{name}",
    ),
    "microsoft.servicebus/namespaces": _SERVICE_BUS,
    "microsoft.eventhub/namespaces": _SERVICE_BUS,
    "microsoft.relay/namespaces": _SERVICE_BUS,
    "microsoft.notificationhubs/namespaces": _SERVICE_BUS,
    "microsoft.cache/redis": _set(hostName="{name}.redis.cache.windows.net", port=6379, sslPort=6380),
    "microsoft.cache/redisenterprise": _set(hostName="{name}.{location}.redisenterprise.cache.azure.net"),
    "microsoft.signalrservice/signalr": _set(hostName="{name}.service.signalr.net", externalIP="20.9.8.7"),
    "microsoft.signalrservice/webpubsub": _set(hostName="{name}.webpubsub.azure.com", externalIP="20.9.8.6"),
    "microsoft.cognitiveservices/accounts": _set(
        endpoint="https://{location}.api.cognitive.microsoft.com/",
        endpoints={"default": "https://{location}.api.cognitive.microsoft.com/"},
    ),
    "microsoft.appconfiguration/configurationstores": _set(endpoint="https://{name}.azconfig.io"),
    "microsoft.containerinstance/containergroups": _container_group,
    "microsoft.app/managedenvironments": _set(
        defaultDomain="{hash}.{location}.azurecontainerapps.io", staticIp="20.4.5.6"
    ),
    "microsoft.app/containerapps": _container_app,
    "microsoft.apimanagement/service": _api_management,
    "microsoft.devices/iothubs": _set(
        hostName="{name}.azure-devices.net",
        eventHubEndpoints={
            "events": {"endpoint": "sb://iothub-ns-{name}-{hash}.servicebus.windows.net/", "path": "{name}"}
        },
    ),
    "microsoft.eventgrid/topics": _set(endpoint="https://{name}.{location}-1.eventgrid.azure.net/api/events"),
    "microsoft.eventgrid/domains": _set(endpoint="https://{name}.{location}-1.eventgrid.azure.net/api/events"),
    "microsoft.logic/workflows": _set(accessEndpoint="https://prod-00.{location}.logic.azure.com:443/workflows/{hash}"),
    "microsoft.databricks/workspaces": _set(workspaceUrl="adb-{hash}.1.azuredatabricks.net", workspaceId="{hash}"),
    "microsoft.synapse/workspaces": _set(
        connectivityEndpoints={
            "web": "https://web.azuresynapse.net?workspace=%2fsubscriptions%2f{name}",
            "dev": "https://{name}.dev.azuresynapse.net",
            "sql": "{name}.sql.azuresynapse.net",
            "sqlOnDemand": "{name}-ondemand.sql.azuresynapse.net",
        }
    ),
    "microsoft.kusto/clusters": _set(
        uri="https://{name}.{location}.kusto.windows.net",
        dataIngestionUri="https://ingest-{name}.{location}.kusto.windows.net",
    ),
    "microsoft.machinelearningservices/workspaces": _set(
        workspaceId="{guid}", discoveryUrl="https://{location}.api.azureml.ms/discovery"
    ),
    "microsoft.batch/batchaccounts": _set(accountEndpoint="{name}.{location}.batch.azure.com"),
    "microsoft.cdn/profiles/endpoints": _set(hostName="{name}.azureedge.net"),
    "microsoft.cdn/profiles/afdendpoints": _set(hostName="{name}-{hash}.z01.azurefd.net"),
    "microsoft.compute/virtualmachines": _set(vmId="{guid}"),
    "microsoft.compute/virtualmachinescalesets": _set(uniqueId="{guid}"),
    "microsoft.compute/disks": _set(uniqueId="{guid}"),
    "microsoft.maps/accounts": _set(uniqueId="{guid}"),
    "microsoft.purview/accounts": _set(
        endpoints={
            "catalog": "https://{name}.purview.azure.com/catalog",
            "scan": "https://{name}.purview.azure.com/scan",
            "guardian": "https://{name}.purview.azure.com/policy",
        }
    ),
    "microsoft.search/searchservices": _set(status="running"),
    "microsoft.cdn/profiles": _set(frontDoorId="{guid}"),
    "microsoft.cdn/profiles/customdomains": _set(
        validationProperties={"validationToken": "{hash}{hash}", "expirationDate": "2030-01-01T00:00:00+00:00"}
    ),
    "microsoft.digitaltwins/digitaltwinsinstances": _set(hostName="{name}.api.{location}.digitaltwins.azure.net"),
    "microsoft.timeseriesinsights/environments": _set(
        dataAccessFqdn="{guid}-{name}.env.timeseries.azure.com", dataAccessId="{guid}"
    ),
    "microsoft.servicefabric/clusters": _set(
        clusterEndpoint="https://{location}.servicefabric.azure.com/runtime/clusters/{guid}"
    ),
    "microsoft.web/certificates": _set(thumbprint="{hash}{hash}{hash}{hash}{hash}"),
    "microsoft.certificateregistration/certificateorders": _set(domainVerificationToken="{hash}{hash}"),
    "microsoft.domainregistration/domains": _set(domainVerificationToken="{hash}{hash}"),
    "microsoft.web/hostingenvironments": _set(
        dnsSuffix="{name}.appserviceenvironment.net", internalInboundIpAddresses=["10.0.0.11"]
    ),
    "microsoft.insights/actiongroups": _set(),
}
