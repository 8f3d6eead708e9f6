"""Figure 4: the sample platform (config/) on the sandbox, through `strata` as a user runs it."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bench.harness import ROOT, Harness, proc_cpu
from bench.measure import makespan
from bench.results import Results

ENV = "dev"


def _span(report: dict[str, Any]) -> float:
    """The flow's own time: report started_at to finished_at."""
    end, start = datetime.fromisoformat(report["finished_at"]), datetime.fromisoformat(report["started_at"])
    return (end - start).total_seconds()


def _sandbox_pid(h: Harness) -> int | None:
    try:
        return int(json.loads((h.home / "sandbox-aws.json").read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def _run(h: Harness, results: Results, label: str, *extra: str, action: str = "apply") -> dict[str, Any]:
    """One `strata ACTION dev --sandbox --json ...` process: its wall time, its report, the CPU it caused."""
    results.progress(f"sample platform: {label}")
    h.settle()
    sandbox = _sandbox_pid(h)
    srv0, box0 = h.server_cpu(), proc_cpu(sandbox) if sandbox else 0.0
    proc, wall = h.strata(action, ENV, "--sandbox", "--config", str(ROOT / "config"), "--json", *extra)
    sandbox = sandbox or _sandbox_pid(h)
    entry: dict[str, Any] = {
        "label": label,
        "args": [action, *extra],
        "exit_code": proc.returncode,
        "wall_s": round(wall, 3),
        "server_cpu_s": round(h.server_cpu() - srv0, 2),
        "sandbox_cpu_s": round(proc_cpu(sandbox) - box0, 2) if sandbox else None,
    }
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        results.problems.append(f"sample {label}: exit {proc.returncode}, no report: {proc.stderr.strip()[-400:]}")
        return entry
    statuses: dict[str, int] = {}
    for c in report["components"].values():
        statuses[c["status"]] = statuses.get(c["status"], 0) + 1
    entry.update(
        {
            "status": report["status"],
            "flow_s": round(_span(report), 3),
            "makespan_s": round(makespan(report), 3),
            "component_s_total": round(sum(c["duration_s"] or 0.0 for c in report["components"].values()), 3),
            "statuses": statuses,
            "durations": {n: c["duration_s"] for n, c in report["components"].items()},
        }
    )
    if proc.returncode != 0 or report["status"] != "succeeded":
        failed = "; ".join(f"{n}: {c['error']}" for n, c in report["components"].items() if c["status"] == "failed")
        results.problems.append(f"sample {label}: exit {proc.returncode}, {report['status']}: {failed}")
    return entry


def sample(h: Harness, results: Results) -> None:
    graph, _ = h.strata("graph", ENV, "--config", str(ROOT / "config"), "--json")
    if graph.returncode != 0:
        raise RuntimeError(f"strata graph {ENV} failed: {graph.stderr.strip()}")
    phases: list[list[str]] = json.loads(graph.stdout)["phases"]
    runs: dict[str, Any] = {}
    runs["first"] = _run(h, results, "first apply (cold: starts the sandbox)")
    runs["unchanged"] = _run(h, results, "unchanged re-run")
    runs["destroy1"] = _run(h, results, "destroy", action="destroy")
    runs["parallel"] = _run(h, results, "apply (warm sandbox, default --max-parallel 8)")
    runs["destroy2"] = _run(h, results, "destroy", action="destroy")
    runs["sequential"] = _run(h, results, "apply --sequential", "--sequential")
    runs["destroy3"] = _run(h, results, "destroy", action="destroy")
    phase_runs = [
        _run(h, results, f"phase {i}: apply --select {','.join(p)}", "--select", ",".join(p))
        for i, p in enumerate(phases)
    ]
    runs["phases"] = phase_runs
    total = {
        key: round(sum(r.get(key) or 0.0 for r in phase_runs), 3)
        for key in ("wall_s", "flow_s", "makespan_s", "server_cpu_s", "sandbox_cpu_s", "component_s_total")
    }
    results.sections["sample"] = {"env": ENV, "phases": phases, "runs": runs, "phases_total": total}

    first, par, seq, unchanged = runs["first"], runs["parallel"], runs["sequential"], runs["unchanged"]
    if any("flow_s" not in r for r in (first, par, seq, unchanged)):
        return
    results.figure(
        "sample",
        "apply, first (cold sandbox): wall",
        first["wall_s"],
        "s",
        detail=f"flow {first['flow_s']:.2f}s; the wall also starts the process and the sandbox",
    )
    results.figure(
        "sample",
        "apply (warm sandbox): wall",
        par["wall_s"],
        "s",
        detail=f"flow {par['flow_s']:.2f}s; components busy {par['component_s_total']:.2f}s in all, "
        f"sandbox CPU {par['sandbox_cpu_s']}s",
    )
    results.figure(
        "sample",
        "speedup over --sequential (flow time)",
        seq["flow_s"] / par["flow_s"],
        "×",
        detail=f"sequential flow {seq['flow_s']:.2f}s (components {seq['component_s_total']:.2f}s), "
        f"wall {seq['wall_s']:.2f}s: wall ratio ×{seq['wall_s'] / par['wall_s']:.2f}",
    )
    if par.get("sandbox_cpu_s") is not None:
        results.figure(
            "sample",
            "sandbox (moto) CPU / flow time, warm apply",
            par["sandbox_cpu_s"] / par["flow_s"],
            "×",
            detail=f"sequential {seq['sandbox_cpu_s']}s / {seq['flow_s']:.2f}s: near 1 means the one-process "
            "emulated cloud, not the scheduler, bounds the apply",
        )
    results.figure(
        "sample",
        f"speedup over phases, one --select run per phase ({len(phases)})",
        total["flow_s"] / par["flow_s"],
        "×",
        detail=f"phases flow {total['flow_s']:.2f}s, wall {total['wall_s']:.2f}s: "
        f"wall ratio ×{total['wall_s'] / par['wall_s']:.2f}",
    )
    results.figure(
        "sample",
        "unchanged re-run: wall",
        unchanged["wall_s"],
        "s",
        detail=f"flow {unchanged['flow_s']:.2f}s; {unchanged['statuses']}",
    )
