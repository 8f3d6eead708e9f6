"""Secret blocks strataflow makes itself: secure parameter values written as text in the configuration.

A release never stores such a value: the bundle (or environment snapshot) holds a
``${secret.strata-secure-<hash>}`` reference instead, and the value goes to a Prefect Secret
block of that name (encrypted by the server), read back only inside the task that uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strataflow.errors import StateError
from strataflow.state._api import api


def ensure_secrets(values: Mapping[str, Any]) -> None:
    """Save each value as the Secret block of its name, unless it is there already (the name follows the value)."""
    if not values:
        return
    from prefect.blocks.system import Secret
    from prefect.exceptions import ObjectNotFound

    with api("store secure parameter values as Secret blocks"):
        for name, value in sorted(values.items()):
            try:
                Secret.load(name)
            except (ObjectNotFound, ValueError):
                Secret(value=value).save(name, overwrite=True)


def read_secret(name: str) -> Any:
    """The value of the Secret block ``name``: text, or the JSON value a secure object parameter holds."""
    from prefect.blocks.system import Secret

    with api(f"read the Secret block '{name}'"):
        try:
            block: Any = Secret.load(name)
        except ValueError as exc:  # Prefect's "Unable to find block document named ..."
            raise StateError(
                f"secret '{name}' is not a Secret block on the Prefect server; create it in the UI "
                f"(Blocks > Secret) or with Secret(value=...).save('{name}')"
            ) from exc
        return block.get()


__all__ = ["ensure_secrets", "read_secret"]
