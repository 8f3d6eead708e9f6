"""`python -m bench [--quick] [--only SECTIONS] [--time-scale X]`: run the suite, print the table, write JSON."""

from __future__ import annotations

import argparse
import os
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import ROOT, Harness, machine
from bench.results import Results

SECTIONS = ("scheduling", "history", "overhead", "cli", "sample")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="a small smoke run (minutes): fewer sizes, seeds and repeats"
    )
    parser.add_argument("--only", metavar="LIST", help=f"comma-separated sections: {','.join(SECTIONS)}")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="X",
        help="multiply every synthetic duration by X (default 1: 0.1-3 s components)",
    )
    parser.add_argument("--seeds", type=int, default=3, metavar="N", help="random graphs per size (default 3)")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "latest.json", help="where to write the JSON"
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench's STRATA_HOME and configs (for debugging)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    chosen = tuple(s.strip() for s in args.only.split(",")) if args.only else SECTIONS
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown section(s): {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    quick, scale = args.quick, args.time_scale
    results = Results(
        meta={
            **machine(),
            "started_at": datetime.now(UTC).isoformat(),
            "quick": quick,
            "time_scale": scale,
            "sections": list(chosen),
            "json": str(args.out),
        }
    )
    harness = Harness(keep=args.keep)
    clock = time.perf_counter()
    results.progress(f"starting a local Prefect server in {harness.home}")
    harness.start()
    results.meta["server_start_s"] = round(harness.server_start_s, 2)

    from bench import cli_latency, overhead, sample, scheduling

    seeds = tuple(range(1, (1 if quick else args.seeds) + 1))
    plan: dict[str, Callable[[], None]] = {
        "scheduling": lambda: (
            scheduling.quality(harness, results, (50,) if quick else (50, 200), seeds, (2, 4, 8), scale),
            scheduling.real_phase_barrier(harness, results, 50 if quick else 200, 1, scale),
            scheduling.record_write_diagnostic(harness, results, 50 if quick else 200, 1, scale),
        ),
        "history": lambda: scheduling.history(harness, results, cap=4, repeats=1 if quick else 3, scale=scale),
        "overhead": lambda: overhead.overhead(
            harness, results, (10, 100) if quick else (10, 100, 500), cap=8, repeats_at_100=1 if quick else 3
        ),
        "cli": lambda: cli_latency.cli(
            harness,
            results,
            (100,) if quick else (100, 1000),
            history_runs=100 if quick else 1000,
            history_components=20,
        ),
        "sample": lambda: sample.sample(harness, results),
    }
    try:
        for name in chosen:
            section_clock = time.perf_counter()
            try:
                plan[name]()
            except KeyboardInterrupt:
                results.errors[name] = "interrupted"
                raise
            except Exception as exc:  # noqa: BLE001 - one broken section must not lose the others' figures
                results.errors[name] = f"{type(exc).__name__}: {exc}"
                results.console.print(traceback.format_exc(), style="red", highlight=False)
            results.meta.setdefault("section_s", {})[name] = round(time.perf_counter() - section_clock, 1)
            results.meta.setdefault("loadavg_after", {})[name] = [round(x, 2) for x in os.getloadavg()]
    finally:
        results.progress("stopping the local Prefect server")
        results.meta["shutdown"] = {k: round(v, 2) for k, v in harness.stop().items()}
        results.meta["duration_s"] = round(time.perf_counter() - clock, 1)
        results.write(args.out)
        results.render()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
