"""AWS prices from the Price List Query API (boto3 ``pricing``: ``GetProducts`` with term filters).

The API answers in us-east-1 (or ap-south-1) for every region; each product is a JSON
string with its ``attributes`` and ``terms.OnDemand...priceDimensions...pricePerUnit``.
``SPECS`` says, per kind of charge, which service and filters ask for it and which product
and price dimension answer (the first tier of the unit wanted). ``as_of`` is the price
list's publication date.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from strataflow.backends.pricing.cache import today_utc
from strataflow.backends.pricing.errors import PricingError, aws_errors
from strataflow.cost.model import Price, PriceQuery

PRICING_REGION = "us-east-1"
"""Where the Price List Query API answers (the other endpoint is ap-south-1)."""


@dataclass(frozen=True)
class AwsSpec:
    """How to ask the price list for one kind of charge."""

    service: str
    unit: str
    """The unit of strataflow's quantity: hour, GB, GB-month, GB-hour."""
    dimension_unit: str
    """The unit of the price dimension that answers (``Hrs``, ``GB``, ``GB-Mo``, ...)."""
    filters: Callable[[PriceQuery], dict[str, str]]
    suffix: str = ""
    """The product's ``usagetype`` ends with this (a region prefix such as ``EU-`` precedes it)."""
    accepts: Callable[[PriceQuery], bool] = field(default=lambda q: True)


def _family(family: str) -> Callable[[PriceQuery], dict[str, str]]:
    return lambda q: {"regionCode": q.region, "productFamily": family}


_LOAD_BALANCERS = {
    "application": "Load Balancer-Application",
    "network": "Load Balancer-Network",
    "gateway": "Load Balancer-Gateway",
}

SPECS: dict[str, AwsSpec] = {
    "ec2-instance": AwsSpec(
        "AmazonEC2",
        "hour",
        "Hrs",
        lambda q: {
            "regionCode": q.region,
            "instanceType": q.sku,
            "operatingSystem": "Linux",
            "tenancy": "Shared",
            "preInstalledSw": "NA",
            "capacitystatus": "Used",
            "licenseModel": "No License required",
        },
    ),
    "nat-gateway": AwsSpec("AmazonEC2", "hour", "Hrs", _family("NAT Gateway"), "NatGateway-Hours"),
    "public-ipv4": AwsSpec("AmazonVPC", "hour", "Hrs", _family("VPC Public IPv4 Address"), "PublicIPv4:InUseAddress"),
    "load-balancer": AwsSpec(
        "AWSELB",
        "hour",
        "Hrs",
        lambda q: {"regionCode": q.region, "productFamily": _LOAD_BALANCERS.get(q.sku, "")},
        "LoadBalancerUsage",
        accepts=lambda q: q.sku in _LOAD_BALANCERS,
    ),
    "log-ingestion": AwsSpec("AmazonCloudWatch", "GB", "GB", _family("Data Payload"), "DataProcessing-Bytes"),
    "registry-storage": AwsSpec(
        "AmazonECR", "GB-month", "GB-Mo", _family("EC2 Container Registry"), "TimedStorage-ByteHrs"
    ),
    "eks-cluster": AwsSpec("AmazonEKS", "hour", "Hrs", _family("Compute"), "AmazonEKS-Hours:perCluster"),
    "fargate-vcpu": AwsSpec("AmazonECS", "vCPU-hour", "hours", _family("Compute"), "Fargate-vCPU-Hours:perCPU"),
    "fargate-memory": AwsSpec("AmazonECS", "GB-hour", "GB-Hours", _family("Compute"), "Fargate-GB-Hours"),
}


def _usagetype_matches(usagetype: str, suffix: str) -> bool:
    """``NatGateway-Hours`` matches ``NatGateway-Hours`` and ``EU-NatGateway-Hours``, not ``...IA-...``."""
    return usagetype == suffix or usagetype.endswith("-" + suffix)


def first_tier(product: dict[str, Any], unit: str) -> tuple[float, str, str] | None:
    """(price in USD, description, currency) of the product's on-demand dimension in ``unit`` that starts at 0."""
    for term in (product.get("terms", {}).get("OnDemand") or {}).values():
        for dim in (term.get("priceDimensions") or {}).values():
            if str(dim.get("unit", "")).lower() != unit.lower() or str(dim.get("beginRange", "0")) != "0":
                continue
            prices = dim.get("pricePerUnit") or {}
            currency = "USD" if "USD" in prices else next(iter(prices), "USD")
            if currency in prices:
                return float(prices[currency]), str(dim.get("description", "")), currency
    return None


class AwsPriceList:
    """The Price List Query API through a boto3 ``pricing`` client (made by ``client_factory``)."""

    def __init__(self, client_factory: Callable[[], Any]) -> None:
        self._factory = client_factory
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            self._client = self._factory()
        return self._client

    def products(self, spec: AwsSpec, query: PriceQuery) -> Iterator[dict[str, Any]]:
        filters = [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in spec.filters(query).items()]
        kwargs: dict[str, Any] = {"ServiceCode": spec.service, "Filters": filters, "FormatVersion": "aws_v1"}
        with aws_errors(f"the AWS price list ({spec.service})"):
            for page in self.client().get_paginator("get_products").paginate(**kwargs):
                for item in page.get("PriceList") or []:
                    product = json.loads(item) if isinstance(item, str) else item
                    if isinstance(product, dict):
                        yield product

    def fetch(self, query: PriceQuery) -> Price | None:
        """The on-demand price for ``query``; None when the list has none (or strataflow cannot ask for it)."""
        spec = SPECS.get(query.kind)
        if spec is None or not spec.accepts(query):
            return None
        for product in self.products(spec, query):
            attributes = (product.get("product") or {}).get("attributes") or {}
            if spec.suffix and not _usagetype_matches(str(attributes.get("usagetype", "")), spec.suffix):
                continue
            tier = first_tier(product, spec.dimension_unit)
            if tier is None:
                continue
            amount, description, currency = tier
            published = str(product.get("publicationDate") or "")[:10] or today_utc().isoformat()
            return Price(amount, spec.unit, currency, published, description)
        return None


__all__ = ["PRICING_REGION", "SPECS", "AwsPriceList", "AwsSpec", "PricingError", "first_tier"]
