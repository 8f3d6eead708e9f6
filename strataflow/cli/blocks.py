"""`strata blocks register`: register strataflow's Prefect block types with the server."""

from __future__ import annotations

import argparse
from typing import Any

from strataflow.cli.common import add_config, prefect_session


def add(commands: Any) -> None:
    p = commands.add_parser("blocks", help="register strataflow's Prefect blocks")
    p.add_argument("op", choices=["register"])
    add_config(p, "accepted by every command; unused here")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    del args
    prefect_session()
    import blocks

    for block in (blocks.AwsDeployCredentials, blocks.AzureDeployCredentials, blocks.GitHubIssueTracker):
        block.register_type_and_schema()
        print(f"registered block type {block.get_block_type_slug()}")
    return 0
