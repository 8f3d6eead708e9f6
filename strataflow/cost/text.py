"""``strata cost ENV`` as text: per component the monthly cost as deployed and as planned, then each resource.

Pure.
"""

from __future__ import annotations

from strataflow.cost.model import CostEstimate, money


def _amount(value: float | None, currency: str) -> str:
    return "-" if value is None else money(value, currency)


def render_estimate(doc: CostEstimate, *, resources: bool = True) -> str:
    """The estimate as lines: a header with both totals, a line per component, an indented line per resource."""
    cur = doc.currency
    planned = doc.total_planned()
    change = planned - doc.total_monthly
    as_of = f"prices as of {doc.prices_as_of}" if doc.prices_as_of else "no prices used"
    lines = [
        f"{doc.env} ({doc.cloud}): {money(doc.total_monthly, cur)}/month as deployed, "
        f"{money(planned, cur)}/month as planned ({money(change, cur, sign=True)}); {as_of}, {cur}",
        f"  {'component':<22} {'monthly':>12} {'planned':>12} {'change':>12}",
    ]
    for name, comp in doc.components.items():
        nothing = all(r.monthly is None for r in comp.resources)
        delta = "-" if nothing else money((comp.planned_monthly or 0.0) - (comp.monthly or 0.0), cur, sign=True)
        lines.append(
            f"  {name:<22} {_amount(comp.monthly, cur):>12} {_amount(comp.planned_monthly, cur):>12} {delta:>12}"
        )
        if resources:
            for res in comp.resources:
                amount = "" if res.monthly is None else f"{money(res.monthly, cur)}; "
                lines.append(f"      {res.name} ({res.type}): {amount}{res.note}")
    not_priced = sum(1 for c in doc.components.values() for r in c.resources if r.monthly is None)
    lines.append(
        f"{not_priced} resource(s) not priced (no charge of their own, usage-based, or no price rule): "
        "they are left out of the totals, not counted as zero"
    )
    return "\n".join(lines)


__all__ = ["render_estimate"]
