"""The records strataflow keeps in Prefect's run history, and the status vocabulary they use.

Pure data: a ``ComponentRecord`` is the latest known state of one component in one
environment and cloud; a ``RunRecord`` is one run (apply, promotion, approval, ...) in the
audit trail. ``strataflow.state`` reads and writes them through the Prefect API; the
promotion gates, the diff, status and the reports read them as plain models.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

ComponentStatus = Literal["succeeded", "unchanged", "planned", "failed", "skipped", "cancelled"]
"""A component's status in a run report (contract): see the README's run report."""
OK_STATUSES = frozenset({"succeeded", "unchanged"})
REDO_STATUSES = frozenset({"failed", "skipped", "cancelled"})
"""What ``--resume`` runs again."""
DURATIONS_KEPT = 10
"""Successful apply durations kept per component (their median weighs the scheduler's priorities)."""
MASK = "***"
"""What a secret or sensitive value is replaced by wherever it would be shown or stored."""
RunKind = Literal["orchestrate", "promote", "approval", "unlock", "drift"]


def now() -> datetime:
    return datetime.now(UTC)


def masked(outputs: Mapping[str, Any], sensitive: frozenset[str] | set[str] | list[str]) -> dict[str, Any]:
    """``outputs`` with the values of the ``sensitive`` keys replaced by ``***``."""
    return {k: (MASK if k in sensitive else v) for k, v in outputs.items()}


class Decision(BaseModel):
    """An approval decision as recorded: who, what, and whether their identity was verified."""

    decision: str = Field(description="approve, reject, auto (no approval required) or timeout.")
    approver: str | None = None
    verified: bool = Field(default=False, description="True when an SSH signature by the approver's key was checked.")
    comment: str = ""
    digest: str | None = Field(default=None, description="The digest of what was approved.")
    at: datetime | None = None
    flow_run_id: str | None = Field(default=None, description="The run that waited for the decision.")

    def who(self) -> str:
        """``alice (verified)``, ``bob (not verified)``, or ``automatic``."""
        if self.decision == "auto" or not self.approver:
            return "automatic (no approval required)"
        return f"{self.approver} ({'verified' if self.verified else 'not verified'})"


class Applied(BaseModel):
    """What the last successful apply left deployed."""

    digest: str
    bundle: str | None = Field(default=None, description="The digest of the bundle deployed (strataflow.releases).")
    release: str | None = Field(default=None, description="The release the run was deploying.")
    how: str = Field(default="apply", description="apply, promotion, rollback or break-glass.")
    source: str | None = Field(default=None, description="The environment it was promoted from.")
    approval: Decision | None = Field(default=None, description="Who approved the change that put it there.")
    version: str | None = None
    outputs: dict[str, Any] = Field(default_factory=dict)
    sensitive: list[str] = Field(default_factory=list, description="Output keys stored masked.")
    parameters: dict[str, Any] = Field(default_factory=dict, description="Resolved parameters, secrets as references.")
    applied_at: datetime
    actor: str | None = None
    flow_run_id: str | None = None


class DriftRecord(BaseModel):
    checked_at: datetime
    supported: bool
    drifted: bool
    resources: list[str] = Field(default_factory=list)


class ComponentRecord(BaseModel):
    """The latest known state of one component in one environment and cloud."""

    env: str
    cloud: str
    component: str
    action: str
    status: str
    applied: Applied | None = None
    error: str | None = None
    changes: int = 0
    durations: list[float] = Field(default_factory=list, description="Recent successful apply durations (s).")
    started_at: datetime | None = None
    finished_at: datetime | None = None
    flow_run_id: str | None = None
    actor: str | None = None
    drift: DriftRecord | None = None
    sandbox: bool = Field(default=False, description="Made on the sandbox (emulated clouds), not a real cloud.")

    @property
    def state(self) -> Literal["applied", "failed", "destroyed", "never"]:
        if self.action == "destroy" and self.status in OK_STATUSES:
            return "destroyed"
        if self.status == "failed":
            return "failed"
        return "applied" if self.applied is not None else "never"

    def expected_duration(self) -> float | None:
        return statistics.median(self.durations) if self.durations else None


class RunRecord(BaseModel):
    """One orchestrator or promotion run: who ran what, when, and how it ended."""

    kind: RunKind = "orchestrate"
    env: str
    cloud: str
    action: str
    status: str
    flow_run_id: str | None = None
    actor: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    select: str | None = None
    planned: list[str] = Field(default_factory=list)
    components: dict[str, str] = Field(default_factory=dict)
    detail: dict[str, Any] = Field(default_factory=dict, description="Promotion, approval, reason...")
    sandbox: bool = Field(default=False, description="Made on the sandbox (emulated clouds), not a real cloud.")
    release: str | None = Field(default=None, description="The environment's release when the run ended.")


def applied_outputs(records: Mapping[str, ComponentRecord]) -> dict[str, dict[str, Any]]:
    """The outputs of each component that is currently applied (for resolving its consumers)."""
    return {n: dict(r.applied.outputs) for n, r in records.items() if r.applied is not None and r.state == "applied"}


def sensitive_keys(records: Mapping[str, ComponentRecord]) -> dict[str, frozenset[str]]:
    """Each applied component's sensitive output keys (their recorded values are masked)."""
    return {name: frozenset(r.applied.sensitive) for name, r in records.items() if r.applied is not None}


SANDBOX_PREFIX = "sandbox-"
"""Keys of what the sandbox did start with it; no real key does (they start with ``strata-``)."""


def _key(name: str, sandbox: bool) -> str:
    return (SANDBOX_PREFIX + name if sandbox else name).lower()


def component_key(env: str, cloud: str, component: str, sandbox: bool = False) -> str:
    """The artifact key of a component's state record."""
    return _key(f"strata-{env}-{cloud}-{component}", sandbox)


def run_key(env: str, cloud: str, sandbox: bool = False) -> str:
    """The artifact key of an environment's run records: its history."""
    return _key(f"strata-runs-{env}-{cloud}", sandbox)


def release_key(env: str, cloud: str, sandbox: bool = False) -> str:
    """The artifact key of an environment's releases, one version per release it reached."""
    return _key(f"strata-releases-{env}-{cloud}", sandbox)


def lock_name(env: str, cloud: str, sandbox: bool = False) -> str:
    """The global concurrency limit that is the environment's lock."""
    return _key(f"strata-{env}-{cloud}", sandbox)


def release_of(records: Mapping[str, ComponentRecord]) -> dict[str, str]:
    """Component -> bundle digest of every component the records say is applied (with a known bundle)."""
    return {
        name: r.applied.bundle
        for name, r in sorted(records.items())
        if r.applied is not None and r.applied.bundle and r.state == "applied"
    }


__all__ = [
    "MASK",
    "OK_STATUSES",
    "REDO_STATUSES",
    "SANDBOX_PREFIX",
    "Applied",
    "ComponentRecord",
    "ComponentStatus",
    "Decision",
    "DriftRecord",
    "RunRecord",
    "applied_outputs",
    "component_key",
    "lock_name",
    "masked",
    "now",
    "release_key",
    "release_of",
    "run_key",
    "sensitive_keys",
]
