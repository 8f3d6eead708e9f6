"""The backend protocol: one method per operation over a resolved component.

A ``ComponentRun`` is everything a backend needs to act on one component in one
environment and cloud, with every reference already resolved (secrets included: it lives
only inside the task that uses it). Backends return typed results and raise errors from
``strataflow.errors``; each maps its SDK's exceptions in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from strataflow.config import AwsTarget, AzureTarget, Impl, TerraformSettings

Action = Literal["plan", "apply", "destroy"]


def _no_log(line: str) -> None:
    del line


@dataclass
class ComponentRun:
    """One component, resolved for one environment, cloud and action."""

    env: str
    cloud: str
    component: str
    action: Action
    impl: Impl
    parameters: dict[str, Any]
    """Resolved parameters (upstream outputs and secrets substituted)."""
    config_dir: Path
    target: AwsTarget | AzureTarget
    version: str | None = None
    digest: str | None = None
    flow_run_id: str | None = None
    actor: str | None = None
    timeout: float | None = None
    sandbox: bool = False
    credentials: dict[str, Any] = field(default_factory=dict, repr=False)
    """Credentials from a Prefect block (values are pydantic SecretStr), empty for the default chain."""
    secrets: frozenset[str] = field(default_factory=frozenset, repr=False)
    """Secret values used by this run: never logged, masked in every output."""
    state_dir: Path | None = None
    """A directory this component may keep files in (terraform working copies and local state)."""
    terraform: TerraformSettings = field(default_factory=TerraformSettings)
    log: Callable[[str], None] = field(default=_no_log, repr=False)

    @property
    def path(self) -> Path:
        """The template or module path, inside the config directory."""
        relative = getattr(self.impl, "template", None) or getattr(self.impl, "module", None)
        if relative is None:
            raise AttributeError(f"{self.impl.backend} components have no template")
        return self.config_dir / str(relative)

    @property
    def deployment_name(self) -> str:
        """``strata-<env>-<component>``: the stack/deployment name unless the component overrides it."""
        override = getattr(self.impl, "stack_name", None) or getattr(self.impl, "deployment_name", None)
        return override or f"strata-{self.env}-{self.component}"


@dataclass
class Outcome:
    """What a plan, apply or destroy did (or would do)."""

    changes: int = 0
    outputs: dict[str, Any] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)
    """Human-readable lines: '+ Add Vpc (AWS::EC2::VPC)', '~ Modify Role (replacement)'."""
    no_changes: bool = False
    sensitive: frozenset[str] = frozenset()
    """Output keys whose values must be masked in reports."""


@dataclass
class Drift:
    """Whether the deployed object differs from what was applied."""

    supported: bool
    drifted: bool = False
    resources: list[str] = field(default_factory=list)


class Backend(Protocol):
    """How one kind of component is planned, applied, destroyed and inspected."""

    def plan(self, run: ComponentRun) -> Outcome: ...

    def apply(self, run: ComponentRun) -> Outcome: ...

    def destroy(self, run: ComponentRun) -> Outcome: ...

    def outputs(self, run: ComponentRun) -> dict[str, Any]: ...

    def exists(self, run: ComponentRun) -> bool:
        """One cheap call: does the deployed object still exist?"""
        ...

    def drift(self, run: ComponentRun) -> Drift: ...


def mask(text: str, secrets: frozenset[str]) -> str:
    """``text`` with every secret value replaced by ``***``."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
    return text
