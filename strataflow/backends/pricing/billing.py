"""Actual spend: AWS Cost Explorer and Azure Cost Management, as (component, amount) pairs.

AWS: ``GetCostAndUsage`` over the period, ``UnblendedCost``, grouped by the tag
``strata:component`` and filtered by ``strata:env = ENV`` (the tags the CloudFormation backend
puts on each stack; CloudFormation propagates them to the stack's resources). Both must be
activated as cost allocation tags; when Cost Explorer says they are not (``ListCostAllocationTags``)
the error says which to activate, and an answer without groups becomes a note saying so.

Azure: the Cost Management query API (azure-mgmt-costmanagement) per resource group the
environment deploys into, ``ActualCost`` summed, grouped by the ``strata-component`` tag and
the resource group; a row without the tag belongs to the component owning its group, if any.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from strataflow.backends.pricing.errors import PricingError, aws_errors, azure_errors
from strataflow.cost.actual import AWS_COMPONENT_TAG, AWS_ENV_TAG, AZURE_COMPONENT_TAG

WHAT_AWS = "AWS Cost Explorer"
MAX_PAGES = 100


@dataclass
class Spend:
    """What a billing API answered: (component or None, amount) pairs, the currency, notes for the reader."""

    amounts: list[tuple[str | None, float]] = field(default_factory=list)
    currency: str = "USD"
    notes: list[str] = field(default_factory=list)


def _activation_problem(ce: Any) -> str | None:
    """Which of strataflow's tags are not active cost allocation tags (None: all are, or it cannot tell)."""
    try:
        with aws_errors(WHAT_AWS):
            found = ce.list_cost_allocation_tags(TagKeys=[AWS_ENV_TAG, AWS_COMPONENT_TAG], MaxResults=10)
    except PricingError:
        return None  # no permission to ask, or an endpoint without it (the sandbox): the query still tells
    status = {t.get("TagKey"): t.get("Status") for t in found.get("CostAllocationTags") or []}
    missing = [k for k in (AWS_ENV_TAG, AWS_COMPONENT_TAG) if status.get(k) != "Active"]
    if not missing:
        return None
    return (
        f"the cost allocation tag(s) {', '.join(missing)} are not active: activate them in the Billing console "
        "(Cost allocation tags) or with `aws ce update-cost-allocation-tags-status`; costs are grouped from then on"
    )


def aws_spend(ce: Any, env: str, start: str, end: str, *, check_tags: bool = True) -> Spend:
    """The environment's unblended cost per ``strata:component`` between ``start`` and ``end`` (exclusive).

    With no groups in the answer, ``check_tags`` asks whether the tags are activated (moto
    does not implement that call: the sandbox skips it).
    """
    request: dict[str, Any] = {
        "TimePeriod": {"Start": start, "End": end},
        "Granularity": "MONTHLY",
        "Metrics": ["UnblendedCost"],
        "GroupBy": [{"Type": "TAG", "Key": AWS_COMPONENT_TAG}],
        "Filter": {"Tags": {"Key": AWS_ENV_TAG, "Values": [env], "MatchOptions": ["EQUALS"]}},
    }
    spend, groups = Spend(), 0
    for _ in range(MAX_PAGES):
        with aws_errors(WHAT_AWS):
            page = ce.get_cost_and_usage(**request)
        for period in page.get("ResultsByTime") or []:
            for group in period.get("Groups") or []:
                groups += 1
                key = str((group.get("Keys") or [""])[0])
                component = key.split("$", 1)[1] if "$" in key else ""
                metric = (group.get("Metrics") or {}).get("UnblendedCost") or {}
                spend.currency = str(metric.get("Unit") or spend.currency)
                spend.amounts.append((component or None, float(metric.get("Amount") or 0.0)))
        token = page.get("NextPageToken")
        if not token:
            break
        request["NextPageToken"] = token
    if groups == 0:
        problem = _activation_problem(ce) if check_tags else None
        if problem:
            raise PricingError(f"{WHAT_AWS} cannot group {env}'s costs by component: {problem}")
        spend.notes.append(
            f"{WHAT_AWS} returned no costs tagged {AWS_ENV_TAG}={env} between {start} and {end}: check that "
            f"{AWS_ENV_TAG} and {AWS_COMPONENT_TAG} are activated as cost allocation tags (costs are tagged "
            "only from activation on, and appear within 24 hours)"
        )
    return spend


# --- Azure ------------------------------------------------------------------------------


def _azure_body(start: str, end: str) -> dict[str, Any]:
    return {
        "type": "ActualCost",
        "timeframe": "Custom",
        "timePeriod": {"from": f"{start}T00:00:00Z", "to": f"{end}T00:00:00Z"},
        "dataset": {
            "granularity": "None",
            "aggregation": {"totalCost": {"name": "Cost", "function": "Sum"}},
            "grouping": [
                {"type": "TagKey", "name": AZURE_COMPONENT_TAG},
                {"type": "Dimension", "name": "ResourceGroupName"},
            ],
        },
    }


def _rows(result: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Each row of a query result as {column name: value}."""
    properties = result.get("properties") or result
    names = [str(c.get("name")) for c in properties.get("columns") or []]
    for row in properties.get("rows") or []:
        yield dict(zip(names, row, strict=False))


def _amount(row: Mapping[str, Any]) -> float:
    for key in ("Cost", "PreTaxCost", "CostUSD", "totalCost"):
        if row.get(key) is not None:
            return float(row[key])
    return 0.0


def azure_spend(client: Any, scopes: Sequence[tuple[str, str | None]], start: str, end: str, **options: Any) -> Spend:
    """Cost per component over the resource-group ``scopes`` ((scope, owning component or None), ...).

    ``client`` is an ``azure.mgmt.costmanagement.CostManagementClient``; ``options`` go to
    each request (``enforce_https=False`` for a local endpoint).
    """
    from azure.core.rest import HttpRequest

    body = _azure_body(start, end)
    spend = Spend()

    def raw(pipeline_response: Any, deserialized: Any, headers: Any) -> Any:
        del deserialized, headers
        return pipeline_response.http_response.json()

    for scope, owner in scopes:
        what = f"Azure Cost Management for {scope.rsplit('/', 1)[-1]}"
        with azure_errors(what):
            result = client.query.usage(scope, json.dumps(body).encode(), cls=raw, **options) or {}
        for _ in range(MAX_PAGES):
            for row in _rows(result):
                tagged = str(row.get("TagValue") or "") if row.get("TagKey") == AZURE_COMPONENT_TAG else ""
                spend.currency = str(row.get("Currency") or spend.currency)
                spend.amounts.append((tagged or owner, _amount(row)))
            next_link = (result.get("properties") or {}).get("nextLink")
            if not next_link:
                break
            with azure_errors(what):
                response = client.send_request(HttpRequest("POST", next_link, json=body), **options)
                response.raise_for_status()
                result = response.json()
    if not spend.amounts:
        spend.notes.append(
            f"Azure Cost Management returned no costs for {', '.join(s.rsplit('/', 1)[-1] for s, _ in scopes)} "
            f"between {start} and {end}"
        )
    return spend


__all__ = ["Spend", "aws_spend", "azure_spend"]
