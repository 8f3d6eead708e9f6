"""What an environment actually cost: the billing data grouped by component (``strata cost ENV --actual``).

Pure: ``strataflow.backends.pricing.billing`` reads AWS Cost Explorer or Azure Cost
Management and hands over (component or None, amount) pairs; ``actual_cost`` sums them per
component. On AWS the component is the ``strata:component`` tag CloudFormation propagates
from the stack to its resources, filtered by ``strata:env`` (both must be activated as cost
allocation tags); on Azure the ``strata-component`` tag, else the component that owns the
resource group. Costs with no component go to ``untagged``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from pydantic import BaseModel, Field

from strataflow.cost.model import money

AWS_ENV_TAG = "strata:env"
AWS_COMPONENT_TAG = "strata:component"
AZURE_ENV_TAG = "strata-env"
AZURE_COMPONENT_TAG = "strata-component"


class ActualCost(BaseModel):
    """The document of ``strata cost ENV --actual --json``."""

    env: str
    cloud: str
    currency: str = "USD"
    start: str = Field(description="First day counted (YYYY-MM-DD).")
    end: str = Field(description="The day after the last one counted (exclusive, as the billing APIs take it).")
    days: int
    total: float
    components: dict[str, float] = Field(default_factory=dict, description="Amount per component, over the period.")
    untagged: float = Field(default=0.0, description="Costs of the environment no component tag claims.")
    notes: list[str] = Field(default_factory=list)


def period(days: int, today: date) -> tuple[str, str]:
    """``days`` whole days ending yesterday: (start, end) with ``end`` exclusive (today)."""
    if days < 1:
        raise ValueError("--days must be at least 1")
    return (today - timedelta(days=days)).isoformat(), today.isoformat()


def actual_cost(
    env: str,
    cloud: str,
    start: str,
    end: str,
    amounts: Iterable[tuple[str | None, float]],
    names: Sequence[str],
    *,
    currency: str = "USD",
    notes: Sequence[str] = (),
) -> ActualCost:
    """``amounts`` (component or None, amount) summed per component; every one of ``names`` is listed."""
    components = dict.fromkeys(names, 0.0)
    untagged = 0.0
    for component, amount in amounts:
        if component:
            components[component] = components.get(component, 0.0) + amount
        else:
            untagged += amount
    days = (date.fromisoformat(end) - date.fromisoformat(start)).days
    rounded = {k: round(v, 2) for k, v in components.items()}
    return ActualCost(
        env=env,
        cloud=cloud,
        currency=currency,
        start=start,
        end=end,
        days=days,
        total=round(sum(components.values()) + untagged, 2),
        components=rounded,
        untagged=round(untagged, 2),
        notes=list(notes),
    )


def render_actual(doc: ActualCost) -> str:
    """``strata cost ENV --actual`` as text."""
    lines = [f"{doc.env} ({doc.cloud}): actual cost {doc.start} .. {doc.end} (exclusive), {doc.days} days"]
    for name, amount in sorted(doc.components.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {name:<20} {money(amount, doc.currency):>12}")
    if doc.untagged:
        lines.append(f"  {'(no component tag)':<20} {money(doc.untagged, doc.currency):>12}")
    lines.append(f"  {'total':<20} {money(doc.total, doc.currency):>12}")
    lines.extend(f"note: {note}" for note in doc.notes)
    return "\n".join(lines)


__all__ = [
    "AWS_COMPONENT_TAG",
    "AWS_ENV_TAG",
    "AZURE_COMPONENT_TAG",
    "AZURE_ENV_TAG",
    "ActualCost",
    "actual_cost",
    "period",
    "render_actual",
]
