"""Figure 2: orchestration overhead per component: the full stack vs a plain thread pool."""

from __future__ import annotations

import concurrent.futures
import subprocess
import time
from pathlib import Path
from typing import Any

from bench import synth
from bench.harness import Harness
from bench.measure import median, order_violations, run_flow
from bench.results import Results
from strataflow.graph import Graph, Scheduler


def thread_pool(edges: dict[str, list[str]], commands: dict[str, str], cwd: Path, cap: int) -> dict[str, float]:
    """The same commands via subprocess on a ThreadPoolExecutor, in dependency order, ``cap`` at once.

    Same ready-set policy as the flow (``strataflow.graph.Scheduler``), none of Prefect.
    """
    graph = Graph.of(edges)
    scheduler = Scheduler(graph, cap, graph.priorities())
    starts: list[float] = []
    ends: list[float] = []

    def run(name: str) -> str:
        starts.append(time.perf_counter())
        subprocess.run(
            ["/bin/sh", "-c", commands[name]], cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, check=True
        )
        ends.append(time.perf_counter())
        return name

    clock = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=cap) as pool:
        in_flight: set[concurrent.futures.Future[str]] = set()
        while not scheduler.finished:
            in_flight |= {pool.submit(run, name) for name in scheduler.start()}
            if not in_flight:
                break
            done, in_flight = concurrent.futures.wait(in_flight, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                scheduler.finish(future.result(), True)
    wall = time.perf_counter() - clock
    return {"wall_s": wall, "makespan_s": max(ends) - min(starts)}


def overhead(h: Harness, results: Results, sizes: tuple[int, ...], cap: int, repeats_at_100: int) -> None:
    rows: list[dict[str, Any]] = []
    for n in sizes:
        dag = synth.noop(n)
        commands = synth.sleep_commands(dag)
        baselines = [thread_pool(dag.edges, commands, h.work, cap) for _ in range(3)]
        base_wall = median([b["wall_s"] for b in baselines])
        base_makespan = median([b["makespan_s"] for b in baselines])
        for rep in range(repeats_at_100 if n == 100 else 1):
            # a fresh environment each time: the first apply of n no-op components
            config, env = synth.write_platform(h.work / f"noop-{n}-{rep}", dag.edges, commands)
            results.progress(f"overhead: {n} no-op components, run {rep + 1}")
            run = run_flow(h, config, env, max_parallel=cap)
            if run.status != "succeeded" or order_violations(run.report, dag.edges):
                results.problems.append(
                    f"overhead {n}: run {run.status}, order violations {order_violations(run.report, dag.edges)}"
                )
            fig = run.figures()
            rows.append(
                {
                    "components": n,
                    "cap": cap,
                    "repeat": rep + 1,
                    "thread_pool_wall_s": round(base_wall, 3),
                    "thread_pool_makespan_s": round(base_makespan, 3),
                    **fig,
                    "overhead_total_s": round(run.wall_s - base_wall, 3),
                    "overhead_per_component_ms": round(1000 * (run.wall_s - base_wall) / n, 1),
                    "makespan_overhead_per_component_ms": round(1000 * (run.makespan_s - base_makespan) / n, 1),
                    "server_cpu_per_component_ms": round(
                        1000 * fig.get("server_cpu_incl_after_s", run.server_cpu_s) / n, 1
                    ),
                    "client_cpu_per_component_ms": round(1000 * run.client_cpu_s / n, 1),
                }
            )
    ablation = _without_state_records(h, results, 100, cap) if 100 in sizes else None
    results.sections["overhead"] = {"cap": cap, "runs": rows, "without_state_records": ablation}
    for n in sizes:
        mine = [r for r in rows if r["components"] == n]
        per = median([r["overhead_per_component_ms"] for r in mine])
        results.figure(
            "overhead",
            f"{n} no-op comps, cap {cap}: overhead per component",
            per,
            "ms",
            detail=(
                f"run {median([r['wall_s'] for r in mine]):.2f}s vs thread pool {mine[0]['thread_pool_wall_s']:.2f}s "
                f"(×{median([r['wall_s'] for r in mine]) / max(1e-9, mine[0]['thread_pool_wall_s']):.0f}); "
                f"in-flow part {median([r['makespan_overhead_per_component_ms'] for r in mine]):.0f} ms/comp; "
                f"server CPU {median([r['server_cpu_per_component_ms'] for r in mine]):.0f} ms/comp"
            ),
        )
        if n == 100:
            results.target(
                "T4",
                "orchestration overhead ≤ 50 ms per component at 100 components",
                per,
                "<=",
                50.0,
                "ms",
                note=f"median of {len(mine)} runs, cap {cap}",
            )
            if ablation:
                saved = median([r["wall_s"] for r in mine]) - ablation["wall_s"]
                results.figure(
                    "overhead",
                    "100 no-op comps: share of the state-record write",
                    1000 * saved / n,
                    "ms",
                    detail=f"same run with write_component stubbed out: {ablation['wall_s']:.2f}s, "
                    f"server CPU {1000 * ablation.get('server_cpu_incl_after_s', 0) / n:.0f} ms/comp "
                    "(diagnostic only)",
                )


def _without_state_records(h: Harness, results: Results, n: int, cap: int) -> dict[str, Any]:
    """Diagnostic: the same run with the synchronous state-record write stubbed out, to attribute the overhead."""
    dag = synth.noop(n)
    config, env = synth.write_platform(h.work / f"noop-{n}-norecord", dag.edges, synth.sleep_commands(dag))
    results.progress(f"overhead: {n} no-op components, state-record write stubbed out (diagnostic)")
    return run_flow(h, config, env, max_parallel=cap, stub_records=True).figures()
