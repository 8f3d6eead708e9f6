"""Synthetic platforms for the bench: graphs, their durations, and config directories of `command` components."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path

import yaml

from strataflow.graph import Graph, list_schedule
from tests.support.dags import Dag, layered

LOW, HIGH = 0.1, 3.0
"""Heavy-tailed component durations lie between these (seconds, before the time scale)."""


def heavy_tailed(n: int, seed: int, scale: float = 1.0) -> Dag:
    """A random layered DAG (tests.support.dags) with Pareto(1.5) durations clipped to [0.1 s, 3 s], times ``scale``."""
    dag = layered(n, seed, low=LOW, high=HIGH, heavy_tail=True)
    return Dag(dag.edges, {name: round(d * scale, 3) for name, d in dag.durations.items()})


def noop(n: int, seed: int = 7) -> Dag:
    """The same kind of random layered DAG, every component doing nothing (duration 0)."""
    dag = layered(n, seed)
    return Dag(dag.edges, dict.fromkeys(dag.edges, 0.0))


def history_sensitive(
    chain: int = 3, chain_s: float = 2.0, shorts: int = 8, short_len: int = 6, short_s: float = 0.3, scale: float = 1.0
) -> Dag:
    """One long chain beside many short, deeper chains: hop-count priority gets it wrong, history gets it right.

    ``long-1 -> long-2 -> long-3`` (2 s each) beside eight chains ``aNN-s1 -> ... -> aNN-s6``
    of 0.3 s components whose names sort first. Without history every component weighs
    the same default, so the priority is the hop count: the short chains (6 hops) outrank
    the long chain (3 hops) and, at equal rank, win on name, so under a cap the long chain
    starts late and ends last. With history its 2 s components weigh what they cost and
    it starts first. (A long chain beside short *independents* would not show this: the
    hop count alone already puts a chain of k > 1 first.)
    """
    edges: dict[str, list[str]] = {}
    durations: dict[str, float] = {}
    for i in range(1, chain + 1):
        name = f"long-{i}"
        edges[name] = [f"long-{i - 1}"] if i > 1 else []
        durations[name] = round(chain_s * scale, 3)
    for j in range(shorts):
        for i in range(1, short_len + 1):
            name = f"a{j:02d}-s{i}"
            edges[name] = [f"a{j:02d}-s{i - 1}"] if i > 1 else []
            durations[name] = round(short_s * scale, 3)
    return Dag(edges, durations)


def sleep_commands(dag: Dag) -> dict[str, str]:
    return {name: ("true" if d <= 0 else f"sleep {d:g}") for name, d in dag.durations.items()}


def write_platform(
    root: Path, edges: Mapping[str, list[str]], commands: Mapping[str, str], env: str | None = None
) -> tuple[Path, str]:
    """A config directory of `command` components running ``commands``, with one fresh environment."""
    env = env or f"b{uuid.uuid4().hex[:10]}"
    (root / "environments").mkdir(parents=True, exist_ok=True)
    components = {
        name: {"depends_on": sorted(deps), "backend": "command", "apply": commands[name], "destroy": "true"}
        for name, deps in edges.items()
    }
    (root / "components.yaml").write_text(yaml.safe_dump({"components": components}, sort_keys=True))
    (root / "environments" / f"{env}.yaml").write_text("{}\n")
    return root, env


# --- exact baselines ------------------------------------------------------------------------


def graph_of(dag: Dag) -> Graph:
    return Graph.of(dag.edges)


def sequential(dag: Dag) -> float:
    """One component at a time: the sum of the durations."""
    return sum(dag.durations.values())


def phase_barrier(dag: Dag, cap: int | None) -> float:
    """Phase by phase, each phase finished before the next starts; within a phase at most ``cap``
    at once, longest first (list scheduling, the baseline's best case)."""
    total = 0.0
    for phase in graph_of(dag).phases():
        if cap is None or cap >= len(phase):
            total += max(dag.durations[n] for n in phase)
        else:
            flat = Graph({n: frozenset() for n in phase})
            total += list_schedule(
                flat, {n: dag.durations[n] for n in phase}, cap, {n: dag.durations[n] for n in phase}
            )
    return total


def bound(dag: Dag, cap: int | None) -> float:
    """No schedule finishes sooner: the critical path, and with a cap the work spread over the cap."""
    cp = graph_of(dag).critical_path(dag.durations)
    return cp if cap is None else max(cp, sequential(dag) / cap)


def ideal(dag: Dag, cap: int, hop_count: bool = False) -> float:
    """The makespan of a perfect executor of the orchestrator's list schedule (zero overhead).

    ``hop_count``: with the priorities of a first run (no history: every component the same weight).
    """
    graph = graph_of(dag)
    priority = graph.priorities({}, 60.0) if hop_count else graph.priorities(dag.durations)
    return list_schedule(graph, dag.durations, cap, priority)
