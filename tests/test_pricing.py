"""Price lists and billing through the real clients: boto3 and httpx against the price sandbox, moto's Cost Explorer."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from strataflow.backends.pricing.aws import SPECS as AWS_SPECS
from strataflow.backends.pricing.aws import AwsPriceList
from strataflow.backends.pricing.azure import AzureRetailPrices
from strataflow.backends.pricing.billing import aws_spend
from strataflow.backends.pricing.connect import aws_spend_for, azure_spend_for, price_book, sandbox_price_book
from strataflow.backends.pricing.errors import PricingError
from strataflow.config import AwsTarget, AzureTarget
from strataflow.cost.actual import actual_cost
from strataflow.cost.model import PriceQuery
from strataflow.errors import TransientError
from tests.support.pricing import T3_MEDIUM_US, ce_result, inject_ce_results, running_moto, running_price_sandbox
from tests.support.services import free_port

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
T3 = PriceQuery("aws", "us-east-1", "ec2-instance", "t3.medium")


@pytest.fixture
def sandbox() -> Iterator[Any]:
    with running_price_sandbox(page_size=2) as server:
        yield server


def _pricing_client(url: str) -> Any:
    return boto3.client("pricing", region_name="us-east-1", endpoint_url=url, **CREDENTIALS)


class TestAwsPriceList:
    def test_boto3_pricing_client_reads_the_on_demand_price(self, sandbox: Any) -> None:
        """boto3's pricing client (GetProducts, JSON 1.1 over HTTP) finds t3.medium Linux on-demand in us-east-1, not Windows."""
        price = AwsPriceList(lambda: _pricing_client(sandbox.url)).fetch(T3)
        assert price is not None and (price.amount, price.unit, price.currency) == (T3_MEDIUM_US, "hour", "USD")
        assert price.as_of == "2025-06-01"
        (asked,) = [what for api, what in sandbox.requests if api == "aws"]
        assert "operatingSystem=Linux" in asked and "instanceType=t3.medium" in asked

    def test_usage_type_suffix_picks_the_product(self, sandbox: Any) -> None:
        """Of a family's products the one whose usage type ends as the kind's (with a region prefix) answers."""
        lister = AwsPriceList(lambda: _pricing_client(sandbox.url))
        query = PriceQuery("aws", "eu-west-1", "load-balancer", "application")
        products = list(lister.products(AWS_SPECS["load-balancer"], query))
        assert len(products) == 2 and len(sandbox.requests) == 1  # page size 2: one page
        logs = list(lister.products(AWS_SPECS["log-ingestion"], PriceQuery("aws", "us-east-1", "log-ingestion")))
        assert len(logs) == 2
        price = lister.fetch(PriceQuery("aws", "eu-west-1", "nat-gateway"))
        assert price is not None and price.amount == 0.048 and price.unit == "hour"

    def test_pages_are_chained_by_next_token(self) -> None:
        """With pages of one product, reading two products takes two requests chained by NextToken."""
        with running_price_sandbox(page_size=1) as server:
            lister = AwsPriceList(lambda: _pricing_client(server.url))
            query = PriceQuery("aws", "us-east-1", "fargate-vcpu")
            assert len(list(lister.products(AWS_SPECS["fargate-vcpu"], query))) == 2  # vCPU and memory
            assert len(server.requests) == 2

    def test_unknown_sku_is_none(self, sandbox: Any) -> None:
        """An instance type the price list lacks gives None (the estimate says "not priced")."""
        assert (
            AwsPriceList(lambda: _pricing_client(sandbox.url)).fetch(
                PriceQuery("aws", "us-east-1", "ec2-instance", "x9.huge")
            )
            is None
        )


class TestAzureRetailPrices:
    def test_linux_pay_as_you_go_vm_over_next_page_links(self) -> None:
        """httpx follows NextPageLink and picks the Linux pay-as-you-go item, not Windows or Spot."""
        with running_price_sandbox(page_size=1) as server:
            price = AzureRetailPrices(server.url).fetch(PriceQuery("azure", "westeurope", "vm", "Standard_D4s_v5"))
            assert price is not None and (price.amount, price.unit) == (0.23, "hour")
            assert len([r for r in server.requests if r[0] == "azure"]) == 3
            assert "armSkuName eq 'Standard_D4s_v5'" in server.requests[0][1]

    def test_meters_per_kind(self, sandbox: Any) -> None:
        """Registry units are per day, workspace ingestion per GB, public IPs and NAT per hour, from their meters."""
        prices = AzureRetailPrices(sandbox.url)
        assert prices.fetch(PriceQuery("azure", "westeurope", "container-registry", "Basic")).amount == 0.1666  # type: ignore[union-attr]
        assert prices.fetch(PriceQuery("azure", "northeurope", "log-ingestion", "PerGB2018")).amount == 2.76  # type: ignore[union-attr]
        assert prices.fetch(PriceQuery("azure", "westeurope", "public-ip", "Standard Static")).unit == "hour"  # type: ignore[union-attr]
        assert prices.fetch(PriceQuery("azure", "westeurope", "nat-gateway", "Standard")).amount == 0.045  # type: ignore[union-attr]

    def test_server_errors_are_one_line_transient_errors(self) -> None:
        """A price endpoint that is down is a TransientError naming the API, not a traceback."""
        with pytest.raises(TransientError, match="Azure Retail Prices API"):
            AzureRetailPrices(f"http://127.0.0.1:{free_port()}").fetch(
                PriceQuery("azure", "westeurope", "vm", "Standard_B2s")
            )


class TestCache:
    def test_fetched_once_per_day_per_region_and_kind(self, sandbox: Any, tmp_path: Path) -> None:
        """Two runs (two price books) on one day ask the price list once; the next day asks again and drops the old file."""
        day = [date(2026, 3, 1)]
        first = sandbox_price_book(sandbox.url, home=tmp_path, today=lambda: day[0])
        assert first.price(T3) is not None and first.price(T3) is not None
        second = sandbox_price_book(sandbox.url, home=tmp_path, today=lambda: day[0])
        assert second.price(T3) == first.price(T3)
        assert len(sandbox.requests) == 1
        cached = tmp_path / "prices" / "sandbox" / "aws" / "us-east-1" / "ec2-instance" / "2026-03-01.json"
        assert json.loads(cached.read_text())["prices"]["t3.medium"]["amount"] == T3_MEDIUM_US
        second.price(PriceQuery("aws", "eu-west-1", "ec2-instance", "t3.medium"))
        assert len(sandbox.requests) == 2  # another region is another fetch
        day[0] += timedelta(days=1)
        sandbox_price_book(sandbox.url, home=tmp_path, today=lambda: day[0]).price(T3)
        assert len(sandbox.requests) == 3
        assert not cached.exists() and cached.with_name("2026-03-02.json").exists()

    def test_a_missing_price_is_remembered_too(self, sandbox: Any, tmp_path: Path) -> None:
        """A SKU the list lacks is asked once a day, not on every run."""
        query = PriceQuery("azure", "westeurope", "vm", "Standard_Nope")
        for _ in range(2):
            assert sandbox_price_book(sandbox.url, home=tmp_path).price(query) is None
        assert len(sandbox.requests) == 1

    def test_live_and_sandbox_prices_are_cached_apart(self, tmp_path: Path) -> None:
        """The live price lists and the sandbox's snapshot never share a cache directory."""
        live = price_book(home=tmp_path)
        assert live.cache.source == "live"
        assert sandbox_price_book("http://127.0.0.1:1", home=tmp_path).cache.source == "sandbox"


class TestCostExplorer:
    def test_injected_results_grouped_by_component(self) -> None:
        """moto's Cost Explorer answers the injected results; they are summed per strata:component, untagged apart."""
        with running_moto() as url:
            inject_ce_results(url, [ce_result({"clusters": 40.5, "platform": 12.25, "": 3.0})])
            target = AwsTarget(region="eu-west-1", endpoint_url=url)
            spend = aws_spend_for("dev", target, CREDENTIALS, "2026-01-01", "2026-01-31")
        doc = actual_cost("dev", "aws", "2026-01-01", "2026-01-31", spend.amounts, ["network", "clusters", "platform"])
        assert doc.components == {"network": 0.0, "clusters": 40.5, "platform": 12.25}
        assert doc.untagged == 3.0 and doc.total == 55.75 and doc.days == 30

    def test_sandbox_deploy_role_falls_back_to_moto_default_account(self) -> None:
        """In the sandbox, results injected without account_id are found even when the environment assumes a deploy role."""
        with running_moto() as url:
            inject_ce_results(url, [ce_result({"clusters": 7.0})])
            target = AwsTarget(endpoint_url=url, role_arn="arn:aws:iam::111111111111:role/strata-deploy")
            spend = aws_spend_for("dev", target, CREDENTIALS, "2026-01-01", "2026-01-31", sandbox=True)
        assert spend.amounts == [("clusters", 7.0)]

    def test_no_groups_is_a_note_about_tag_activation(self) -> None:
        """An answer without groups says to activate strata:env and strata:component as cost allocation tags."""
        with running_moto() as url:
            spend = aws_spend_for("dev", AwsTarget(endpoint_url=url), CREDENTIALS, "2026-01-01", "2026-01-31")
        assert spend.amounts == [] and "activated as cost allocation tags" in spend.notes[0]

    def _stubbed(self) -> tuple[Any, Stubber]:
        client = boto3.client("ce", region_name="us-east-1", **CREDENTIALS)
        return client, Stubber(client)

    def test_inactive_tags_are_a_clear_error(self) -> None:
        """When Cost Explorer reports the tags inactive, the error names them and how to activate them."""
        client, stub = self._stubbed()
        stub.add_response("get_cost_and_usage", {"ResultsByTime": [{"Groups": [], "Estimated": False}]})
        stub.add_response(
            "list_cost_allocation_tags",
            {"CostAllocationTags": [{"TagKey": "strata:env", "Type": "UserDefined", "Status": "Inactive"}]},
        )
        with stub, pytest.raises(PricingError, match=r"strata:env, strata:component are not active"):
            aws_spend(client, "dev", "2026-01-01", "2026-01-31")

    @pytest.mark.parametrize(
        ("code", "expected"),
        [
            ("AccessDeniedException", "grant ce:GetCostAndUsage"),
            ("DataUnavailableException", "enable Cost Explorer"),
        ],
    )
    def test_errors_are_one_line(self, code: str, expected: str) -> None:
        """Missing permission and a Cost Explorer never enabled become one-line PricingErrors saying what to do."""
        client, stub = self._stubbed()
        stub.add_client_error("get_cost_and_usage", service_error_code=code, service_message="nope")
        with stub, pytest.raises(PricingError, match=expected) as raised:
            aws_spend(client, "dev", "2026-01-01", "2026-01-31")
        assert "\n" not in str(raised.value)


class TestCostManagement:
    def test_rows_grouped_by_tag_then_by_owning_group(self, sandbox: Any) -> None:
        """The Cost Management query (SDK, over HTTP) gives the tagged rows to their component, the rest to the group's owner."""
        scope = "subscriptions/sub-1/resourcegroups/strata-dev"
        rows = [
            [30.0, "strata-component", "clusters", "strata-dev", "USD"],
            [2.5, "", "", "strata-dev", "USD"],
        ]
        body = json.dumps({"scope": scope, "rows": rows}).encode()
        request = urllib.request.Request(
            f"{sandbox.url}/strata-sandbox/costmanagement/results", data=body, method="POST"
        )
        urllib.request.urlopen(request, timeout=10).close()
        owned = {
            "scope": "subscriptions/sub-1/resourcegroups/strata-dev-db",
            "rows": [[4.0, "", "", "strata-dev-db", "USD"]],
        }
        request = urllib.request.Request(
            f"{sandbox.url}/strata-sandbox/costmanagement/results", data=json.dumps(owned).encode(), method="POST"
        )
        urllib.request.urlopen(request, timeout=10).close()
        target = AzureTarget(subscription_id="sub-1")
        groups = [("strata-dev", None), ("strata-dev-db", "database")]
        spend = azure_spend_for(target, groups, {}, "2026-01-01", "2026-01-31", endpoint=sandbox.url)
        doc = actual_cost("dev", "azure", "2026-01-01", "2026-01-31", spend.amounts, ["clusters", "database"])
        assert doc.components == {"clusters": 30.0, "database": 4.0} and doc.untagged == 2.5
        assert [what for api, what in sandbox.requests if api == "costmanagement"] == [scope, owned["scope"]]


def test_sandbox_runs_as_a_module(tmp_path: Path) -> None:
    """`python -m strataflow.backends.pricing.sandbox --port N` serves the price APIs until stopped."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "strataflow.backends.pricing.sandbox", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.2)
        price = AwsPriceList(lambda: _pricing_client(f"http://127.0.0.1:{port}")).fetch(T3)
        assert price is not None and price.amount == T3_MEDIUM_US
    finally:
        process.terminate()
        process.wait(10)
