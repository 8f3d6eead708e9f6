"""What resource providers add to a resource: read-only properties and ``list*`` answers.

``computed`` fills in the read-only properties Azure's providers return (endpoints, host
names, FQDNs, keys' owners, identity ids, ...) for the common resource types, so templates
that read them with ``reference()`` work as on Azure; every resource gets
``provisioningState``, and a system- or user-assigned ``identity`` gets its principal ids.
``list_result`` answers ``listKeys``, ``listSecrets``, ``listConnectionStrings``,
``listCredentials``, ``listCallbackUrl``, ``listAccountSas``, ... with the shapes Azure's
providers use; for an action it does not know it answers an object carrying the common key
fields. Every generated value is deterministic (derived from the resource id).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import uuid
from collections.abc import Callable
from typing import Any

from strataflow.sandbox.arm_eval import Scope
from strataflow.sandbox.arm_resource_types import hook_for, location_of, short_name
from strataflow.sandbox.arm_values import OpaqueOutputs


def guid_of(*parts: str) -> str:
    """A deterministic GUID for ``parts`` (case-insensitive)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts).lower()))


def key_of(resource_id: str, label: str) -> str:
    """A deterministic 88-character base64 key, like a storage account key."""
    return base64.b64encode(hashlib.sha512(f"{resource_id.lower()}|{label}".encode()).digest()).decode()


def _identity(resource: dict[str, Any], scope: Scope) -> None:
    identity = resource.get("identity")
    if not isinstance(identity, dict):
        return
    kind = str(identity.get("type", "")).lower()
    if "systemassigned" in kind:
        identity.setdefault("principalId", guid_of(resource["id"], "system-principal"))
        identity.setdefault("tenantId", scope.tenant_id)
    assigned = identity.get("userAssignedIdentities")
    if isinstance(assigned, dict):
        for key in list(assigned):
            value = assigned[key] if isinstance(assigned[key], dict) else {}
            value.setdefault("principalId", guid_of(key, "principal"))
            value.setdefault("clientId", guid_of(key, "client"))
            assigned[key] = value


def _sub_ids(resource: dict[str, Any]) -> None:
    """Named sub-objects of network resources (``frontendIPConfigurations``, ...) get their ids."""
    for key, value in (resource.get("properties") or {}).items():
        if not isinstance(value, list):
            continue
        for item in value:
            if (
                isinstance(item, dict)
                and isinstance(item.get("name"), str)
                and isinstance(item.get("properties"), dict)
            ):
                item.setdefault("id", f"{resource['id']}/{key}/{item['name']}")


def computed(resource: dict[str, Any], scope: Scope) -> list[dict[str, Any]]:
    """Fill in the provider's read-only properties; returns child resources it creates."""
    props = resource.setdefault("properties", {})
    if not isinstance(props, dict):
        resource["properties"] = props = {}
    props["provisioningState"] = "Succeeded"
    if "location" in resource and isinstance(resource["location"], str):
        resource["location"] = resource["location"].lower().replace(" ", "")
    _identity(resource, scope)
    hook = hook_for(resource["type"].lower())
    children = hook(resource, scope) if hook else []
    if resource["type"].lower().startswith("microsoft.network/"):
        _sub_ids(resource)
    if resource["type"].lower() == "microsoft.resources/deploymentscripts":
        props["outputs"] = OpaqueOutputs(props.get("outputs") or {})
    return children


# --- list* actions -------------------------------------------------------------------


def _two_keys(rid: str) -> dict[str, str]:
    return {"primaryKey": key_of(rid, "primary"), "secondaryKey": key_of(rid, "secondary")}


def _sas_rule(resource: dict[str, Any], scope: Scope) -> dict[str, Any]:
    rid, parts = resource["id"], resource["name"].split("/")
    namespace, rule = parts[0], parts[-1]
    entity = f";EntityPath={parts[1]}" if len(parts) > 2 else ""
    suffix = "servicebus.windows.net"
    keys = _two_keys(rid)

    def connection(key: str) -> str:
        return f"Endpoint=sb://{namespace}.{suffix}/;SharedAccessKeyName={rule};SharedAccessKey={key}{entity}"

    return {
        "primaryConnectionString": connection(keys["primaryKey"]),
        "secondaryConnectionString": connection(keys["secondaryKey"]),
        **keys,
        "keyName": rule,
    }


def _storage_keys(resource: dict[str, Any], scope: Scope) -> dict[str, Any]:
    rid = resource["id"]
    return {
        "key1": key_of(rid, "key1"),
        "key2": key_of(rid, "key2"),
        "keys": [
            {"keyName": "key1", "value": key_of(rid, "key1"), "permissions": "FULL"},
            {"keyName": "key2", "value": key_of(rid, "key2"), "permissions": "FULL"},
        ],
    }


def _cosmos_keys(resource: dict[str, Any], scope: Scope) -> dict[str, Any]:
    rid = resource["id"]
    return {
        "primaryMasterKey": key_of(rid, "primaryMaster"),
        "secondaryMasterKey": key_of(rid, "secondaryMaster"),
        "primaryReadonlyMasterKey": key_of(rid, "primaryReadonly"),
        "secondaryReadonlyMasterKey": key_of(rid, "secondaryReadonly"),
    }


def _generic_keys(resource: dict[str, Any], scope: Scope) -> dict[str, Any]:
    rid = resource["id"]
    keys = _two_keys(rid)
    return {
        **_storage_keys(resource, scope),
        **keys,
        "key1": key_of(rid, "key1"),
        "key2": key_of(rid, "key2"),
        "primarySharedKey": keys["primaryKey"],
        "secondarySharedKey": keys["secondaryKey"],
        "primaryConnectionString": f"Endpoint=https://{short_name(resource)}/;Key={keys['primaryKey']}",
        "secondaryConnectionString": f"Endpoint=https://{short_name(resource)}/;Key={keys['secondaryKey']}",
        "value": [
            {"keyName": "primary", "name": "primary", "primaryKey": keys["primaryKey"], "value": keys["primaryKey"]}
        ],
    }


_KEYS_BY_TYPE: dict[str, Callable[[dict[str, Any], Scope], dict[str, Any]]] = {
    "microsoft.storage/storageaccounts": _storage_keys,
    "microsoft.documentdb/databaseaccounts": _cosmos_keys,
    "microsoft.cache/redis": lambda r, s: _two_keys(r["id"]),
    "microsoft.maps/accounts": lambda r, s: _two_keys(r["id"]),
    "microsoft.operationalinsights/workspaces": lambda r, s: {
        "primarySharedKey": key_of(r["id"], "primary"),
        "secondarySharedKey": key_of(r["id"], "secondary"),
    },
    "microsoft.cognitiveservices/accounts": lambda r, s: {
        "key1": key_of(r["id"], "key1"),
        "key2": key_of(r["id"], "key2"),
    },
    "microsoft.batch/batchaccounts": lambda r, s: {
        "accountName": short_name(r),
        "primary": key_of(r["id"], "primary"),
        "secondary": key_of(r["id"], "secondary"),
    },
    "microsoft.devices/iothubs": lambda r, s: {
        "value": [{"keyName": "iothubowner", **_two_keys(r["id"]), "rights": "RegistryWrite, ServiceConnect"}]
    },
    "microsoft.automation/automationaccounts": lambda r, s: {
        "keys": [
            {"KeyName": "Primary", "Permissions": "Full", "Value": key_of(r["id"], "primary")},
            {"KeyName": "Secondary", "Permissions": "Full", "Value": key_of(r["id"], "secondary")},
        ]
    },
    "microsoft.appconfiguration/configurationstores": lambda r, s: {
        "value": [
            {
                "id": key_of(r["id"], "id")[:12],
                "name": name,
                "value": key_of(r["id"], name),
                "connectionString": f"Endpoint=https://{short_name(r)}.azconfig.io;Id={name};"
                f"Secret={key_of(r['id'], name)}",
                "readOnly": name.startswith("Secondary"),
            }
            for name in ("Primary", "Secondary")
        ]
    },
    "microsoft.web/sites/host": lambda r, s: {
        "masterKey": key_of(r["id"], "master")[:56],
        "functionKeys": {"default": key_of(r["id"], "default")[:56]},
        "systemKeys": {},
    },
    "microsoft.web/sites": lambda r, s: {
        "masterKey": key_of(r["id"], "master")[:56],
        "functionKeys": {"default": key_of(r["id"], "default")[:56]},
        "systemKeys": {},
    },
    "microsoft.signalrservice/signalr": lambda r, s: {
        **_two_keys(r["id"]),
        "primaryConnectionString": f"Endpoint=https://{short_name(r)}.service.signalr.net;"
        f"AccessKey={key_of(r['id'], 'primary')};Version=1.0;",
        "secondaryConnectionString": f"Endpoint=https://{short_name(r)}.service.signalr.net;"
        f"AccessKey={key_of(r['id'], 'secondary')};Version=1.0;",
    },
}


def _keys(resource: dict[str, Any], scope: Scope) -> dict[str, Any]:
    kind = resource["type"].lower()
    if kind.endswith("/authorizationrules"):
        return _sas_rule(resource, scope)
    hook = _KEYS_BY_TYPE.get(kind)
    return hook(resource, scope) if hook else _generic_keys(resource, scope)


def _callback(resource: dict[str, Any], scope: Scope) -> dict[str, Any]:
    location = location_of(resource, scope)
    signature = key_of(resource["id"], "sig")[:43].replace("/", "_").replace("+", "-")
    workflow = guid_of(resource["id"]).replace("-", "")
    base = f"https://prod-00.{location}.logic.azure.com:443/workflows/{workflow}/triggers/manual/paths/invoke"
    queries = {"api-version": "2016-10-01", "sp": "/triggers/manual/run", "sv": "1.0", "sig": signature}
    query = "&".join(f"{k}={v}" for k, v in queries.items())
    return {"value": f"{base}?{query}", "method": "POST", "basePath": base, "queries": queries}


def _credentials(resource: dict[str, Any], scope: Scope) -> dict[str, Any]:
    rid = resource["id"]
    return {
        "username": short_name(resource),
        "passwords": [
            {"name": "password", "value": key_of(rid, "password")[:32]},
            {"name": "password2", "value": key_of(rid, "password2")[:32]},
        ],
    }


def _kubeconfig(resource: dict[str, Any], scope: Scope) -> dict[str, Any]:
    server = (resource.get("properties") or {}).get("fqdn", f"{short_name(resource)}.hcp.azmk8s.io")
    config = f"apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: https://{server}:443\n  name: {short_name(resource)}\n"
    return {"kubeconfigs": [{"name": "clusterAdmin", "value": base64.b64encode(config.encode()).decode()}]}


def _connection_strings(resource: dict[str, Any], scope: Scope) -> dict[str, Any]:
    keys = _cosmos_keys(resource, scope)
    endpoint = f"https://{short_name(resource)}.documents.azure.com:443/"
    return {
        "connectionStrings": [
            {
                "connectionString": f"AccountEndpoint={endpoint};AccountKey={keys['primaryMasterKey']};",
                "description": "Primary SQL Connection String",
            },
            {
                "connectionString": f"AccountEndpoint={endpoint};AccountKey={keys['secondaryMasterKey']};",
                "description": "Secondary SQL Connection String",
            },
        ]
    }


def _publishing(resource: dict[str, Any], scope: Scope) -> dict[str, Any]:
    site = resource["name"].split("/")[0]
    return {
        "properties": {
            "publishingUserName": f"${site}",
            "publishingPassword": key_of(resource["id"], "publishing")[:60],
            "scmUri": f"https://${site}:secret@{site}.scm.azurewebsites.net",
        }
    }


def _generic_list(resource: dict[str, Any], scope: Scope) -> dict[str, Any]:
    if resource["type"].lower() == "microsoft.web/sites/config" and resource["name"].lower().endswith(
        "/publishingcredentials"
    ):
        return _publishing(resource, scope)
    props = copy.deepcopy(resource.get("properties") or {})
    return {"properties": props, **props, "value": [props]}


_ACTIONS: dict[str, Callable[[dict[str, Any], Scope], dict[str, Any]]] = {
    "listkeys": _keys,
    "listadminkeys": lambda r, s: _two_keys(r["id"]),
    "listquerykeys": lambda r, s: {"value": [{"name": "default", "key": key_of(r["id"], "query")[:52]}]},
    "listauthkeys": lambda r, s: {"authKey1": key_of(r["id"], "auth1"), "authKey2": key_of(r["id"], "auth2")},
    "listconnectionstrings": _connection_strings,
    "listcredentials": _credentials,
    "listcredential": _credentials,
    "listcallbackurl": _callback,
    "listsecrets": lambda r, s: {
        "key": key_of(r["id"], "function")[:56],
        "trigger_url": f"https://{r['name'].split('/')[0]}.azurewebsites.net/api/{r['name'].split('/')[-1]}",
        **_generic_keys(r, s),
    },
    "listaccountsas": lambda r, s: {
        "accountSasToken": f"sv=2021-06-08&ss=b&srt=co&sp=rl&sig={key_of(r['id'], 'sas')[:43]}"
    },
    "listservicesas": lambda r, s: {"serviceSasToken": f"sv=2021-06-08&sr=c&sp=rl&sig={key_of(r['id'], 'sas')[:43]}"},
    "listclusteradmincredential": _kubeconfig,
    "listclusterusercredential": _kubeconfig,
    "listkeyvalue": lambda r, s: {"value": key_of(r["id"], "value")[:24]},
    "list": _generic_list,
}


def list_result(action: str, resource: dict[str, Any], scope: Scope) -> dict[str, Any]:
    """What the resource provider answers to the ``list*`` action ``action`` (lower case) on ``resource``."""
    hook = _ACTIONS.get(action.lower())
    if hook is None:
        return {**_generic_keys(resource, scope), **_generic_list(resource, scope)}
    return hook(resource, scope)
