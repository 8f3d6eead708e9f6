"""Prometheus metrics computed from strataflow's records: records in, metric families out.

Pure: a ``Snapshot`` (the latest record of each component and of each run, the environment
locks, the approvals waiting, what the working config would change) goes in; metric
families come out, and ``exposition`` renders them in the Prometheus text format.
``strataflow.state.scan`` reads the snapshot; ``strata metrics`` prints it and ``strata
metrics serve`` serves it. ``SERIES`` is the contract (docs/monitoring.md). Every series
naming an environment also carries ``sandbox`` ("true" for the sandbox's own records).

The delivery keys, per environment over a window, count apply runs (``kind ==
"orchestrate"``, ``action == "apply"``; a promotion deploys through one):

- deployment frequency: successful apply runs per day;
- change failure ratio: failed apply runs / (successful + failed) apply runs;
- time to restore: median time from the first failed apply run after a success to the next
  successful one (finish to finish);
- lead time: median time from a release's first apply anywhere (its start) to the first
  successful run in the environment that ended with it. A run without a release id is
  traced instead: inside a promotion it carries what the source last changed, back to the
  apply that first changed it; otherwise it reaches what it changed itself.
"""

from __future__ import annotations

import bisect
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from strataflow.records import ComponentRecord, RunRecord

if TYPE_CHECKING:  # prometheus-client is imported where families are made, not by every `strata` command
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

    _Family = GaugeMetricFamily | CounterMetricFamily

WINDOW = timedelta(days=30)
"""The default window of the delivery keys."""
_C, _E, _N = ("env", "cloud", "component", "sandbox"), ("env", "cloud", "sandbox"), ("env", "sandbox")
_INFO = ("env", "cloud", "component", "version", "release", "state", "sandbox")
SERIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "strata_component_info": ("gauge", "1 per component: its version, release and state.", _INFO),
    "strata_component_last_success_timestamp_seconds": ("gauge", "When the component was last applied.", _C),
    "strata_component_last_duration_seconds": ("gauge", "How long the component's last action took.", _C),
    "strata_component_drifted": ("gauge", "1 if the last drift check found drift (absent: never checked).", _C),
    "strata_component_drift_checked_timestamp_seconds": ("gauge", "When drift was last checked.", _C),
    "strata_component_pending_change": ("gauge", "1 if the working config differs from what is applied.", _C),
    "strata_runs_total": ("counter", "Finished runs by action and outcome.", (*_E[:2], "action", "status", "sandbox")),
    "strata_promotions_total": ("counter", "Finished promotions.", ("source", "target", "status", "sandbox")),
    "strata_approvals_pending": ("gauge", "Changes into the environment waiting for approval.", _N),
    "strata_approval_wait_seconds": ("gauge", "How long the oldest change waiting for approval has waited.", _N),
    "strata_environment_locked": ("gauge", "1 while a run holds the environment's lock.", _E),
    "strata_environment_lock_held_seconds": ("gauge", "How long the run holding the lock has held it.", _E),
    "strata_deployment_frequency_per_day": ("gauge", "Successful apply runs per day over the window.", _N),
    "strata_lead_time_seconds": ("gauge", "Median time from a release's first apply to reaching the environment.", _N),
    "strata_change_failure_ratio": ("gauge", "Failed apply runs / apply runs over the window.", _N),
    "strata_time_to_restore_seconds": ("gauge", "Median time from a failed apply run to the next good one.", _N),
    "strata_delivery_window_seconds": ("gauge", "The window the delivery keys are computed over.", ()),
    "strata_exporter_last_refresh_timestamp_seconds": ("gauge", "When the exporter last read the records.", ()),
    "strata_exporter_refresh_duration_seconds": ("gauge", "How long the exporter's last refresh took.", ()),
    "strata_exporter_refresh_errors_total": ("counter", "Refreshes that failed (the last good values are kept).", ()),
}
"""Every series: name -> (type, help, labels)."""


class LockState(BaseModel):
    """Whether a run holds an environment's lock right now."""

    env: str
    cloud: str
    locked: bool
    sandbox: bool = False


class WaitingApproval(BaseModel):
    """A change waiting for a decision, as its approval request says."""

    flow_run_id: str
    env: str
    cloud: str
    since: datetime
    sandbox: bool = False


class WorkingConfig(BaseModel):
    """The components of an environment's working config, and whether each differs from what is applied."""

    env: str
    cloud: str
    pending: dict[str, bool] = Field(default_factory=dict)
    sandbox: bool = False


class Snapshot(BaseModel):
    """Everything the metrics are computed from, as read at ``taken_at``."""

    taken_at: datetime
    components: list[ComponentRecord] = Field(default_factory=list, description="The latest record of each component.")
    runs: list[RunRecord] = Field(default_factory=list, description="The latest record of each run.")
    locks: list[LockState] = Field(default_factory=list)
    requests: list[WaitingApproval] = Field(default_factory=list, description="Approval requests still waiting.")
    paused: list[str] | None = Field(default=None, description="Flow runs paused right now (None: trust the records).")
    working: list[WorkingConfig] = Field(default_factory=list)


def _family(name: str) -> _Family:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    kind, text, labels = SERIES[name]
    return (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(name, text, labels=list(labels))


def sandboxed(record: Any) -> bool:
    """Whether a record was made on the sandbox (records written before that field say no)."""
    return bool(getattr(record, "sandbox", False))


def _flag(value: bool) -> str:
    return "true" if value else "false"


def run_release(run: RunRecord) -> str:
    """The release a run ended with ("" when it names none)."""
    value = getattr(run, "release", None) or run.detail.get("release")
    return value if isinstance(value, str) else ""


# --- what the records say ---------------------------------------------------------------------


def pending_approvals(snapshot: Snapshot) -> list[WaitingApproval]:
    """Changes waiting for approval, oldest first: approval requests, and promotions whose record says so.

    One whose flow run is no longer paused (decided, timed out, crashed) is not waiting.
    """
    found = {r.flow_run_id: r for r in snapshot.requests}
    for run in snapshot.runs:
        if run.kind == "promote" and run.status == "awaiting approval" and run.flow_run_id and run.started_at:
            place = {"env": run.env, "cloud": run.cloud, "sandbox": sandboxed(run)}
            found.setdefault(
                run.flow_run_id, WaitingApproval(flow_run_id=run.flow_run_id, since=run.started_at, **place)
            )
    paused = None if snapshot.paused is None else set(snapshot.paused)
    return sorted((w for w in found.values() if paused is None or w.flow_run_id in paused), key=lambda w: w.since)


def lock_holders(snapshot: Snapshot) -> dict[tuple[str, str, bool], RunRecord | None]:
    """Each locked (env, cloud, sandbox), with the run holding it (the latest apply still running) if known."""
    held: dict[tuple[str, str, bool], RunRecord | None] = {
        (lock.env, lock.cloud, lock.sandbox): None for lock in snapshot.locks if lock.locked
    }
    for run in snapshot.runs:
        key = (run.env, run.cloud, sandboxed(run))
        if key in held and run.kind == "orchestrate" and run.status == "running" and run.started_at is not None:
            current = held[key]
            if current is None or (current.started_at is not None and run.started_at > current.started_at):
                held[key] = run
    return held


def _apply_runs(runs: Iterable[RunRecord]) -> list[RunRecord]:
    """Finished apply runs that succeeded or failed, in the order they finished."""
    found = [
        r
        for r in runs
        if r.kind == "orchestrate" and r.action == "apply" and r.finished_at and r.status in ("succeeded", "failed")
    ]
    return sorted(found, key=lambda r: r.finished_at or datetime.min)


def _changed(run: RunRecord) -> bool:
    return run.status == "succeeded" and "succeeded" in run.components.values()


class Delivery(BaseModel):
    """The four delivery keys of one environment (None: nothing to compute them from in the window)."""

    frequency_per_day: float
    lead_time_s: float | None
    change_failure_ratio: float | None
    time_to_restore_s: float | None


def delivery(runs: list[RunRecord], env: str, now: datetime, window: timedelta = WINDOW) -> Delivery:
    """The delivery keys of ``env`` over ``window`` before ``now`` (``runs``: the latest record of each run)."""
    start = now - window
    applies = _apply_runs(runs)
    mine = [r for r in applies if r.env == env and r.finished_at and start <= r.finished_at <= now]
    good = sum(1 for r in mine if r.status == "succeeded")
    restores: list[float] = []
    for cloud in sorted({r.cloud for r in applies if r.env == env}):
        broken: datetime | None = None
        for run in (r for r in applies if r.env == env and r.cloud == cloud):
            assert run.finished_at is not None
            if run.status == "failed" and broken is None:
                broken = run.finished_at
            elif run.status == "succeeded" and broken is not None:
                if start <= run.finished_at <= now:
                    restores.append((run.finished_at - broken).total_seconds())
                broken = None
    leads = _lead_times(runs, applies, env, start, now)
    return Delivery(
        frequency_per_day=good / (window.total_seconds() / 86400.0),
        lead_time_s=statistics.median(leads) if leads else None,
        change_failure_ratio=(len(mine) - good) / len(mine) if mine else None,
        time_to_restore_s=statistics.median(restores) if restores else None,
    )


def _lead_times(
    runs: list[RunRecord], applies: list[RunRecord], env: str, start: datetime, now: datetime
) -> list[float]:
    first_apply: dict[str, datetime] = {}
    for run in sorted(applies, key=lambda r: r.started_at or datetime.max):
        if run_release(run) and run.started_at:
            first_apply.setdefault(run_release(run), run.started_at)
    reached: set[str] = set()
    trace = _Tracer(runs, applies)
    found = []
    for run in applies:
        release = run_release(run)
        if run.env != env or run.status != "succeeded" or run.finished_at is None or release in reached:
            continue
        if release:
            reached.add(release)
            began: datetime | None = first_apply[release]
        elif _changed(run):
            began = trace(run)
        else:
            continue  # it changed nothing and names no release: nothing new reached the environment
        if began is not None and start <= run.finished_at <= now:
            found.append(max(0.0, (run.finished_at - began).total_seconds()))
    return found


def _place(record: RunRecord | ComponentRecord) -> tuple[str, str, bool]:
    return record.env, record.cloud, sandboxed(record)


class _Tracer:
    """When what a run deployed was first applied: through promotions, back to the apply that changed it.

    A promotion's deployment names its source (``detail.how``, ``detail.source``); in older
    records it is the run inside a promotion's span (an environment's promotions never overlap).
    """

    def __init__(self, runs: list[RunRecord], applies: list[RunRecord]) -> None:
        self._promotions: dict[tuple[str, str, bool], list[tuple[datetime, RunRecord]]] = {}
        for run in runs:
            if run.kind == "promote" and run.started_at and run.finished_at and run.detail.get("source"):
                self._promotions.setdefault(_place(run), []).append((run.started_at, run))
        self._changes: dict[tuple[str, str, bool], list[tuple[datetime, RunRecord]]] = {}
        for run in applies:
            if _changed(run) and run.finished_at:
                self._changes.setdefault(_place(run), []).append((run.finished_at, run))
        for found in [*self._promotions.values(), *self._changes.values()]:
            found.sort(key=lambda pair: pair[0])

    def __call__(self, run: RunRecord, depth: int = 0) -> datetime | None:
        assert run.started_at is not None and run.finished_at is not None
        source, since = run.detail.get("source"), run.started_at  # a promotion's deployment names its source
        if run.detail.get("how") != "promotion" or not source:
            promotion = _last_before(self._promotions.get(_place(run), []), run.started_at)
            if promotion is None or promotion.finished_at is None or run.finished_at > promotion.finished_at:
                return run.started_at
            source, since = promotion.detail["source"], promotion.started_at or run.started_at
        if depth > 20:
            return since
        change = _last_before(self._changes.get((str(source), run.cloud, sandboxed(run)), []), since)
        return self(change, depth + 1) if change is not None else since


def _last_before(timed: list[tuple[datetime, RunRecord]], moment: datetime) -> RunRecord | None:
    """The last of ``timed`` (sorted by time) at or before ``moment``."""
    at = bisect.bisect_right(timed, moment, key=lambda pair: pair[0]) - 1
    return timed[at][1] if at >= 0 else None


# --- the families -------------------------------------------------------------------------------


def families(
    snapshot: Snapshot, window: timedelta = WINDOW, env: str | None = None, sandbox: bool | None = None
) -> list[Metric]:
    """Every metric family of ``snapshot``: of environment ``env`` only, of the sandbox or not only, when given."""
    out = {name: _family(name) for name in SERIES if not name.startswith("strata_exporter_")}

    def mine(name: str, on_sandbox: bool) -> bool:
        return (env is None or name == env) and (sandbox is None or on_sandbox == sandbox)

    now = snapshot.taken_at
    runs = [r for r in snapshot.runs if mine(r.env, sandboxed(r))]
    _components(snapshot, out, mine)
    places = {_place(r) for r in runs} | {_place(c) for c in snapshot.components}
    places |= {(x.env, x.cloud, x.sandbox) for x in snapshot.locks}
    places |= {(w.env, w.cloud, w.sandbox) for w in snapshot.working}
    places = {p for p in places if mine(p[0], p[2]) and p[1] != "-"}  # "-": refused before its cloud was known
    envs = sorted({(e, s) for e, _, s in places} or ({(env, bool(sandbox))} if env else set()))

    for (e, c, action, status, s), count in sorted(
        Counter((r.env, r.cloud, r.action, r.status, sandboxed(r)) for r in runs if r.finished_at).items()
    ):
        out["strata_runs_total"].add_metric([e, c, action, status, _flag(s)], count)
    promotions = Counter(
        (str(r.detail.get("source") or ""), r.env, r.status, sandboxed(r))
        for r in runs
        if r.kind == "promote" and r.action == "promote" and r.finished_at
    )
    for (source, target, status, s), count in sorted(promotions.items()):
        out["strata_promotions_total"].add_metric([source, target, status, _flag(s)], count)

    waiting = pending_approvals(snapshot)
    holders = lock_holders(snapshot)
    for e, s in envs:
        here = [w for w in waiting if (w.env, w.sandbox) == (e, s)]
        out["strata_approvals_pending"].add_metric([e, _flag(s)], len(here))
        oldest = max(0.0, (now - here[0].since).total_seconds()) if here else 0.0
        out["strata_approval_wait_seconds"].add_metric([e, _flag(s)], oldest)
        keys = delivery([r for r in snapshot.runs if sandboxed(r) == s], e, now, window)
        out["strata_deployment_frequency_per_day"].add_metric([e, _flag(s)], keys.frequency_per_day)
        for series, value in (
            ("strata_lead_time_seconds", keys.lead_time_s),
            ("strata_change_failure_ratio", keys.change_failure_ratio),
            ("strata_time_to_restore_seconds", keys.time_to_restore_s),
        ):
            if value is not None:
                out[series].add_metric([e, _flag(s)], value)
    for e, c, s in sorted(places):
        out["strata_environment_locked"].add_metric([e, c, _flag(s)], 1 if (e, c, s) in holders else 0)
        holder = holders.get((e, c, s))
        if holder is not None and holder.started_at is not None:
            held = (now - holder.started_at).total_seconds()
            out["strata_environment_lock_held_seconds"].add_metric([e, c, _flag(s)], held)
    out["strata_delivery_window_seconds"].add_metric([], window.total_seconds())
    return list(out.values())


def _components(snapshot: Snapshot, out: dict[str, _Family], mine: Callable[[str, bool], bool]) -> None:
    """The per-component series: each record's, and those of a working config's components never run."""
    seen: set[tuple[str, str, str, bool]] = set()
    for record in sorted(snapshot.components, key=lambda r: (r.env, r.cloud, r.component, sandboxed(r))):
        if not mine(record.env, sandboxed(record)):
            continue
        seen.add((record.env, record.cloud, record.component, sandboxed(record)))
        labels = [record.env, record.cloud, record.component, _flag(sandboxed(record))]
        applied = record.applied
        version = (applied.version or "") if applied else ""
        release = str(getattr(applied, "release", None) or "")
        out["strata_component_info"].add_metric([*labels[:3], version, release, record.state, labels[3]], 1)
        if applied is not None:
            out["strata_component_last_success_timestamp_seconds"].add_metric(labels, applied.applied_at.timestamp())
        duration = _last_duration(record)
        if duration is not None:
            out["strata_component_last_duration_seconds"].add_metric(labels, duration)
        if record.drift is not None and record.drift.supported:
            out["strata_component_drifted"].add_metric(labels, 1 if record.drift.drifted else 0)
            checked = record.drift.checked_at.timestamp()
            out["strata_component_drift_checked_timestamp_seconds"].add_metric(labels, checked)
    for working in sorted(snapshot.working, key=lambda w: (w.env, w.cloud, w.sandbox)):
        if not mine(working.env, working.sandbox):
            continue
        for component, differs in sorted(working.pending.items()):
            labels = [working.env, working.cloud, component, _flag(working.sandbox)]
            if (working.env, working.cloud, component, working.sandbox) not in seen:
                out["strata_component_info"].add_metric([*labels[:3], "", "", "never", labels[3]], 1)
            out["strata_component_pending_change"].add_metric(labels, 1 if differs else 0)


def _last_duration(record: ComponentRecord) -> float | None:
    """The measured duration of a successful apply, else the record's start to finish."""
    if record.action == "apply" and record.status == "succeeded" and record.durations:
        return record.durations[-1]
    if record.started_at and record.finished_at:
        return max(0.0, (record.finished_at - record.started_at).total_seconds())
    return None


def exporter_families(refreshed_at: datetime | None, duration_s: float | None, errors: int) -> list[Metric]:
    """The exporter's own series: when it last read the records, how long that took, how often it failed."""
    out = {name: _family(name) for name in SERIES if name.startswith("strata_exporter_")}
    if refreshed_at is not None:
        out["strata_exporter_last_refresh_timestamp_seconds"].add_metric([], refreshed_at.timestamp())
    if duration_s is not None:
        out["strata_exporter_refresh_duration_seconds"].add_metric([], duration_s)
    out["strata_exporter_refresh_errors_total"].add_metric([], errors)
    return list(out.values())


def exposition(found: list[Metric]) -> str:
    """``found`` in the Prometheus text format (what a scrape of /metrics answers)."""
    from prometheus_client.exposition import generate_latest
    from prometheus_client.registry import Collector, CollectorRegistry

    class Fixed(Collector):
        def collect(self) -> Iterator[Metric]:
            return iter(found)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed())
    return generate_latest(registry).decode()


def names(found: Iterable[Metric]) -> set[str]:
    """The sample names in ``found`` (``strata_runs_total``, ...)."""
    return {sample.name for family in found for sample in family.samples}


__all__ = [
    "SERIES",
    "WINDOW",
    "Delivery",
    "LockState",
    "Snapshot",
    "WaitingApproval",
    "WorkingConfig",
    "delivery",
    "exporter_families",
    "exposition",
    "families",
    "lock_holders",
    "names",
    "pending_approvals",
    "run_release",
    "sandboxed",
]
