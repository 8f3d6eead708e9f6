"""The ARM template expression language, as one import (kept for existing callers).

The language is split by concern:

- ``arm_parser``: the syntax (``"[fn(a, 'b').c[0]]"``), ``parse`` and ``unparse``;
- ``arm_values``: types, errors (``ExpressionError``, ``Unsupported``, ``Unknown``) and checks;
- ``arm_eval``: ``Scope``, ``Frame``, ``evaluate`` and ``check``;
- ``arm_functions``: the function library, from ``arm_fn_string``, ``arm_fn_collections``,
  ``arm_fn_logic``, ``arm_fn_date``, ``arm_fn_lambda`` and ``arm_fn_deployment``.
"""

from __future__ import annotations

from strataflow.sandbox.arm_eval import ROOT, Ctx, Frame, Scope, check, evaluate
from strataflow.sandbox.arm_fn_deployment import resource_path
from strataflow.sandbox.arm_functions import FUNCTIONS, lookup
from strataflow.sandbox.arm_parser import Call, Lit, Member, Node, is_expression, parse, unparse
from strataflow.sandbox.arm_values import ExpressionError, NotFound, Unknown, Unsupported

__all__ = [
    "FUNCTIONS",
    "ROOT",
    "Call",
    "Ctx",
    "ExpressionError",
    "Frame",
    "Lit",
    "Member",
    "Node",
    "NotFound",
    "Scope",
    "Unknown",
    "Unsupported",
    "check",
    "evaluate",
    "is_expression",
    "lookup",
    "parse",
    "resource_path",
    "unparse",
]
