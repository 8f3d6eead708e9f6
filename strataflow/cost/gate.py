"""The budget gate of a promotion: a monthly increase above the target's budget needs an approver.

Pure. An environment may set ``budget: {monthly_increase: AMOUNT}`` (in the price lists'
currency, USD). ``budget_gate`` passes when the promotion's monthly change (from
``strataflow.cost.estimate.total_change``) is within it, and fails, saying by how much, when
it is above it or cannot be estimated. A failed budget gate does not refuse the promotion by
itself: ``budget_action`` says what the promotion does then: wait for one of the target's
approvers even where the target needs no approval, or refuse when the target names none.
"""

from __future__ import annotations

from typing import Literal

from strataflow.config import Environment
from strataflow.cost.model import money
from strataflow.gates import Gate

GATE_NAME = "budget"
BudgetAction = Literal["none", "approval", "refuse"]


def budget_gate(target: Environment, monthly_change: float | None, currency: str = "USD") -> Gate:
    """Whether the promotion's ``monthly_change`` into ``target`` is within ``target.budget.monthly_increase``.

    ``monthly_change`` None means it could not be estimated (a price missing, a parameter
    unknown): with a budget set, that fails the gate too, so a human looks.
    """
    budget = target.budget
    change = "unknown" if monthly_change is None else f"{money(monthly_change, currency, sign=True)}/month"
    if budget is None:
        return Gate(name=GATE_NAME, passed=True, reason=f"{target.name} sets no budget (monthly change {change})")
    limit = f"{money(budget.monthly_increase, currency, sign=True)}/month"
    if monthly_change is None:
        return Gate(
            name=GATE_NAME,
            passed=False,
            reason=f"the monthly change cannot be estimated; {target.name}'s budget is {limit}: an approver must approve",
        )
    if monthly_change <= budget.monthly_increase:
        return Gate(
            name=GATE_NAME, passed=True, reason=f"monthly change {change} is within {target.name}'s budget of {limit}"
        )
    return Gate(
        name=GATE_NAME,
        passed=False,
        reason=f"monthly change {change} exceeds {target.name}'s budget of {limit} (budget.monthly_increase): "
        "an approver must approve this promotion",
    )


def budget_action(target: Environment, gate: Gate) -> BudgetAction:
    """What the promotion does after ``gate``: go on, wait for an approver of ``target``, or refuse (no approvers)."""
    if gate.passed:
        return "none"
    return "approval" if target.approval.approvers else "refuse"


__all__ = ["GATE_NAME", "BudgetAction", "budget_action", "budget_gate"]
