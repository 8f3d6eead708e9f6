"""Monthly cost of an environment: what it runs, what its working config would run, and the change.

Pure: the caller reads the records (``strataflow.state``) and gives a ``PriceBook``.

- What a component *runs* is its template with the parameters its last successful apply
  recorded (``Applied.parameters``); what it *would run* is the template with the working
  config's parameters (``resolve(..., planning=True)``). Both use the template on disk.
- ``estimate`` is ``strata cost ENV``: per component ``monthly`` (as deployed; 0 when not
  deployed, null when none of its resources is priced), ``planned_monthly`` (the working
  config) and each resource with its ``monthly`` (null and a "not priced" note when it is not
  priced, never a silent zero).
- ``monthly_changes`` / ``change_lines`` are the monthly change of a plan or a promotion
  (target's running cost against the target's working config), one line per component:
  ``clusters: +$30.37/month (NodeCount 2 -> 3)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from strataflow.config import Environment, Platform
from strataflow.cost import arm, aws
from strataflow.cost.model import (
    NOT_PRICED,
    ComponentCost,
    CostEstimate,
    Price,
    PriceBook,
    ResourceCost,
    Usage,
    money,
)
from strataflow.errors import StrataError
from strataflow.records import ComponentRecord, applied_outputs, sensitive_keys
from strataflow.refs import as_text
from strataflow.resolve import resolve
from strataflow.templateparams.model import TemplateParamsError


def component_usages(
    platform: Platform, env: Environment, cloud: str, name: str, parameters: Mapping[str, Any]
) -> list[Usage]:
    """The resources component ``name`` deploys on ``cloud`` with ``parameters``, each priced or saying why not."""
    impl = platform.components[name].impl(cloud)
    if impl is None:
        return []
    kind = impl.backend
    template = getattr(impl, "template", None)
    root = platform.root_of(name)  # a release's components live in their bundle snapshots
    try:
        if kind == "cloudformation" and template:
            region = getattr(env.target("aws"), "region", "us-east-1")
            stack = getattr(impl, "stack_name", None) or f"strata-{env.name}-{name}"
            return aws.template_usages(root / template, parameters, region, stack)
        if kind == "arm" and template:
            target = env.target("azure")
            group = getattr(impl, "resource_group", None) or getattr(target, "resource_group", None)
            return arm.template_usages(
                root / template,
                parameters,
                location=str(getattr(target, "location", "westeurope")),
                resource_group=group or f"strata-{env.name}",
                subscription=getattr(target, "subscription_id", None),
            )
    except TemplateParamsError as exc:
        return [Usage(name, f"{kind} template", reason=f"{NOT_PRICED}: cannot read the template: {exc}")]
    return [Usage(name, f"{kind} component", reason=f"{NOT_PRICED}: {kind} components are not estimated")]


@dataclass(frozen=True)
class Priced:
    """A usage with its monthly amount (None: not priced) and the note that explains it."""

    usage: Usage
    monthly: float | None
    note: str
    prices: tuple[Price, ...] = ()


def _rate(price: Price) -> str:
    amount = f"{price.amount:.6f}".rstrip("0").rstrip(".")
    return f"${amount}/{price.unit}" if price.currency == "USD" else f"{amount} {price.currency}/{price.unit}"


def price_usage(usage: Usage, prices: PriceBook) -> Priced:
    """``usage`` priced: the sum of its charges, or None with the reason when a price is missing."""
    if usage.fixed is not None:
        return Priced(usage, usage.fixed, usage.extra or "no charge")
    if not usage.charges:
        return Priced(usage, None, usage.reason or NOT_PRICED)
    total, parts, found = 0.0, [], []
    for charge in usage.charges:
        price = prices.price(charge.query)
        if price is None:
            return Priced(usage, None, f"{NOT_PRICED}: the price list has no price for {charge.query.describe()}")
        total += price.amount * charge.quantity
        parts.append(f"{charge.basis} at {_rate(price)}")
        found.append(price)
    note = "; ".join(parts) + (f" ({usage.extra})" if usage.extra else "")
    return Priced(usage, total, note, tuple(found))


def _sum(priced: Sequence[Priced]) -> float:
    """The priced part of ``priced``'s monthly cost, unrounded."""
    return sum(p.monthly for p in priced if p.monthly is not None)


def _resources(running: list[Priced] | None, planned: list[Priced] | None, currency: str) -> list[ResourceCost]:
    """One row per resource of either side: ``monthly`` as deployed, the planned change in the note."""
    rows: list[ResourceCost] = []
    later = {(p.usage.name, p.usage.type): p for p in planned or []}
    for now in running or []:
        key = (now.usage.name, now.usage.type)
        nxt = later.pop(key, None)
        note = now.note
        if planned is not None and nxt is None:
            note += "; planned: removed"
        elif nxt is not None and nxt.monthly is not None and nxt.monthly != now.monthly:
            note += f"; planned: {nxt.note} = {money(nxt.monthly, currency)}/month"
        monthly = None if now.monthly is None else round(now.monthly, 2)
        rows.append(ResourceCost(name=now.usage.name, type=now.usage.type, monthly=monthly, note=note))
    for nxt in later.values():
        if nxt.monthly is None:
            rows.append(ResourceCost(name=nxt.usage.name, type=nxt.usage.type, monthly=None, note=nxt.note))
            continue
        when = "not deployed" if running is None else "added by the working config"
        note = f"{when}; planned: {nxt.note} = {money(nxt.monthly, currency)}/month"
        rows.append(ResourceCost(name=nxt.usage.name, type=nxt.usage.type, monthly=0.0, note=note))
    return rows


@dataclass(frozen=True)
class ComponentSides:
    """One component priced as deployed and as the working config would deploy it."""

    name: str
    running: list[Priced] | None
    """None: not deployed."""
    planned: list[Priced] | None
    """None: the working config cannot be resolved (``error`` says why)."""
    before: Mapping[str, Any]
    after: Mapping[str, Any]
    error: str | None = None

    def cost(self, currency: str) -> ComponentCost:
        monthly, planned = self.amounts()
        return ComponentCost(
            monthly=None if monthly is None else round(monthly, 2),
            planned_monthly=None if planned is None else round(planned, 2),
            resources=_resources(self.running, self.planned, currency),
        )

    @property
    def priced(self) -> bool:
        """Whether any of its resources, deployed or planned, is priced."""
        return any(p.monthly is not None for p in (self.running or []) + (self.planned or []))

    def amounts(self) -> tuple[float | None, float | None]:
        """(as deployed, as planned), unrounded: None when nothing is priced (or the plan cannot be resolved)."""
        if not self.priced:
            return None, None
        monthly = 0.0 if self.running is None else _sum(self.running)
        return monthly, None if self.planned is None else _sum(self.planned)


def price_components(
    platform: Platform,
    env: Environment,
    cloud: str,
    names: Sequence[str],
    records: Mapping[str, ComponentRecord],
    prices: PriceBook,
) -> list[ComponentSides]:
    """Each of ``names`` priced as ``records`` say it is deployed, and as the working config would be."""
    outputs, sensitive = applied_outputs(records), sensitive_keys(records)
    sides = []
    for name in names:
        record = records.get(name)
        applied = record.applied if record is not None and record.state == "applied" else None
        before = dict(applied.parameters) if applied is not None else {}
        running = None
        if applied is not None:
            running = [price_usage(u, prices) for u in component_usages(platform, env, cloud, name, before)]
        try:
            after = resolve(platform, env, cloud, name, outputs, planning=True, sensitive=sensitive).shown_parameters
        except StrataError as exc:
            sides.append(ComponentSides(name, running, None, before, {}, error=str(exc)))
            continue
        planned = [price_usage(u, prices) for u in component_usages(platform, env, cloud, name, after)]
        sides.append(ComponentSides(name, running, planned, before, after))
    return sides


def _currency_and_date(sides: Sequence[ComponentSides]) -> tuple[str, str | None]:
    used = [p for s in sides for side in (s.running or [], s.planned or []) for item in side for p in item.prices]
    currencies = sorted({p.currency for p in used}) or ["USD"]
    dates = sorted(p.as_of for p in used if p.as_of)
    return currencies[0], (dates[0] if dates else None)


def estimate(
    platform: Platform,
    env: Environment,
    cloud: str,
    names: Sequence[str],
    records: Mapping[str, ComponentRecord],
    prices: PriceBook,
) -> CostEstimate:
    """``strata cost ENV``: each component's monthly cost as deployed and as the working config would be."""
    sides = price_components(platform, env, cloud, names, records, prices)
    currency, as_of = _currency_and_date(sides)
    components = {s.name: s.cost(currency) for s in sides}
    total = round(sum(c.monthly or 0.0 for c in components.values()), 2)
    return CostEstimate(
        env=env.name, cloud=cloud, currency=currency, prices_as_of=as_of, total_monthly=total, components=components
    )


class CostChange(BaseModel):
    """What a plan or promotion changes in one component's monthly cost."""

    component: str
    before: float | None = Field(description="As deployed (None: not deployed).")
    after: float | None = Field(description="As the working config would be (None: cannot be estimated).")
    currency: str = "USD"
    drivers: list[str] = Field(default_factory=list, description="Parameter changes behind it: 'NodeCount 2 -> 3'.")
    error: str | None = None

    delta: float = Field(default=0.0, description="after - before, rounded after subtracting.")

    def change(self) -> str:
        """The monthly change and why: ``+$3.00/month (NodeCount 2 -> 3)``."""
        if self.after is None:
            return f"monthly change unknown ({self.error or 'nothing priced'})"
        why = ", ".join(self.drivers) or ("new" if self.before is None else "template or prices changed")
        return f"{money(self.delta, self.currency, sign=True)}/month ({why})"

    def line(self) -> str:
        return f"{self.component}: {self.change()}"


def _drivers(side: ComponentSides) -> list[str]:
    names = sorted(
        {d for p in (side.planned or []) + (side.running or []) if p.monthly is not None for d in p.usage.drivers}
    )
    lines = []
    for name in names:
        old, new = side.before.get(name), side.after.get(name)
        if old is not None and new is not None and as_text(old) != as_text(new):
            lines.append(f"{name} {as_text(old)} -> {as_text(new)}")
    return lines


def monthly_changes(
    platform: Platform,
    env: Environment,
    cloud: str,
    names: Sequence[str],
    records: Mapping[str, ComponentRecord],
    prices: PriceBook,
) -> list[CostChange]:
    """Per component of ``names``: its monthly cost in ``env`` now (``records``) and after deploying the working config."""
    sides = price_components(platform, env, cloud, names, records, prices)
    currency, _ = _currency_and_date(sides)
    changes = []
    for side in sides:
        before = None if side.running is None else _sum(side.running)
        after = None if side.planned is None else _sum(side.planned)
        error = side.error if side.planned is None else None
        delta = round((after or 0.0) - (before or 0.0), 2)
        changes.append(
            CostChange(
                component=side.name,
                before=None if before is None else round(before, 2),
                after=None if after is None else round(after, 2),
                delta=delta,
                currency=currency,
                drivers=_drivers(side),
                error=error,
            )
        )
    return changes


def total_change(changes: Sequence[CostChange]) -> float | None:
    """The monthly change of all of ``changes`` (None when one of them cannot be estimated)."""
    if any(c.after is None for c in changes):
        return None
    return round(sum(c.delta for c in changes), 2)


def change_lines(changes: Sequence[CostChange]) -> list[str]:
    """One line per component whose monthly cost changes (or cannot be estimated), then the total."""
    lines = [c.line() for c in changes if c.after is None or c.delta != 0]
    total = total_change(changes)
    currency = changes[0].currency if changes else "USD"
    if total is None:
        lines.append("total: monthly change unknown")
    else:
        lines.append(f"total: {money(total, currency, sign=True)}/month")
    return lines


__all__ = [
    "ComponentSides",
    "CostChange",
    "Priced",
    "change_lines",
    "component_usages",
    "estimate",
    "monthly_changes",
    "price_components",
    "price_usage",
    "total_change",
]
