"""The cost estimate's vocabulary: what is asked of a price list, what it answers, what is shown.

Pure. A template reader (``cfn.py``, ``arm.py``) turns each resource into a ``Usage``: the
charges it incurs per month (a ``PriceQuery`` and a quantity in the price's unit), or why it
is not priced. A ``PriceBook`` answers queries (``strataflow.backends.pricing`` fetches and
caches the clouds' price lists; tests give a dict). ``estimate.py`` multiplies them out into
``CostEstimate``, the document ``strata cost ENV --json`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, Field

HOURS_PER_MONTH = 730.0
"""Hours in the month every monthly figure assumes (365 * 24 / 12, the clouds' own convention)."""
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
ASSUMED_LOG_GB = 5.0
"""Log data ingested per month by one log group or workspace: an assumption, shown in the note."""
ASSUMED_REGISTRY_GB = 5.0
"""Image storage of one container repository: an assumption, shown in the note."""
NOT_PRICED = "not priced"


class Unknown:
    """A value known only at deployment (and why); ``hint`` is readable text standing in for it."""

    def __init__(self, why: str, hint: str = "*") -> None:
        self.why, self.hint = why, hint

    def __repr__(self) -> str:
        return f"Unknown({self.why})"


def count_of(value: Any, what: str) -> int | Unknown:
    """``value`` as a count of things (never below 0), or why it is not one."""
    if isinstance(value, Unknown):
        return value
    try:
        return max(0, int(float(str(value))))
    except ValueError:
        return Unknown(f"{what} {value!r} is not a number")


@dataclass(frozen=True)
class PriceQuery:
    """One price to look up: a kind of charge of one cloud in one region, for one SKU (or none).

    ``kind`` is strataflow's name for a kind of charge (``ec2-instance``, ``nat-gateway``,
    ``vm``, ``container-registry``, ...): the price-list client knows how to ask for it.
    """

    cloud: str
    region: str
    kind: str
    sku: str = ""

    def describe(self) -> str:
        return f"{self.kind}{' ' + self.sku if self.sku else ''} in {self.region}"


@dataclass(frozen=True)
class Price:
    """A unit price from a price list: ``amount`` of ``currency`` per ``unit``."""

    amount: float
    unit: str
    """``hour``, ``day``, ``GB`` (per GB processed or ingested) or ``GB-month`` (per GB stored)."""
    currency: str = "USD"
    as_of: str = ""
    """The date (YYYY-MM-DD) the price list was read, or the snapshot's date."""
    description: str = ""


class PriceBook(Protocol):
    """Where unit prices come from (the cached price lists, or a dict in tests)."""

    def price(self, query: PriceQuery) -> Price | None:
        """The price for ``query``; None when the price list has none."""
        ...


@dataclass(frozen=True)
class Charge:
    """One line of a resource's bill: ``quantity`` units (of the price's unit) per month."""

    query: PriceQuery
    quantity: float
    basis: str
    """How the quantity was reached, for the note: ``2 x t3.medium``, ``5 GB/month (assumed)``."""


@dataclass(frozen=True)
class Usage:
    """One resource of a template as the estimate sees it: its charges, or why it has none priced."""

    name: str
    type: str
    charges: tuple[Charge, ...] = ()
    reason: str = ""
    """Why it is not priced (when ``charges`` is empty and ``fixed`` is None)."""
    fixed: float | None = None
    """A known monthly amount that needs no price list (an AKS Free tier control plane: 0)."""
    extra: str = ""
    """What the estimate leaves out (data processed, requests): appended to the note."""
    drivers: frozenset[str] = field(default_factory=frozenset)
    """The template parameters the charges depend on (``NodeCount``): named in change lines."""

    @property
    def priced(self) -> bool:
        return bool(self.charges) or self.fixed is not None


class ResourceCost(BaseModel):
    """One resource in ``strata cost --json``: ``monthly`` is null when it is not priced."""

    name: str
    type: str
    monthly: float | None
    note: str


class ComponentCost(BaseModel):
    """One component: what it costs as deployed (``monthly``) and as the working config would (``planned_monthly``)."""

    monthly: float | None
    planned_monthly: float | None
    resources: list[ResourceCost] = Field(default_factory=list)


class CostEstimate(BaseModel):
    """The document of ``strata cost ENV --json``."""

    env: str
    cloud: str
    currency: str = "USD"
    prices_as_of: str | None = None
    total_monthly: float
    components: dict[str, ComponentCost] = Field(default_factory=dict)

    def total_planned(self) -> float:
        """What the working config of every component would cost a month (priced resources only)."""
        return round(sum(c.planned_monthly or 0.0 for c in self.components.values()), 2)


def money(amount: float, currency: str = "USD", *, sign: bool = False) -> str:
    """``$1,234.56`` (``+$12.00`` with ``sign``); other currencies as ``1,234.56 EUR``."""
    prefix = ("+" if amount >= 0 else "-") if sign else ("-" if amount < 0 else "")
    number = f"{abs(amount):,.2f}"
    return f"{prefix}${number}" if currency == "USD" else f"{prefix}{number} {currency}"


__all__ = [
    "ASSUMED_LOG_GB",
    "ASSUMED_REGISTRY_GB",
    "DAYS_PER_MONTH",
    "HOURS_PER_MONTH",
    "NOT_PRICED",
    "Charge",
    "ComponentCost",
    "CostEstimate",
    "Price",
    "PriceBook",
    "PriceQuery",
    "ResourceCost",
    "Usage",
    "money",
]
