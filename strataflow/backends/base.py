"""The backend protocol: one method per operation over a resolved component.

A ``ComponentRun`` is everything a backend needs to act on one component in one
environment and cloud, with every reference already resolved (secrets included: it lives
only inside the task that uses it). Backends return typed results and raise errors from
``strataflow.errors``; each maps its SDK's exceptions in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from strataflow import shellrefs
from strataflow.backends.registry import Implementation
from strataflow.config import AwsTarget, AzureTarget
from strataflow.shellrefs import Prepared

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
    impl: Implementation
    """The implementation as configured: command fields keep their references (see ``scripts``)."""
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
    settings: Any = None
    """The environment's settings for this backend (its ``BackendSpec.settings`` model), if it has any."""
    log: Callable[[str], None] = field(default=_no_log, repr=False)
    scripts: dict[str, Prepared] = field(default_factory=dict, repr=False)
    """Each command field (``impl.script_fields``) ready for ``sh -c``: references read from variables."""
    script_values: dict[str, str] = field(default_factory=dict, repr=False)
    """The text value of each reference in ``scripts``, by reference body (secrets included: never log them)."""

    @property
    def path(self) -> Path:
        """The implementation's (first) source path inside the config directory: its template or module."""
        sources = self.impl.source_paths()
        if not sources:
            raise AttributeError(f"{self.impl.backend} components have no template")
        return self.config_dir / sources[0].relative

    @property
    def default_name(self) -> str:
        """``strata-<env>-<component>``: the stack or deployment name unless the component names its own."""
        return f"strata-{self.env}-{self.component}"


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


class Untracked:
    """The inspection half of ``Backend`` for what leaves nothing strataflow can look at (a command,
    a test's fake): no outputs to read back, what was applied is taken to exist, drift is not detected."""

    def outputs(self, run: ComponentRun) -> dict[str, Any]:
        del run
        return {}

    def exists(self, run: ComponentRun) -> bool:
        del run
        return True

    def drift(self, run: ComponentRun) -> Drift:
        del run
        return Drift(supported=False)


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every form of every secret (raw, quoted, escaped, encoded, its lines) replaced by ``***``.

    The one masking function for what leaves a run: ``strataflow.shellrefs.mask``.
    """
    return shellrefs.mask(text, secrets)
