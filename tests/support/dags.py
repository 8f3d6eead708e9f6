"""Synthetic platforms: random layered DAGs of `command` components that sleep."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass
class Dag:
    edges: dict[str, list[str]]
    durations: dict[str, float]


def layered(
    n: int, seed: int, low: float = 0.2, high: float = 1.5, layers: int | None = None, heavy_tail: bool = False
) -> Dag:
    """A random layered DAG: each component depends on 1-3 components of earlier layers."""
    rng = random.Random(seed)
    layers = layers or max(2, round(n**0.5))
    names = [f"c{i:03d}" for i in range(n)]
    level = {name: min(layers - 1, i * layers // n) for i, name in enumerate(names)}
    edges: dict[str, list[str]] = {}
    for name in names:
        earlier = [m for m in names if level[m] < level[name]]
        k = min(len(earlier), rng.randint(1, 3)) if earlier else 0
        edges[name] = sorted(rng.sample(earlier, k))
    if heavy_tail:
        durations = {n_: round(min(high, low + rng.paretovariate(1.5) * low - low), 2) for n_ in names}
    else:
        durations = {n_: round(rng.uniform(low, high), 2) for n_ in names}
    return Dag(edges, durations)


def write_config(
    root: Path, dag: Dag, fail: set[str] | None = None, env: str | None = None, extra_env: str = ""
) -> Path:
    """A config directory deploying ``dag`` with components that sleep their duration.

    Its one environment gets a fresh name (unless ``env`` is given), so tests sharing one
    Prefect server never see each other's state.
    """
    env = env or f"t{uuid.uuid4().hex[:10]}"
    (root / "environments").mkdir(parents=True, exist_ok=True)
    components = {}
    for name, deps in dag.edges.items():
        command = f"sleep {dag.durations[name]}"
        if fail and name in fail:
            command += "; echo boom >&2; exit 7"
        components[name] = {"depends_on": deps, "backend": "command", "apply": command, "destroy": "true"}
    (root / "components.yaml").write_text(yaml.safe_dump({"components": components}, sort_keys=True))
    (root / "environments" / f"{env}.yaml").write_text(extra_env or "{}\n")
    return root
