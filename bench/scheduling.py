"""Figure 1: scheduling quality on synthetic graphs, and what run history buys under a cap."""

from __future__ import annotations

import time
from typing import Any

from bench import synth
from bench.harness import Harness, children_cpu, self_cpu
from bench.measure import Run, dispatch_latency, median, order_violations, run_flow
from bench.results import Results
from strataflow.graph import MAX_PARALLEL  # "no cap": the most a run keeps in flight


def _check(run: Run, edges: dict[str, list[str]], cap: int | None, where: str) -> list[str]:
    problems = []
    if run.status != "succeeded":
        problems.append(f"{where}: run {run.status}")
    if (bad := order_violations(run.report, edges)) > 0:
        problems.append(f"{where}: {bad} components started before an upstream finished")
    if cap is not None and run.figures()["max_overlap"] > cap:
        problems.append(f"{where}: {run.figures()['max_overlap']} components ran at once with cap {cap}")
    return problems


def quality(
    h: Harness, results: Results, sizes: tuple[int, ...], seeds: tuple[int, ...], caps: tuple[int, ...], scale: float
) -> None:
    rows: list[dict[str, Any]] = []
    for n in sizes:
        for seed in seeds:
            dag = synth.heavy_tailed(n, seed, scale)
            config, env = synth.write_platform(h.work / f"sched-{n}-{seed}", dag.edges, synth.sleep_commands(dag))
            cp = synth.graph_of(dag).critical_path(dag.durations)
            work = synth.sequential(dag)
            # the uncapped run comes first, in a fresh environment: no history; the capped runs
            # that follow re-run the same environment (force) and so have history
            for cap in (None, *caps):
                where = f"{n} components, seed {seed}, cap {cap or 'none'}"
                results.progress(f"scheduling: {where}")
                run = run_flow(h, config, env, max_parallel=cap or min(n, MAX_PARALLEL), force=True)
                results.problems.extend(_check(run, dag.edges, cap, where))
                bound = synth.bound(dag, cap)
                phases = synth.phase_barrier(dag, cap)
                ideal = synth.ideal(dag, cap or MAX_PARALLEL)
                row = {
                    "components": n,
                    "seed": seed,
                    "cap": cap,
                    "history": cap is not None,
                    "critical_path_s": round(cp, 3),
                    "work_s": round(work, 3),
                    "bound_s": round(bound, 3),
                    "ideal_list_schedule_s": round(ideal, 3),
                    "phase_barrier_s": round(phases, 3),
                    "sequential_s": round(work, 3),
                    **run.figures(),
                }
                row["makespan_over_bound"] = round(run.makespan_s / bound, 3)
                row["wall_over_bound"] = round(run.wall_s / bound, 3)
                row["makespan_over_ideal"] = round(run.makespan_s / ideal, 3)
                row["speedup_vs_phases"] = round(phases / run.makespan_s, 2)
                row["speedup_vs_sequential"] = round(work / run.makespan_s, 2)
                if cap is None:
                    row["dispatch_latency"] = dispatch_latency(run.report, dag.edges)
                rows.append(row)
    results.sections["scheduling"] = {"time_scale": scale, "runs": rows}

    for n in sizes:
        nocap = [r for r in rows if r["components"] == n and r["cap"] is None]
        value = median([r["makespan_over_bound"] for r in nocap])
        results.figure(
            "scheduling",
            f"{n} comps, no cap: median makespan / critical path",
            value,
            "×",
            detail=f"wall/CP {median([r['wall_over_bound'] for r in nocap]):.2f}; "
            f"×{median([r['speedup_vs_phases'] for r in nocap]):.2f} vs phases, "
            f"×{median([r['speedup_vs_sequential'] for r in nocap]):.2f} vs sequential; "
            f"dispatch latency median {median([r['dispatch_latency'].get('median_ms', 0) for r in nocap]):.0f} ms, "
            f"p90 {median([r['dispatch_latency'].get('p90_ms', 0) for r in nocap]):.0f} ms",
        )
        if n == 200:
            results.target("T1", "no cap, 200 comps: median makespan ≤ 1.10 × critical path", value, "<=", 1.10, "×")
        for cap in caps:
            capped = [r for r in rows if r["components"] == n and r["cap"] == cap]
            worst = max(r["makespan_over_bound"] for r in capped)
            results.figure(
                "scheduling",
                f"{n} comps, cap {cap}: worst makespan / max(CP, work/cap)",
                worst,
                "×",
                detail=f"median {median([r['makespan_over_bound'] for r in capped]):.2f}, "
                f"vs ideal list schedule {median([r['makespan_over_ideal'] for r in capped]):.2f}; "
                f"×{median([r['speedup_vs_phases'] for r in capped]):.2f} vs phases, "
                f"×{median([r['speedup_vs_sequential'] for r in capped]):.2f} vs sequential",
            )
    capped_all = [r for r in rows if r["cap"] is not None]
    if capped_all:
        worst_row = max(capped_all, key=lambda r: r["makespan_over_bound"])
        results.target(
            "T2",
            "with a cap: makespan ≤ 1.15 × max(CP, work/cap) on every seed",
            worst_row["makespan_over_bound"],
            "<=",
            1.15,
            "×",
            note=f"worst: {worst_row['components']} comps, seed {worst_row['seed']}, cap {worst_row['cap']}",
        )


def real_phase_barrier(h: Harness, results: Results, n: int, seed: int, scale: float) -> None:
    """Run the phase-barrier baseline for real once and set it beside its computed value."""
    from bench.phases import phase_barrier

    dag = synth.heavy_tailed(n, seed, scale)
    config, env = synth.write_platform(h.work / f"phases-{n}-{seed}", dag.edges, synth.sleep_commands(dag))
    results.progress(f"scheduling: phase-barrier flow, {n} components, seed {seed}")
    h.settle()
    cpu0, srv0, kids0 = self_cpu(), h.server_cpu(), children_cpu()
    clock = time.perf_counter()
    report = phase_barrier(env=env, config_dir=str(config), max_parallel=MAX_PARALLEL)
    run = Run(report, time.perf_counter() - clock, self_cpu() - cpu0, h.server_cpu() - srv0, children_cpu() - kids0)
    results.problems.extend(_check(run, dag.edges, None, f"phase barrier {n}/{seed}"))
    h.settle()
    ours = run_flow(h, config, env, max_parallel=min(n, MAX_PARALLEL), force=True)
    computed = synth.phase_barrier(dag, None)
    entry = {
        "components": n,
        "seed": seed,
        "computed_phase_barrier_s": round(computed, 3),
        "phase_barrier_run": run.figures(),
        "orchestrator_run": ours.figures(),
        "measured_over_computed": round(run.makespan_s / computed, 3),
        "speedup_measured": round(run.makespan_s / ours.makespan_s, 2),
    }
    results.sections.setdefault("scheduling", {})["real_phase_barrier"] = entry
    results.figure(
        "scheduling",
        f"{n} comps, no cap: real phase-barrier flow / orchestrator (makespan)",
        entry["speedup_measured"],
        "×",
        detail=f"phase barrier {run.makespan_s:.2f}s (computed {computed:.2f}s) vs {ours.makespan_s:.2f}s",
    )


def history(h: Harness, results: Results, cap: int, repeats: int, scale: float) -> None:
    rows = []
    for rep in range(repeats):
        dag = synth.history_sensitive(scale=scale)
        config, env = synth.write_platform(h.work / f"history-{rep}", dag.edges, synth.sleep_commands(dag))
        results.progress(f"history: repeat {rep + 1}/{repeats}, first run (no history)")
        first = run_flow(h, config, env, max_parallel=cap, force=True)
        results.progress(f"history: repeat {rep + 1}/{repeats}, second run (with history)")
        second = run_flow(h, config, env, max_parallel=cap, force=True)
        for label, run in (("first", first), ("second", second)):
            results.problems.extend(_check(run, dag.edges, cap, f"history {label} run {rep + 1}"))
        rows.append(
            {
                "repeat": rep + 1,
                "first": first.figures(),
                "second": second.figures(),
                "gain": round(1 - second.makespan_s / first.makespan_s, 3),
                "gain_wall": round(1 - second.wall_s / first.wall_s, 3),
            }
        )
    dag = synth.history_sensitive(scale=scale)
    predicted_first, predicted_second = synth.ideal(dag, cap, hop_count=True), synth.ideal(dag, cap)
    gain = median([r["gain"] for r in rows])
    results.sections["history"] = {
        "cap": cap,
        "components": len(dag.edges),
        "time_scale": scale,
        "ideal_first_s": round(predicted_first, 3),
        "ideal_second_s": round(predicted_second, 3),
        "ideal_gain": round(1 - predicted_second / predicted_first, 3),
        "runs": rows,
    }
    first_ms = median([r["first"]["makespan_s"] for r in rows])
    second_ms = median([r["second"]["makespan_s"] for r in rows])
    results.figure(
        "scheduling",
        f"long chain, cap {cap}: first run → with history (makespan)",
        gain,
        "sooner",
        detail=f"{first_ms:.2f}s → {second_ms:.2f}s (ideal {predicted_first:.2f}s → {predicted_second:.2f}s)",
        percent=True,
    )
    results.target(
        "T3", f"with history the long-chain graph finishes ≥ 25% sooner (cap {cap})", gain, ">=", 0.25, percent=True
    )


def record_write_diagnostic(h: Harness, results: Results, n: int, seed: int, scale: float) -> None:
    """Diagnostic: the uncapped run again with the state-record write stubbed out.

    Dependents no longer wait for the write (strataflow/handoff.py), so it should cost the
    makespan little; what it still costs is on the wall clock: the flow waits for every
    record before it ends, and the writes compete with the run for the server.
    """
    dag = synth.heavy_tailed(n, seed, scale)
    config, env = synth.write_platform(h.work / f"norecord-{n}-{seed}", dag.edges, synth.sleep_commands(dag))
    results.progress(f"scheduling: {n} components, seed {seed}, no cap, state-record write stubbed out (diagnostic)")
    run = run_flow(h, config, env, max_parallel=min(n, MAX_PARALLEL), force=True, stub_records=True)
    results.problems.extend(_check(run, dag.edges, None, f"diagnostic {n}/{seed}"))
    bound = synth.bound(dag, None)
    real = [
        r for r in results.sections.get("scheduling", {}).get("runs", []) if r["components"] == n and r["cap"] is None
    ]
    entry = {
        "components": n,
        "seed": seed,
        **run.figures(),
        "makespan_over_bound": round(run.makespan_s / bound, 3),
        "dispatch_latency": dispatch_latency(run.report, dag.edges),
    }
    results.sections.setdefault("scheduling", {})["without_state_records"] = entry
    writes = [r["record_write"] for r in real if r.get("record_write")]
    same_seed = next((r for r in real if r["seed"] == seed), None)
    detail = (
        f"wall/CP {run.wall_s / bound:.2f}, dispatch latency median {entry['dispatch_latency'].get('median_ms')} ms"
    )
    if same_seed:
        detail += (
            f" (with the write: {same_seed['makespan_over_bound']:.2f}×, wall/CP {same_seed['wall_over_bound']:.2f}, "
            f"dispatch median {same_seed['dispatch_latency'].get('median_ms')} ms)"
        )
    if writes:
        detail += (
            f"; record write in the real uncapped runs: median {median([w['median_ms'] for w in writes]):.0f} ms, "
            f"p90 {median([w['p90_ms'] for w in writes]):.0f} ms, max {max(w['max_ms'] for w in writes):.0f} ms"
        )
    results.figure(
        "scheduling",
        f"{n} comps, seed {seed}, no cap, state-record write stubbed (diagnostic): makespan / CP",
        entry["makespan_over_bound"],
        "×",
        detail=detail,
    )
