"""The component graph: cycles, selection, order, phases, priority and the ready-set scheduler.

Pure: models in, ordered decisions out. The orchestrator flow asks a ``Scheduler`` what may
start and tells it what finished; destroy uses the same graph reversed.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from strataflow import refs
from strataflow.config import Environment, Platform
from strataflow.errors import CycleError, Problem, UsageError
from strataflow.hints import did_you_mean


@dataclass(frozen=True)
class Graph:
    """A DAG of component names; ``upstream[n]`` are the components ``n`` depends on."""

    upstream: Mapping[str, frozenset[str]]

    @classmethod
    def of(cls, edges: Mapping[str, Iterable[str]]) -> Graph:
        """Build a graph, refusing a cycle (raised with its path) or an unknown node."""
        upstream = {name: frozenset(deps) for name, deps in edges.items()}
        for name, deps in upstream.items():
            for dep in deps:
                if dep not in upstream:
                    raise ValueError(f"{name} depends on unknown {dep}")
        cycle = find_cycle(upstream)
        if cycle:
            raise CycleError(Problem("components.yaml", None, None, "dependency cycle: " + " -> ".join(cycle)))
        return cls(upstream)

    @property
    def nodes(self) -> list[str]:
        return sorted(self.upstream)

    def __len__(self) -> int:
        return len(self.upstream)

    @property
    def downstream(self) -> dict[str, frozenset[str]]:
        down: dict[str, set[str]] = {name: set() for name in self.upstream}
        for name, deps in self.upstream.items():
            for dep in deps:
                down[dep].add(name)
        return {name: frozenset(d) for name, d in down.items()}

    def reversed(self) -> Graph:
        """The same graph with every edge turned round: the order destroy walks."""
        return Graph(self.downstream)

    def ancestors(self, name: str) -> set[str]:
        return _closure(name, self.upstream)

    def descendants(self, name: str) -> set[str]:
        return _closure(name, self.downstream)

    def subgraph(self, names: Iterable[str]) -> Graph:
        """The graph restricted to ``names`` (edges to components outside are dropped)."""
        keep = set(names)
        return Graph({n: self.upstream[n] & keep for n in self.upstream if n in keep})

    def order(self) -> list[str]:
        """A topological order: every component after all of its upstreams (ties by name)."""
        return [name for phase in self.phases() for name in phase]

    def phases(self) -> list[list[str]]:
        """Components grouped by depth (for display; the scheduler does not wait on phases)."""
        depth: dict[str, int] = {}
        for name in _kahn(self.upstream):
            depth[name] = 1 + max((depth[d] for d in self.upstream[name]), default=-1)
        grouped: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
        for name, level in depth.items():
            grouped[level].append(name)
        return [sorted(g) for g in grouped]

    def select(self, spec: str | None) -> set[str]:
        """Resolve a ``--select`` spec: ``NAME``, ``+NAME`` (with upstream), ``NAME+`` (downstream)."""
        if spec is None or not spec.strip():
            return set(self.upstream)
        chosen: set[str] = set()
        for raw in spec.split(","):
            item = raw.strip()
            if not item:
                continue
            up, down = item.startswith("+"), item.endswith("+")
            name = item.strip("+")
            if not name:
                raise UsageError(f"--select item '{item}' names no component; write NAME, +NAME or NAME+")
            if name not in self.upstream:
                hint = did_you_mean(name, self.nodes)
                raise UsageError(f"--select names unknown component '{name}'{hint}; known: {', '.join(self.nodes)}")
            chosen.add(name)
            if up:
                chosen |= self.ancestors(name)
            if down:
                chosen |= self.descendants(name)
        if not chosen:
            raise UsageError(f"--select '{spec}' names no component; write NAME, +NAME or NAME+, comma-separated")
        return chosen

    def priorities(self, durations: Mapping[str, float] | None = None, default: float = 1.0) -> dict[str, float]:
        """Each component's longest remaining path to the end of the graph, weighted by duration."""
        durations = durations or {}
        down = self.downstream
        rank: dict[str, float] = {}
        for name in reversed(_kahn(self.upstream)):
            rank[name] = durations.get(name, default) + max((rank[d] for d in down[name]), default=0.0)
        return rank

    def critical_path(self, durations: Mapping[str, float]) -> float:
        """The length of the longest dependent chain: no schedule can finish sooner."""
        return max(self.priorities(durations, 0.0).values(), default=0.0)


def _closure(start: str, edges: Mapping[str, Iterable[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(edges[start])
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(edges[name])
    return seen


def _kahn(upstream: Mapping[str, frozenset[str]]) -> list[str]:
    waiting = {name: len(deps) for name, deps in upstream.items()}
    down: dict[str, list[str]] = {name: [] for name in upstream}
    for name, deps in upstream.items():
        for dep in deps:
            down[dep].append(name)
    ready = sorted(name for name, count in waiting.items() if count == 0)
    heapq.heapify(ready)
    order = []
    while ready:
        name = heapq.heappop(ready)
        order.append(name)
        for child in down[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, child)
    return order


def find_cycle(upstream: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A dependency cycle as its path (first node repeated at the end), or None."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(upstream, white)
    for root in sorted(upstream):
        if colour[root] != white:
            continue
        stack: list[tuple[str, list[str]]] = [(root, sorted(upstream[root]))]
        path = [root]
        colour[root] = grey
        while stack:
            node, pending = stack[-1]
            if not pending:
                colour[node] = black
                stack.pop()
                path.pop()
                continue
            nxt = pending.pop()
            if nxt not in colour:
                continue
            if colour[nxt] == grey:
                cycle = [*path[path.index(nxt) :], nxt]
                # print it in dependency direction: a -> b means "a is needed by b"
                return list(reversed(cycle))
            if colour[nxt] == white:
                colour[nxt] = grey
                path.append(nxt)
                stack.append((nxt, sorted(upstream[nxt])))
    return None


# --- the platform's graph --------------------------------------------------------------


def edges_of(platform: Platform, env: Environment | None, cloud: str | None) -> dict[str, set[str]]:
    """Each component's upstreams: ``depends_on`` plus every component whose outputs it references.

    With ``cloud`` None the edges of every implementation are united (what ``validate`` checks).
    """
    edges: dict[str, set[str]] = {}
    for name, component in platform.components.items():
        deps = set(component.depends_on)
        impls = [component.impl(cloud)] if cloud else [impl for _, impl in component.implementations()]
        for impl in impls:
            if impl is not None:
                deps |= refs.outputs_used(impl.model_dump())
        if env is not None:
            deps |= refs.outputs_used(env.override(name).parameters)
        edges[name] = deps
    return edges


def component_graph(platform: Platform, env: Environment, cloud: str) -> Graph:
    """The graph deployed for ``env`` on ``cloud``: enabled components with an implementation there.

    A component that is disabled, or not implemented on ``cloud``, is left out; a plain
    ``depends_on`` on it is dropped, while a reference to its outputs is a validation error.
    """
    edges = edges_of(platform, env, cloud)
    included = {
        name
        for name, component in platform.components.items()
        if component.impl(cloud) is not None and env.override(name).enabled
    }
    return Graph.of({name: edges[name] & included for name in included})


def select_components(platform: Platform, env_name: str, cloud: str, spec: str | None) -> tuple[Graph, set[str]]:
    """The environment's graph and the components ``spec`` selects, refusing names it cannot deploy."""
    env = platform.environment(env_name)
    graph = component_graph(platform, env, cloud)
    for item in (spec or "").split(","):
        name = item.strip().strip("+")
        if name and name in platform.components and name not in graph.upstream:
            why = "is disabled in" if not env.override(name).enabled else f"has no implementation for {cloud} in"
            raise UsageError(f"--select names '{name}', which {why} {env_name}")
    return graph, graph.select(spec)


# --- scheduling ------------------------------------------------------------------------

MAX_PARALLEL = 64
"""The most components one run keeps in flight (the flow's thread pool is sized for it)."""


def check_parallelism(max_parallel: int) -> int:
    """``max_parallel`` when it is a cap a run accepts (1 to ``MAX_PARALLEL``); UsageError otherwise."""
    if not 1 <= max_parallel <= MAX_PARALLEL:
        raise UsageError(f"--max-parallel must be between 1 and {MAX_PARALLEL} (got {max_parallel})")
    return max_parallel



@dataclass
class Scheduler:
    """The ready set: what may start now, highest priority first, at most ``max_parallel`` at once.

    ``start()`` hands out components; ``finish(name, ok)`` releases dependents as soon as
    all of their own upstreams have succeeded, or marks them skipped (naming the failed
    upstream) when one failed.
    """

    graph: Graph
    max_parallel: int = 8
    priority: Mapping[str, float] = field(default_factory=dict)
    done: dict[str, bool] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    running: set[str] = field(default_factory=set)
    _ready: list[tuple[float, str]] = field(default_factory=list)
    _waiting: dict[str, int] = field(default_factory=dict)
    _down: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_parallelism(self.max_parallel)
        self._down = self.graph.downstream
        self._waiting = {name: len(deps) for name, deps in self.graph.upstream.items()}
        for name, count in self._waiting.items():
            if count == 0:
                self._push(name)

    def _push(self, name: str) -> None:
        heapq.heappush(self._ready, (-self.priority.get(name, 0.0), name))

    def start(self, limit: int | None = None) -> list[str]:
        """Components to start now, at most ``limit`` (may be empty while others run)."""
        batch: list[str] = []
        while self._ready and len(self.running) < self.max_parallel and (limit is None or len(batch) < limit):
            _, name = heapq.heappop(self._ready)
            self.running.add(name)
            batch.append(name)
        return batch

    def finish(self, name: str, ok: bool) -> list[str]:
        """Record a finished component; return the components newly skipped because of it."""
        self.running.discard(name)
        self.done[name] = ok
        newly_skipped = []
        if ok:
            for child in sorted(self._down[name]):
                self._waiting[child] -= 1
                if self._waiting[child] == 0 and child not in self.skipped:
                    self._push(child)
        else:
            cause = self.skipped.get(name, name)
            for child in sorted(self.graph.descendants(name)):
                if child not in self.skipped and child not in self.done:
                    self.skipped[child] = cause
                    newly_skipped.append(child)
            self._ready = [(p, n) for p, n in self._ready if n not in self.skipped]
            heapq.heapify(self._ready)
        return newly_skipped

    @property
    def finished(self) -> bool:
        return not self.running and not self._ready


def list_schedule(
    graph: Graph, durations: Mapping[str, float], max_parallel: int, priority: Mapping[str, float] | None = None
) -> float:
    """The makespan of the ideal list schedule: what a perfect executor of ``Scheduler`` achieves."""
    scheduler = Scheduler(graph, max_parallel, priority if priority is not None else graph.priorities(durations))
    clock = 0.0
    events: list[tuple[float, str]] = []
    while not scheduler.finished:
        for name in scheduler.start():
            heapq.heappush(events, (clock + durations[name], name))
        if not events:
            break
        clock, name = heapq.heappop(events)
        scheduler.finish(name, True)
    return clock
