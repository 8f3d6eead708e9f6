"""Azure prices from the Retail Prices API (``GET /api/retail/prices?$filter=...``, no authentication).

Each kind of charge is an OData filter (service, ``armRegionName``, SKU, ``priceType eq
'Consumption'``) and a choice among the items it returns: Linux pay-as-you-go for VMs (not
Windows, Spot or Low Priority), the named meter for the rest, the first tier. Pages are
followed through ``NextPageLink``. Prices are in USD (``currencyCode``); ``as_of`` is the day
the list was read (the API publishes no list date).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from strataflow.backends.pricing.cache import today_utc
from strataflow.backends.pricing.errors import PricingError, http_errors
from strataflow.cost.model import Price, PriceQuery

DEFAULT_ENDPOINT = "https://prices.azure.com"
API_VERSION = "2023-01-01-preview"
MAX_PAGES = 50
"""A filter strataflow writes matches a few items; more pages than this means a filter too wide."""


def _quote(value: str) -> str:
    return value.replace("'", "''")


@dataclass(frozen=True)
class AzureSpec:
    """How to ask the Retail Prices API for one kind of charge, and which item answers."""

    unit: str
    units_of_measure: tuple[str, ...]
    filter: Callable[[PriceQuery], str]
    accepts: Callable[[PriceQuery, dict[str, Any]], bool]


def _base(service: str) -> Callable[[PriceQuery], str]:
    return lambda q: (
        f"serviceName eq '{service}' and armRegionName eq '{_quote(q.region)}' and priceType eq 'Consumption'"
    )


def _linux_vm(q: PriceQuery, item: dict[str, Any]) -> bool:
    names = f"{item.get('productName', '')} {item.get('skuName', '')} {item.get('meterName', '')}"
    return (
        str(item.get("armSkuName", "")).lower() == q.sku.lower()
        and "Windows" not in names
        and "Spot" not in names
        and "Low Priority" not in names
    )


_PUBLIC_IPS = {
    "Standard Static": "Standard IPv4 Static Public IP",
    "Basic Static": "Basic IPv4 Static Public IP",
    "Basic Dynamic": "Basic IPv4 Dynamic Public IP",
}
_LOG_METERS = ("Analytics Logs Data Ingestion", "Pay-as-you-go Data Ingestion")

SPECS: dict[str, AzureSpec] = {
    "vm": AzureSpec(
        "hour",
        ("1 Hour",),
        lambda q: _base("Virtual Machines")(q) + f" and armSkuName eq '{_quote(q.sku)}'",
        _linux_vm,
    ),
    "container-registry": AzureSpec(
        "day",
        ("1/Day", "1 Day"),
        lambda q: _base("Container Registry")(q) + f" and skuName eq '{_quote(q.sku)}'",
        lambda q, item: item.get("meterName") == f"{q.sku} Registry Unit",
    ),
    "log-ingestion": AzureSpec(
        "GB",
        ("1 GB",),
        _base("Log Analytics"),
        lambda q, item: q.sku.lower() == "pergb2018" and item.get("meterName") in _LOG_METERS,
    ),
    "public-ip": AzureSpec(
        "hour",
        ("1 Hour",),
        lambda q: _base("Virtual Network")(q) + " and productName eq 'IP Addresses'",
        lambda q, item: item.get("meterName") == _PUBLIC_IPS.get(q.sku),
    ),
    "nat-gateway": AzureSpec(
        "hour",
        ("1 Hour",),
        _base("NAT Gateway"),
        lambda q, item: q.sku == "Standard" and item.get("meterName") == "Standard Gateway",
    ),
    "load-balancer": AzureSpec(
        "hour",
        ("1 Hour",),
        _base("Load Balancer"),
        lambda q, item: (
            q.sku == "Standard" and item.get("meterName") == "Standard Included LB Rules and Outbound Rules"
        ),
    ),
    "aks-control-plane": AzureSpec(
        "hour",
        ("1 Hour",),
        _base("Azure Kubernetes Service"),
        lambda q, item: q.sku == "Standard" and item.get("meterName") == "Standard Uptime SLA",
    ),
}


class AzureRetailPrices:
    """The Retail Prices API at ``endpoint`` (``https://prices.azure.com``, or the sandbox's)."""

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, *, currency: str = "USD", timeout: float = 30.0) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.currency = currency
        self._http = httpx.Client(timeout=timeout, follow_redirects=True)

    def close(self) -> None:
        self._http.close()

    def items(self, odata_filter: str) -> Iterator[dict[str, Any]]:
        """Every item the filter matches, page after page (``NextPageLink``)."""
        params: dict[str, str] | None = {
            "api-version": API_VERSION,
            "currencyCode": self.currency,
            "$filter": odata_filter,
        }
        url: str | None = f"{self.endpoint}/api/retail/prices"
        what = "the Azure Retail Prices API"
        for _ in range(MAX_PAGES):
            if url is None:
                return
            with http_errors(what):
                response = self._http.get(url, params=params)
                response.raise_for_status()
            try:
                page = response.json()
            except ValueError as exc:
                raise PricingError(f"{what} answered something that is not JSON") from exc
            yield from (item for item in page.get("Items") or [] if isinstance(item, dict))
            url, params = page.get("NextPageLink") or None, None
        raise PricingError(f"{what}: more than {MAX_PAGES} pages for {odata_filter!r}")

    def fetch(self, query: PriceQuery) -> Price | None:
        """The pay-as-you-go price for ``query``; None when the list has none."""
        spec = SPECS.get(query.kind)
        if spec is None:
            return None
        candidates = [
            item
            for item in self.items(spec.filter(query))
            if spec.accepts(query, item) and item.get("unitOfMeasure") in spec.units_of_measure
        ]
        if not candidates:
            return None
        item = min(candidates, key=lambda i: float(i.get("tierMinimumUnits") or 0.0))
        description = f"{item.get('productName', '')} {item.get('meterName', '')}".strip()
        return Price(
            float(item.get("retailPrice", item.get("unitPrice", 0.0))),
            spec.unit,
            str(item.get("currencyCode") or self.currency),
            today_utc().isoformat(),
            description,
        )


__all__ = ["API_VERSION", "DEFAULT_ENDPOINT", "SPECS", "AzureRetailPrices", "AzureSpec"]
