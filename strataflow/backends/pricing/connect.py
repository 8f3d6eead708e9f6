"""Clients for prices and spend, for the live clouds, the sandbox or another endpoint.

- ``price_book``: the ``PriceBook`` the estimate asks (AWS Price List Query API through a
  boto3 ``pricing`` client in us-east-1, Azure Retail Prices API through httpx), each answer
  kept for the day under ``$STRATA_HOME/prices/<source>/``.
- ``aws_spend_for`` / ``azure_spend_for``: an environment's actual spend per component.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from strataflow.backends.arm.support import SANDBOX_TOKEN, StaticTokenCredential
from strataflow.backends.cloudformation import clients
from strataflow.backends.pricing.aws import PRICING_REGION, AwsPriceList
from strataflow.backends.pricing.azure import DEFAULT_ENDPOINT, AzureRetailPrices
from strataflow.backends.pricing.billing import Spend, aws_spend, azure_spend
from strataflow.backends.pricing.cache import CachedPriceBook, Fetcher, PriceCache, today_utc
from strataflow.backends.pricing.errors import PricingError
from strataflow.config import AwsTarget, AzureTarget, Environment
from strataflow.paths import strata_home

SANDBOX_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _source(aws_endpoint: str | None, azure_endpoint: str | None) -> str:
    if aws_endpoint is None and azure_endpoint is None:
        return "live"
    digest = hashlib.sha256(f"{aws_endpoint}|{azure_endpoint}".encode()).hexdigest()[:10]
    return f"endpoint-{digest}"


def price_book(
    *,
    aws: AwsTarget | None = None,
    aws_credentials: Mapping[str, Any] | None = None,
    aws_endpoint: str | None = None,
    azure_endpoint: str | None = None,
    source: str | None = None,
    home: Path | None = None,
    today: Callable[[], date] = today_utc,
) -> CachedPriceBook:
    """Prices from the live price lists (no endpoints) or from ``aws_endpoint``/``azure_endpoint``.

    ``aws`` gives the profile and deploy role the price list is asked with (the region is
    always the API's, us-east-1); ``source`` names the cache (default ``live``, or one per
    pair of endpoints).
    """
    base = aws or AwsTarget()
    update: dict[str, Any] = {"region": PRICING_REGION, "endpoint_url": aws_endpoint}
    if aws_endpoint is not None:
        update["role_arn"] = None  # another endpoint (the sandbox) has no deploy role to assume
    target = base.model_copy(update=update)
    credentials = dict(aws_credentials or {})
    fetchers: dict[str, Fetcher] = {
        "aws": AwsPriceList(lambda: clients.client("pricing", target, credentials)),
        "azure": AzureRetailPrices(azure_endpoint or DEFAULT_ENDPOINT),
    }
    cache = PriceCache(home or strata_home(), source or _source(aws_endpoint, azure_endpoint), today)
    return CachedPriceBook(fetchers, cache)


def sandbox_price_book(url: str, *, home: Path | None = None, today: Callable[[], date] = today_utc) -> CachedPriceBook:
    """Prices from the price sandbox at ``url`` (both APIs), cached apart from the live ones."""
    return price_book(
        aws_credentials=SANDBOX_CREDENTIALS,
        aws_endpoint=url,
        azure_endpoint=url,
        source="sandbox",
        home=home,
        today=today,
    )


def aws_spend_for(
    env: str,
    target: AwsTarget,
    credentials: Mapping[str, Any],
    start: str,
    end: str,
    *,
    sandbox: bool = False,
) -> Spend:
    """``env``'s cost per component from Cost Explorer (us-east-1), as the deploy role when one is set.

    In the sandbox (moto), a deploy role's account may have no results injected; moto's
    default account is asked then, as a test injecting without ``account_id`` expects.
    """
    ce_target = target.model_copy(update={"region": "us-east-1"})
    spend = aws_spend(clients.client("ce", ce_target, credentials), env, start, end, check_tags=not sandbox)
    if sandbox and target.role_arn and not spend.amounts:
        plain = ce_target.model_copy(update={"role_arn": None})
        spend = aws_spend(clients.client("ce", plain, credentials), env, start, end, check_tags=False)
    return spend


def _azure_credential(credentials: Mapping[str, Any], target: AzureTarget) -> Any:
    plain = {k: (v.get_secret_value() if hasattr(v, "get_secret_value") else v) for k, v in credentials.items()}
    if plain.get("token"):
        return StaticTokenCredential(str(plain["token"]))
    if plain.get("client_id") and plain.get("client_secret"):
        from azure.identity import ClientSecretCredential

        tenant = plain.get("tenant_id") or target.tenant_id
        if not tenant:
            raise PricingError("Azure credentials with client_id and client_secret also need tenant_id")
        return ClientSecretCredential(str(tenant), str(plain["client_id"]), str(plain["client_secret"]))
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def azure_spend_for(
    target: AzureTarget,
    groups: Sequence[tuple[str, str | None]],
    credentials: Mapping[str, Any],
    start: str,
    end: str,
    *,
    endpoint: str | None = None,
) -> Spend:
    """Cost per component over the resource ``groups`` ((group, owning component or None), ...).

    ``endpoint``: another Cost Management endpoint (the price sandbox serves one over plain
    HTTP, asked with the sandbox's token).
    """
    from azure.mgmt.costmanagement import CostManagementClient

    if not target.subscription_id:
        raise PricingError("the environment's azure settings have no subscription_id to read costs from")
    options: dict[str, Any] = {}
    if endpoint is not None and endpoint.startswith("http://"):
        options["enforce_https"] = False
        credentials = {"token": SANDBOX_TOKEN, **credentials}
    client = CostManagementClient(
        _azure_credential(credentials, target), base_url=endpoint or target.endpoint_url or None
    )
    scopes = [(f"/subscriptions/{target.subscription_id}/resourceGroups/{group}", owner) for group, owner in groups]
    try:
        return azure_spend(client, scopes, start, end, **options)
    finally:
        client.close()


def for_environment(
    env: Environment, cloud: str, sandbox_url: str | None, credentials: Mapping[str, Any]
) -> CachedPriceBook:
    """The price book a run in ``env`` uses: the price sandbox at ``sandbox_url``, else the clouds' live price lists."""
    if sandbox_url:
        return sandbox_price_book(sandbox_url)
    aws = env.target("aws")
    assert isinstance(aws, AwsTarget)
    return price_book(aws=aws, aws_credentials=credentials if cloud == "aws" else {})


__all__ = [
    "SANDBOX_CREDENTIALS",
    "aws_spend_for",
    "azure_spend_for",
    "for_environment",
    "price_book",
    "sandbox_price_book",
]
