"""Cost: what an environment's components cost a month, what a change adds, and the budget gate.

Pure (no cloud SDK; prices come through a ``PriceBook``, which
``strataflow.backends.pricing`` implements over the clouds' price lists):

- ``model``: ``PriceQuery``, ``Price``, ``PriceBook``, ``Usage`` and the JSON document models;
- ``aws`` (over ``cfn``, the CloudFormation evaluator) and ``arm`` (over ``armexpr``): a
  template's resources as usages;
- ``estimate``: ``estimate`` (``strata cost ENV``), ``monthly_changes`` and ``change_lines``
  (the monthly change of a plan or promotion);
- ``gate``: ``budget_gate`` and ``budget_action`` for promotions;
- ``actual``: the models of actual spend (``strata cost ENV --actual``); ``text``: the text output.
"""

from __future__ import annotations

from strataflow.cost.estimate import CostChange, change_lines, estimate, monthly_changes, total_change
from strataflow.cost.gate import budget_action, budget_gate
from strataflow.cost.model import CostEstimate, Price, PriceBook, PriceQuery

__all__ = [
    "CostChange",
    "CostEstimate",
    "Price",
    "PriceBook",
    "PriceQuery",
    "budget_action",
    "budget_gate",
    "change_lines",
    "estimate",
    "monthly_changes",
    "total_change",
]
