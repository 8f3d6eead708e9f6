"""`strata promote`, `approve`, `reject` and `drift`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def add_commands(commands: Any, common: Callable[..., None]) -> None:
    del commands, common


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {}
