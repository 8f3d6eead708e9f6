"""What a promotion (or a plan) adds to the monthly bill, for the diff, the report and the budget gate.

Prices come from the clouds' price lists (the price sandbox's dated snapshot with
``--sandbox``), cached per day; a price list that cannot be reached makes the change
"unknown", never zero, and never fails the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prefect import get_run_logger

from blocks.credentials import load_credentials
from strataflow import server
from strataflow.backends.pricing.connect import for_environment
from strataflow.config import Environment, Platform
from strataflow.cost import CostChange, monthly_changes
from strataflow.errors import StrataError
from strataflow.records import ComponentRecord


def changes(
    platform: Platform,
    env: Environment,
    cloud: str,
    names: Sequence[str],
    records: Mapping[str, ComponentRecord],
    sandbox: bool,
) -> list[CostChange] | None:
    """Each component's monthly cost now and after deploying what ``platform`` defines; None when unknown."""
    try:
        url = str(server.sandbox("pricing")["endpoint_url"]) if sandbox else None
        credentials = {} if sandbox else load_credentials(cloud, getattr(env.target(cloud), "credentials", None))
        prices = for_environment(env, cloud, url, credentials)
        return monthly_changes(platform, env, cloud, names, records, prices)
    except (StrataError, OSError) as exc:
        get_run_logger().warning("the monthly cost change is unknown: %s", exc)
        return None


__all__ = ["changes"]
