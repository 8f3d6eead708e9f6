"""Figure 3: command-line latency, measured as a user sees it (a fresh `python -m strataflow` process)."""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from typing import Any

from bench import synth
from bench.harness import ROOT, Harness
from bench.measure import median
from bench.results import Results

REPEATS = 3


def _time(h: Harness, results: Results, label: str, *args: str) -> dict[str, Any]:
    walls, codes = [], []
    for _ in range(REPEATS):
        result, wall = h.strata(*args)
        walls.append(wall)
        codes.append(result.returncode)
        if result.returncode != 0:
            results.problems.append(
                f"cli: `strata {' '.join(args)}` exited {result.returncode}: {result.stderr.strip()[-300:]}"
            )
            break
    return {
        "command": label,
        "median_s": round(median(walls), 3),
        "min_s": round(min(walls), 3),
        "runs": [round(w, 3) for w in walls],
        "exit_codes": codes,
    }


def _python_startup() -> float:
    walls = []
    for _ in range(REPEATS):
        clock = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True, cwd=ROOT)
        walls.append(time.perf_counter() - clock)
    return median(walls)


def _record_history(env: str, names: list[str], runs: int, threads: int = 4) -> float:
    """Write ``runs`` finished runs (a run record and one component record each) through strataflow.state."""
    from strataflow import state
    from strataflow.records import Applied, ComponentRecord, RunRecord, now

    base = now() - timedelta(days=runs)

    def write(i: int) -> None:
        started = base + timedelta(hours=i)
        finished = started + timedelta(minutes=3)
        flow_run_id = str(uuid.uuid4())
        touched = names[i % len(names)]
        status = "failed" if i % 17 == 0 else "succeeded"
        state.write_run(
            RunRecord(
                env=env,
                cloud="aws",
                action="apply",
                status=status,
                flow_run_id=flow_run_id,
                actor=f"user{i % 5}",
                started_at=started,
                finished_at=finished,
                planned=[touched],
                components={touched: status},
                detail={"resume": False, "force": False, "sandbox": False},
            )
        )
        applied = Applied(
            digest=f"d{i:06d}",
            version="1.0.0",
            outputs={"id": f"x-{i}"},
            applied_at=finished,
            actor=f"user{i % 5}",
            flow_run_id=flow_run_id,
        )
        state.write_component(
            ComponentRecord(
                env=env,
                cloud="aws",
                component=touched,
                action="apply",
                status=status,
                applied=applied if status == "succeeded" else None,
                error="boom" if status == "failed" else None,
                durations=[1.0, 2.0],
                started_at=started,
                finished_at=finished,
                flow_run_id=flow_run_id,
                actor=f"user{i % 5}",
            )
        )

    clock = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(write, range(runs)))
    return time.perf_counter() - clock


def cli(h: Harness, results: Results, sizes: tuple[int, ...], history_runs: int, history_components: int) -> None:
    rows: list[dict[str, Any]] = []
    h.settle()  # the section before may have left the server ingesting events: not this section's cost
    startup = _python_startup()
    for n in sizes:
        dag = synth.noop(n, seed=3)
        config, env = synth.write_platform(h.work / f"cli-{n}", dag.edges, synth.sleep_commands(dag))
        results.progress(f"cli: validate and graph on {n} components")
        for label, args in (
            ("validate", ("validate", "--config", str(config))),
            ("graph", ("graph", env, "--config", str(config))),
            ("graph --format json", ("graph", env, "--config", str(config), "--format", "json")),
        ):
            rows.append({"components": n, **_time(h, results, label, *args)})

    dag = synth.noop(history_components, seed=5)
    config, env = synth.write_platform(h.work / "cli-history", dag.edges, synth.sleep_commands(dag))
    results.progress(f"cli: recording {history_runs} runs of a {history_components}-component environment")
    write_s = _record_history(env, sorted(dag.edges), history_runs)
    h.settle()
    results.progress("cli: status and history")
    first = sorted(dag.edges)[0]
    for label, args in (
        ("status", ("status", env, "--config", str(config))),
        ("status --json", ("status", env, "--config", str(config), "--json")),
        ("history", ("history", env, "--config", str(config))),
        ("history --limit 200", ("history", env, "--config", str(config), "--limit", "200")),
        ("history --component", ("history", env, "--config", str(config), "--component", first)),
    ):
        rows.append(
            {"components": history_components, "recorded_runs": history_runs, **_time(h, results, label, *args)}
        )
    results.sections["cli"] = {
        "python_startup_s": round(startup, 3),
        "history_write_s": round(write_s, 2),
        "history_writes_per_s": round(2 * history_runs / write_s, 1),
        "commands": rows,
    }

    def find(label: str, n: int) -> dict[str, Any]:
        return next(r for r in rows if r["command"] == label and r["components"] == n)

    for n in sizes:
        for label in ("validate", "graph"):
            r = find(label, n)
            results.figure(
                "cli",
                f"`{label}`, {n} components",
                r["median_s"],
                "s",
                detail=f"median of {len(r['runs'])}; python startup alone {startup:.2f}s",
            )
    for label in ("status", "history", "history --component"):
        r = find(label, history_components)
        results.figure(
            "cli",
            f"`{label}`, {history_runs} recorded runs",
            r["median_s"],
            "s",
            detail=f"{history_components}-component env; median of {len(r['runs'])}",
        )
    if 1000 in sizes:
        results.target("T5", "`validate` on 1,000 components < 1 s", find("validate", 1000)["median_s"], "<", 1.0, "s")
    results.target(
        "T6",
        f"`status` with {history_runs} runs of history < 2 s",
        find("status", history_components)["median_s"],
        "<",
        2.0,
        "s",
    )
    results.figure(
        "cli",
        "recording history through strataflow.state",
        2 * history_runs / write_s,
        "writes/s",
        detail=f"{2 * history_runs} artifacts from 4 threads in {write_s:.1f}s (the server's write ceiling)",
    )
