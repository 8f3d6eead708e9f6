"""`strata cost ENV`: the monthly cost of what an environment runs and of what a plan would change;
`strata cost ENV --actual`: what it cost, per component, from the clouds' billing data.

Prices come from the clouds' price lists (cached for the day under ``$STRATA_HOME/prices``);
with ``--sandbox`` from the price sandbox's dated snapshot, and ``--actual`` asks moto's Cost
Explorer (AWS) or the price sandbox's Cost Management query (Azure).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from strataflow.cli.common import add_common, prefect_session, resolve_target
from strataflow.config import AwsTarget, AzureTarget, Environment, Platform
from strataflow.errors import UsageError


def add(commands: Any) -> None:
    p = commands.add_parser("cost", help="monthly cost of an environment (estimate), or what it cost (--actual)")
    p.add_argument("env")
    add_common(p)
    p.add_argument("--actual", action="store_true", help="what the environment cost, from the billing data")
    p.add_argument("--days", type=int, default=30, metavar="N", help="with --actual: the last N days (default 30)")
    p.set_defaults(handler=run)


def price_sandbox_url() -> str:
    """The price sandbox's URL (started beside the cloud sandboxes, living as long as the local server)."""
    from strataflow import server

    return str(server.sandbox("pricing")["endpoint_url"])


def _credentials(cloud: str, env: Environment) -> dict[str, Any]:
    """The credentials block the environment names for ``cloud`` (empty: the SDK's default chain)."""
    name = getattr(env.target(cloud), "credentials", None)
    if not name:
        return {}
    prefect_session()
    from blocks.credentials import load_credentials

    return load_credentials(cloud, name)


def run(args: argparse.Namespace) -> int:
    if args.days < 1:
        raise UsageError("--days must be at least 1")
    platform, cloud, graph, selected = resolve_target(args)
    names = graph.subgraph(selected).order()
    env = platform.environment(args.env)
    if args.actual:
        return _actual(args, platform, env, cloud, names)
    prefect_session()
    from strataflow import state
    from strataflow.backends.pricing.connect import price_book, sandbox_price_book
    from strataflow.cost import estimate
    from strataflow.cost.text import render_estimate

    records = state.latest_components(env.name, cloud, graph.nodes, args.sandbox)
    if args.sandbox:
        prices = sandbox_price_book(price_sandbox_url())
    else:
        aws = env.target("aws")
        assert isinstance(aws, AwsTarget)
        prices = price_book(aws=aws, aws_credentials=_credentials("aws", env) if cloud == "aws" else {})
    doc = estimate(platform, env, cloud, names, records, prices)
    print(json.dumps(doc.model_dump(mode="json"), indent=2) if args.json else render_estimate(doc))
    return 0


def _azure_groups(platform: Platform, env: Environment, names: list[str]) -> list[tuple[str, str | None]]:
    """The resource groups the environment deploys into, each with the component that owns it (None: shared)."""
    target = env.target("azure")
    shared = getattr(target, "resource_group", None) or f"strata-{env.name}"
    groups: list[tuple[str, str | None]] = [(shared, None)]
    for name in names:
        impl = platform.components[name].impl("azure")
        owned = getattr(impl, "resource_group", None)
        if owned and owned != shared:
            groups.append((str(owned), name))
    return groups


def _actual(args: argparse.Namespace, platform: Platform, env: Environment, cloud: str, names: list[str]) -> int:
    from strataflow.backends.pricing.cache import today_utc
    from strataflow.backends.pricing.connect import aws_spend_for, azure_spend_for
    from strataflow.cost.actual import actual_cost, period, render_actual

    start, end = period(args.days, today_utc())
    if cloud == "aws":
        target = env.target("aws")
        assert isinstance(target, AwsTarget)
        if args.sandbox:
            from strataflow import server

            info = server.sandbox("aws")
            target = target.model_copy(update={"endpoint_url": info["endpoint_url"]})
            credentials: dict[str, Any] = dict(info["credentials"])
        else:
            credentials = _credentials("aws", env)
        spend = aws_spend_for(env.name, target, credentials, start, end, sandbox=args.sandbox)
    else:
        azure = env.target("azure")
        assert isinstance(azure, AzureTarget)
        endpoint = price_sandbox_url() if args.sandbox else None
        credentials = {} if args.sandbox else _credentials("azure", env)
        spend = azure_spend_for(azure, _azure_groups(platform, env, names), credentials, start, end, endpoint=endpoint)
    amounts = spend.amounts
    if args.select:
        amounts = [(c, a) for c, a in amounts if c in names]
    doc = actual_cost(env.name, cloud, start, end, amounts, names, currency=spend.currency, notes=spend.notes)
    print(json.dumps(doc.model_dump(mode="json"), indent=2) if args.json else render_actual(doc))
    return 0
