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


class Applied(BaseModel):
    """What the last successful apply left deployed."""

    digest: str
    version: str | None = None
    outputs: dict[str, Any] = Field(default_factory=dict)
    sensitive: list[str] = Field(default_factory=list, description="Output keys stored masked.")
    parameters: dict[str, Any] = Field(default_factory=dict, description="Resolved parameters, secrets as references.")
    source_digest: str | None = Field(default=None, description="Digest of the template/module files alone.")
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


def applied_outputs(records: Mapping[str, ComponentRecord]) -> dict[str, dict[str, Any]]:
    """The outputs of each component that is currently applied (for resolving its consumers)."""
    return {n: dict(r.applied.outputs) for n, r in records.items() if r.applied is not None and r.state == "applied"}


def sensitive_keys(records: Mapping[str, ComponentRecord]) -> dict[str, frozenset[str]]:
    """Each applied component's sensitive output keys (their recorded values are masked)."""
    return {name: frozenset(r.applied.sensitive) for name, r in records.items() if r.applied is not None}


def component_key(env: str, cloud: str, component: str) -> str:
    """The artifact key of a component's state record."""
    return f"strata-{env}-{cloud}-{component}".lower()


def run_key(env: str, cloud: str) -> str:
    """The artifact key of an environment's run records: its history."""
    return f"strata-runs-{env}-{cloud}".lower()


def lock_name(env: str, cloud: str) -> str:
    """The global concurrency limit that is the environment's lock."""
    return f"strata-{env}-{cloud}".lower()


__all__ = [
    "MASK",
    "OK_STATUSES",
    "REDO_STATUSES",
    "Applied",
    "ComponentRecord",
    "ComponentStatus",
    "DriftRecord",
    "RunRecord",
    "applied_outputs",
    "component_key",
    "lock_name",
    "masked",
    "now",
    "run_key",
    "sensitive_keys",
]
