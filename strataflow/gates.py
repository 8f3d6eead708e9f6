"""Promotion gates: each one passes or fails with its reason, before any approval.

Pure: the promotion flow reads records and lock state, then asks these functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from cronsim import CronSim
from pydantic import BaseModel

from strataflow.config import Environment, FreezeWindow
from strataflow.records import OK_STATUSES, ComponentRecord


class Gate(BaseModel):
    name: str
    passed: bool
    reason: str
    component: str | None = None

    def line(self) -> str:
        mark = "pass" if self.passed else "FAIL"
        return f"[{mark}] {self.name}: {self.reason}"

    def markdown(self) -> str:
        """A report line that reads right with or without an emoji font: the word, then the icon."""
        mark = "**PASS** ✅" if self.passed else "**FAIL** ❌"
        return f"- {mark} {self.name}" + (f" ({self.component})" if self.component else "") + f": {self.reason}"


def promote_from(source: Environment, target: Environment) -> Gate:
    if target.promote_from == source.name:
        return Gate(name="promote_from", passed=True, reason=f"{target.name} receives promotions from {source.name}")
    expected = target.promote_from or "nowhere"
    return Gate(
        name="promote_from",
        passed=False,
        reason=f"{target.name} receives promotions from {expected}, not {source.name} (promote_from in its environment file)",
    )


def source_ok(
    source: str,
    names: list[str],
    records: Mapping[str, ComponentRecord],
    sandbox_records: Mapping[str, ComponentRecord] | None = None,
) -> list[Gate]:
    """Each component's latest run in the source is a successful apply of a known bundle (what is promoted).

    ``sandbox_records``: the source's records on the sandbox, when promoting to a real cloud: a
    component verified only there is refused, naming the sandbox.
    """
    gates = []
    for name in names:
        record = records.get(name)
        where = f"{name} in {source}"
        if record is None or record.applied is None or record.applied.bundle is None:
            on_sandbox = (sandbox_records or {}).get(name)
            if on_sandbox is not None and on_sandbox.applied is not None:
                reason = (
                    f"{where} was applied only on the sandbox (strata apply {source} --sandbox), never on the cloud; "
                    f"a promotion to a real cloud promotes what the cloud ran: apply {source} there first"
                )
            elif record is not None and record.applied is not None:
                reason = f"{where} was applied before releases were recorded; apply {source} again first"
            else:
                reason = f"{where} was never applied; apply {source} first"
            gates.append(Gate(name="source_verified", passed=False, component=name, reason=reason))
            continue
        if record.state != "applied" or record.status not in OK_STATUSES:
            why = f"its latest {record.action} {record.status}" + (f": {record.error}" if record.error else "")
            gates.append(Gate(name="source_verified", passed=False, component=name, reason=f"{where}: {why}"))
            continue
        applied = record.applied
        gates.append(
            Gate(
                name="source_verified",
                passed=True,
                component=name,
                reason=f"{where} runs {applied.version or 'its config'} (bundle {(applied.bundle or '')[:12]})",
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
        if actor in target.approval.names:
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
