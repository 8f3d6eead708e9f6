"""Backends: the only code that talks to clouds or runs deployment commands.

``get(kind)`` returns the backend for a component's ``backend:`` value; each module is
imported only when a component uses it, so ``strata validate`` never loads a cloud SDK.
Tests register their own with ``register``.
"""

from __future__ import annotations

import importlib

from strataflow.backends.base import Backend, ComponentRun, Drift, Outcome

_BUILTIN = {
    "cloudformation": "strataflow.backends.cloudformation:CloudFormationBackend",
    "arm": "strataflow.backends.arm:ArmBackend",
    "terraform": "strataflow.backends.terraform:TerraformBackend",
    "command": "strataflow.backends.command:CommandBackend",
}
_registered: dict[str, Backend] = {}


def get(kind: str) -> Backend:
    """The backend for ``kind`` (one instance per process)."""
    if kind not in _registered:
        module, _, attr = _BUILTIN[kind].partition(":")
        _registered[kind] = getattr(importlib.import_module(module), attr)()
    return _registered[kind]


def register(kind: str, backend: Backend) -> Backend | None:
    """Use ``backend`` for ``kind``; returns the one it replaces (tests restore it)."""
    previous = _registered.get(kind)
    _registered[kind] = backend
    return previous


def unregister(kind: str) -> None:
    _registered.pop(kind, None)


__all__ = ["Backend", "ComponentRun", "Drift", "Outcome", "get", "register", "unregister"]
