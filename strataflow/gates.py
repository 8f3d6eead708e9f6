"""Promotion gates: each one passes or fails with its reason, before any approval.

Pure: the promotion flow reads records and lock state, then asks these functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from cronsim import CronSim
from pydantic import BaseModel

from strataflow.config import Environment, FreezeWindow, Platform
from strataflow.errors import StrataError
from strataflow.records import OK_STATUSES, ComponentRecord, applied_outputs, sensitive_keys
from strataflow.resolve import resolve


class Gate(BaseModel):
    name: str
    passed: bool
    reason: str
    component: str | None = None

    def line(self) -> str:
        mark = "pass" if self.passed else "FAIL"
        return f"[{mark}] {self.name}: {self.reason}"


def promote_from(source: Environment, target: Environment) -> Gate:
    if target.promote_from == source.name:
        return Gate(name="promote_from", passed=True, reason=f"{target.name} receives promotions from {source.name}")
    expected = target.promote_from or "nowhere"
    return Gate(
        name="promote_from",
        passed=False,
        reason=f"{target.name} receives promotions from {expected}, not {source.name} (promote_from in its environment file)",
    )


def source_verified(
    platform: Platform, source: Environment, cloud: str, names: list[str], records: Mapping[str, ComponentRecord]
) -> list[Gate]:
    """Each component's latest state in the source is a successful apply of exactly its working config."""
    outputs = applied_outputs(records)
    sensitive = sensitive_keys(records)
    gates = []
    for name in names:
        record = records.get(name)
        where = f"{name} in {source.name}"
        if record is None or record.applied is None:
            gates.append(
                Gate(
                    name="source_verified",
                    passed=False,
                    component=name,
                    reason=f"{where} was never applied; apply {source.name} first",
                )
            )
            continue
        if record.state != "applied" or record.status not in OK_STATUSES:
            why = f"its last {record.action} {record.status}" + (f": {record.error}" if record.error else "")
            gates.append(Gate(name="source_verified", passed=False, component=name, reason=f"{where}: {why}"))
            continue
        try:
            working = resolve(platform, source, cloud, name, outputs, planning=True, sensitive=sensitive).digest
        except StrataError as exc:
            gates.append(Gate(name="source_verified", passed=False, component=name, reason=f"{where}: {exc}"))
            continue
        if working != record.applied.digest:
            gates.append(
                Gate(
                    name="source_verified",
                    passed=False,
                    component=name,
                    reason=f"{where}: the working config (digest {working}) differs from what {source.name} runs "
                    f"({record.applied.digest}); apply {source.name} first so {name} is verified there",
                )
            )
            continue
        gates.append(
            Gate(
                name="source_verified",
                passed=True,
                component=name,
                reason=f"{where} runs {record.applied.version or 'its config'} ({working})",
            )
        )
    return gates


def not_running(env: str, holder: Mapping[str, str] | None) -> Gate:
    if holder is None:
        return Gate(name="not_running", passed=True, reason=f"no run in progress in {env}")
    return Gate(
        name="not_running",
        passed=False,
        reason=f"{env} is being changed by flow run {holder.get('flow_run_id')} ({holder.get('actor')}); wait for it",
    )


def no_drift(source: str, records: Mapping[str, ComponentRecord], names: list[str]) -> Gate:
    drifted = [n for n in names if (r := records.get(n)) and r.drift and r.drift.drifted]
    if drifted:
        return Gate(
            name="no_drift",
            passed=False,
            reason=f"drift found in {source}: {', '.join(drifted)}; reconcile (apply --force) first",
        )
    return Gate(name="no_drift", passed=True, reason=f"no drift recorded in {source} (where the backend can tell)")


def active_freeze(windows: list[FreezeWindow], at: datetime) -> FreezeWindow | None:
    """The freeze window ``at`` falls in, if any."""
    for window in windows:
        if window.start and window.end:
            start, end = _instant(window.start), _instant(window.end)
            if start <= at < end:
                return window
        elif window.cron and window.duration:
            since = (at - timedelta(seconds=window.duration)).replace(tzinfo=None)
            fire = next(iter(CronSim(window.cron, since)))
            if fire.replace(tzinfo=UTC) <= at:
                return window
    return None


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def not_frozen(target: Environment, at: datetime, override: str | None, actor: str) -> Gate:
    window = active_freeze(target.freeze, at)
    if window is None:
        return Gate(name="not_frozen", passed=True, reason=f"{target.name} is not in a freeze window")
    if override:
        if actor in target.approval.approvers:
            return Gate(
                name="not_frozen", passed=True, reason=f"freeze '{window.reason}' overridden by {actor}: {override}"
            )
        return Gate(
            name="not_frozen",
            passed=False,
            reason=f"{target.name} is frozen ({window.reason}); only an approver may override, and {actor} is not one",
        )
    return Gate(
        name="not_frozen",
        passed=False,
        reason=f"{target.name} is frozen: {window.reason}; an approver may pass --override-freeze REASON",
    )


def refusal_reason(approver: str, approvers: list[str], requester: str | None) -> str | None:
    """Why a decision by ``approver`` does not count (None when it does)."""
    if approver not in approvers:
        return f"{approver} is not an approver of this environment (approvers: {', '.join(approvers)})"
    if approver == requester:
        return f"{approver} requested this promotion and cannot approve it"
    return None
