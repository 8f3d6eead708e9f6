"""Fixtures for the cost tests: a fake price book, records as an apply leaves them, the price sandbox.

``FakePrices`` is a ``PriceBook`` over a dict that counts what it is asked. ``applied`` builds
the component records the estimate reads (what a successful apply recorded). ``running_price_sandbox``
is the real price sandbox (``strataflow.backends.pricing.sandbox``) serving its snapshot over
HTTP in a thread, with small pages so pagination is exercised. ``running_moto`` is moto's
threaded server (Cost Explorer over HTTP), with ``inject_ce_results`` posting results the way
moto documents (``POST /moto-api/static/ce/cost-and-usage-results``).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from strataflow.cost.model import Price, PriceQuery
from strataflow.records import Applied, ComponentRecord, now

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "config"
T3_MEDIUM_US = 0.0416
"""The snapshot's (and the fake book's) hourly price of t3.medium in us-east-1."""


class FakePrices:
    """A ``PriceBook`` answering from a dict keyed by (kind, sku, region); counts every question."""

    def __init__(self, prices: Mapping[tuple[str, str, str], float], *, as_of: str = "2025-06-01") -> None:
        self.prices = dict(prices)
        self.as_of = as_of
        self.asked: list[PriceQuery] = []

    def price(self, query: PriceQuery) -> Price | None:
        self.asked.append(query)
        amount = self.prices.get((query.kind, query.sku, query.region))
        if amount is None:
            return None
        unit = {"log-ingestion": "GB", "registry-storage": "GB-month", "container-registry": "day"}.get(
            query.kind, "hour"
        )
        return Price(amount, unit, "USD", self.as_of, "fake")


def sample_prices(region: str = "us-east-1", location: str = "westeurope") -> FakePrices:
    """The prices the sample platform's priced resources need, in one AWS region and one Azure location."""
    return FakePrices(
        {
            ("ec2-instance", "t3.medium", region): T3_MEDIUM_US,
            ("nat-gateway", "", region): 0.045,
            ("public-ipv4", "", region): 0.005,
            ("load-balancer", "application", region): 0.0225,
            ("log-ingestion", "", region): 0.50,
            ("registry-storage", "", region): 0.10,
            ("vm", "Standard_D4s_v5", location): 0.23,
            ("container-registry", "Basic", location): 0.1666,
            ("log-ingestion", "PerGB2018", location): 2.99,
            ("public-ip", "Standard Static", location): 0.005,
        }
    )


def applied(env: str, cloud: str, parameters: Mapping[str, Mapping[str, Any]]) -> dict[str, ComponentRecord]:
    """Records of a successful apply of each component with its resolved ``parameters``."""
    return {
        name: ComponentRecord(
            env=env,
            cloud=cloud,
            component=name,
            action="apply",
            status="succeeded",
            applied=Applied(digest=f"d-{name}", parameters=dict(params), applied_at=now()),
        )
        for name, params in parameters.items()
    }


@contextmanager
def running_price_sandbox(page_size: int = 2) -> Iterator[Any]:
    """The price sandbox on a free port of 127.0.0.1 (small pages: pagination is exercised), stopped after."""
    from strataflow.backends.pricing import sandbox

    server = sandbox.start(page_size=page_size)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def running_moto() -> Iterator[str]:
    """moto's threaded server on a free port: its URL."""
    from moto.server import ThreadedMotoServer

    from tests.support.services import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    # moto's backends are global to the process: start from nothing (queued results included)
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()
    try:
        yield url
    finally:
        server.stop()


def inject_ce_results(moto_url: str, results: list[dict[str, Any]], account_id: str | None = None) -> None:
    """Queue Cost Explorer answers in moto, as its documentation says (one per distinct request)."""
    body: dict[str, Any] = {"results": results}
    if account_id:
        body["account_id"] = account_id
    request = urllib.request.Request(
        f"{moto_url}/moto-api/static/ce/cost-and-usage-results",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201


def ce_result(amounts: Mapping[str, float], start: str = "2026-01-01", end: str = "2026-01-31") -> dict[str, Any]:
    """A GetCostAndUsage answer grouped by the strata:component tag (``""``: untagged)."""
    return {
        "ResultsByTime": [
            {
                "TimePeriod": {"Start": start, "End": end},
                "Total": {},
                "Groups": [
                    {
                        "Keys": [f"strata:component${name}"],
                        "Metrics": {"UnblendedCost": {"Amount": f"{amount:.10f}", "Unit": "USD"}},
                    }
                    for name, amount in amounts.items()
                ],
                "Estimated": False,
            }
        ],
        "DimensionValueAttributes": [],
        "GroupDefinitions": [{"Type": "TAG", "Key": "strata:component"}],
    }
