"""The ARM template function library: every function by lower-case name.

Assembled from the category modules (``arm_fn_string``, ``arm_fn_collections``,
``arm_fn_logic``, ``arm_fn_date``, ``arm_fn_lambda``, ``arm_fn_deployment``). Any name
starting with ``list`` is a resource ``list*`` action, as in Azure. ``lookup`` answers None
for a name Azure does not know either ("The template function 'x' is not valid").
"""

from __future__ import annotations

import functools

from strataflow.sandbox import (
    arm_fn_collections,
    arm_fn_date,
    arm_fn_deployment,
    arm_fn_lambda,
    arm_fn_logic,
    arm_fn_string,
)
from strataflow.sandbox.arm_values import Spec

FUNCTIONS: dict[str, Spec] = {
    **arm_fn_string.FUNCTIONS,
    **arm_fn_collections.FUNCTIONS,
    **arm_fn_logic.FUNCTIONS,
    **arm_fn_date.FUNCTIONS,
    **arm_fn_lambda.FUNCTIONS,
    **arm_fn_deployment.FUNCTIONS,
}


@functools.lru_cache(maxsize=1024)
def lookup(name: str) -> Spec | None:
    """The function called ``name`` (lower case), a ``list*`` action, or None."""
    found = FUNCTIONS.get(name)
    if found is None and name.startswith("list") and len(name) > 4:
        return arm_fn_deployment.list_function(name)
    return found
