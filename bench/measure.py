"""Running a flow in-process and reading figures off its run report."""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.harness import Harness, children_cpu, self_cpu


@dataclass
class Run:
    """One flow run: its report, its wall time in this process, and the CPU it cost."""

    report: dict[str, Any]
    wall_s: float
    client_cpu_s: float
    server_cpu_s: float
    children_cpu_s: float
    settle_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return str(self.report.get("status"))

    @property
    def makespan_s(self) -> float:
        return makespan(self.report)

    def figures(self) -> dict[str, Any]:
        spans_ = spans(self.report)
        first = min((s for s, _ in spans_.values()), default=None)
        last = max((e for _, e in spans_.values()), default=None)
        run_start = _time(self.report.get("started_at"))
        run_end = _time(self.report.get("finished_at"))
        out: dict[str, Any] = {
            "status": self.status,
            "makespan_s": round(self.makespan_s, 3),
            "wall_s": round(self.wall_s, 3),
            "client_cpu_s": round(self.client_cpu_s, 2),
            "server_cpu_s": round(self.server_cpu_s, 2),
            "commands_cpu_s": round(self.children_cpu_s, 2),
            "max_overlap": max_overlap(self.report),
        }
        if first and run_start:
            out["flow_start_to_first_component_s"] = round((first - run_start).total_seconds(), 3)
        if last and run_end:
            out["last_component_to_flow_end_s"] = round((run_end - last).total_seconds(), 3)
        out.update(self.extra)
        return out


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def spans(report: Mapping[str, Any]) -> dict[str, tuple[datetime, datetime]]:
    """Each component's own start and end, measured where it ran (the run report's times)."""
    return {
        name: (datetime.fromisoformat(c["started_at"]), datetime.fromisoformat(c["finished_at"]))
        for name, c in report["components"].items()
        if c.get("started_at") and c.get("finished_at")
    }


def makespan(report: Mapping[str, Any]) -> float:
    times = list(spans(report).values())
    if not times:
        return 0.0
    return (max(e for _, e in times) - min(s for s, _ in times)).total_seconds()


def max_overlap(report: Mapping[str, Any]) -> int:
    events = sorted([(s, 1) for s, _ in spans(report).values()] + [(e, -1) for _, e in spans(report).values()])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


def order_violations(report: Mapping[str, Any], edges: Mapping[str, list[str]]) -> int:
    """Components that started before one of their upstreams finished (must be 0)."""
    times = spans(report)
    return sum(
        1
        for name, deps in edges.items()
        for dep in deps
        if name in times and dep in times and times[name][0] < times[dep][1]
    )


def dispatch_latency(report: Mapping[str, Any], edges: Mapping[str, list[str]]) -> dict[str, float]:
    """Seconds from a component's last upstream finishing to its own start (uncapped runs: pure overhead)."""
    times = spans(report)
    gaps = [
        (times[name][0] - max(times[d][1] for d in deps)).total_seconds()
        for name, deps in edges.items()
        if deps and name in times and all(d in times for d in deps)
    ]
    if not gaps:
        return {}
    gaps.sort()
    return {
        "median_ms": round(1000 * statistics.median(gaps), 1),
        "p90_ms": round(1000 * gaps[int(0.9 * (len(gaps) - 1))], 1),
        "max_ms": round(1000 * gaps[-1], 1),
    }


@contextlib.contextmanager
def record_writes(stub: bool = False) -> Iterator[list[float]]:
    """Time every ``strataflow.state.write_component`` call (the task's synchronous state-record write).

    ``stub``: skip the write altogether (a diagnostic, to attribute overhead; never a product setting).
    """
    from strataflow import state

    original = state.write_component
    seconds: list[float] = []

    def timed(record: Any, task_run_id: str | None = None) -> None:
        clock = time.perf_counter()
        if not stub:
            original(record, task_run_id=task_run_id)
        seconds.append(time.perf_counter() - clock)

    state.write_component = timed  # type: ignore[assignment]
    try:
        yield seconds
    finally:
        state.write_component = original  # type: ignore[assignment]


def latency(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {}
    ordered = sorted(seconds)
    return {
        "count": len(ordered),
        "median_ms": round(1000 * statistics.median(ordered), 1),
        "p90_ms": round(1000 * ordered[int(0.9 * (len(ordered) - 1))], 1),
        "max_ms": round(1000 * ordered[-1], 1),
    }


def run_flow(
    harness: Harness, config: Path, env: str, settle: bool = True, stub_records: bool = False, **params: Any
) -> Run:
    """Run the orchestrator in-process (as `strata apply` does) and measure it."""
    from flows.orchestrate import orchestrate

    waited = harness.settle() if settle else 0.0
    cpu0, srv0, kids0 = self_cpu(), harness.server_cpu(), children_cpu()
    clock = time.perf_counter()
    with record_writes(stub=stub_records) as writes:
        state = orchestrate(env=env, config_dir=str(config), return_state=True, **params)
    wall = time.perf_counter() - clock
    cpu1, srv1, kids1 = self_cpu(), harness.server_cpu(), children_cpu()
    report = state.result(raise_on_failure=False)
    if not isinstance(report, dict):
        raise RuntimeError(f"the flow ended {state.type.value} without a report: {report!r}")
    run = Run(report, wall, cpu1 - cpu0, srv1 - srv0, kids1 - kids0, waited)
    if not stub_records:
        run.extra["record_write"] = latency(writes)
    if settle:
        # what the server spends on this run after the flow returned (events, logs) counts too
        run.extra["server_busy_after_s"] = round(harness.settle(), 2)
        run.extra["server_cpu_incl_after_s"] = round(harness.server_cpu() - srv0, 2)
    return run


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
