"""Command components: plain commands (helm, kubectl, scripts) run with ``sh -c``.

This module is the backend's spec (pure); ``backend.py`` runs the commands.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from strataflow.backends.registry import BackendSpec, Implementation


class CommandImpl(Implementation):
    backend: Literal["command"]
    apply: str
    plan: str | None = None
    destroy: str | None = None
    outputs: Literal["json"] | None = None

    script_fields: ClassVar[tuple[str, ...]] = ("apply", "plan", "destroy")


SPEC = BackendSpec(
    kind="command",
    config=CommandImpl,
    operations="strataflow.backends.command.backend:CommandBackend",
    description="shell commands",
)

__all__ = ["SPEC", "CommandImpl"]
