"""The component graph on random DAGs: order, phases, reverse, cycles, selection, priority, scheduling."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strataflow.errors import CycleError, UsageError
from strataflow.graph import Graph, Scheduler, find_cycle, list_schedule

NAMES = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=6),
    min_size=1,
    max_size=14,
    unique=True,
)


@st.composite
def dags(draw: st.DrawFn, min_size: int = 1) -> dict[str, set[str]]:
    """A random DAG: names in a random order, each depending on a random subset of the earlier ones."""
    names = draw(NAMES.filter(lambda n: len(n) >= min_size))
    names = draw(st.permutations(names))
    return {
        name: set(draw(st.lists(st.sampled_from(names[:i]), max_size=4, unique=True))) if i else set()
        for i, name in enumerate(names)
    }


WeightedDag = tuple[dict[str, set[str]], dict[str, float]]


@st.composite
def weighted_dags(draw: st.DrawFn) -> WeightedDag:
    """A random DAG with a duration (0.5 to 10 seconds) for each component."""
    edges = draw(dags())
    durations = {name: draw(st.integers(1, 20)) / 2 for name in edges}
    return edges, durations


def reachable(edges: Mapping[str, set[str]], start: str) -> set[str]:
    """Brute force: everything reachable from ``start`` along ``edges`` (start excluded unless on a cycle)."""
    seen: set[str] = set()
    frontier = set(edges[start])
    while frontier:
        seen |= frontier
        frontier = {nxt for node in frontier for nxt in edges[node]} - seen
    return seen


def inverse(edges: Mapping[str, set[str]]) -> dict[str, set[str]]:
    return {name: {other for other, deps in edges.items() if name in deps} for name in edges}


def longest_from(name: str, down: Mapping[str, set[str]], durations: Mapping[str, float]) -> float:
    """Brute force: the heaviest path starting at ``name`` going downstream, by enumerating every path."""
    return durations[name] + max((longest_from(n, down, durations) for n in down[name]), default=0.0)


class TestOrder:
    @settings(max_examples=200, deadline=None)
    @given(dags())
    def test_order_respects_every_edge(self, edges: dict[str, set[str]]) -> None:
        """The order lists every component once, each after all of its upstreams."""
        order = Graph.of(edges).order()
        assert sorted(order) == sorted(edges)
        position = {name: i for i, name in enumerate(order)}
        for name, deps in edges.items():
            for dep in deps:
                assert position[dep] < position[name]

    @settings(max_examples=200, deadline=None)
    @given(dags())
    def test_phases_respect_edges_and_are_as_early_as_possible(self, edges: dict[str, set[str]]) -> None:
        """Phases partition the components, each after its upstreams' phases and right after the latest one."""
        phases = Graph.of(edges).phases()
        phase_of = {name: i for i, phase in enumerate(phases) for name in phase}
        assert sorted(phase_of) == sorted(edges)
        assert sum(len(p) for p in phases) == len(edges)
        assert all(phases), "no empty phase"
        for name, deps in edges.items():
            assert phase_of[name] == 1 + max((phase_of[d] for d in deps), default=-1)

    @settings(max_examples=200, deadline=None)
    @given(dags())
    def test_reversed_is_the_exact_reverse_relation(self, edges: dict[str, set[str]]) -> None:
        """`reversed()` turns every edge round and nothing else; reversing twice gives the graph back."""
        graph = Graph.of(edges)
        back = graph.reversed()
        assert {n: set(d) for n, d in back.upstream.items()} == inverse(edges)
        assert {n: set(d) for n, d in back.reversed().upstream.items()} == edges
        position = {name: i for i, name in enumerate(back.order())}
        for name, deps in edges.items():
            for dep in deps:
                assert position[name] < position[dep], "destroy removes dependents first"

    def test_ties_are_broken_by_name(self) -> None:
        """Independent components come in name order, so the order is stable."""
        assert Graph.of({"c": set(), "a": set(), "b": {"c"}}).order() == ["a", "c", "b"]

    def test_unknown_upstream_is_refused(self) -> None:
        """An edge to a component outside the graph is refused."""
        with pytest.raises(ValueError, match="unknown"):
            Graph.of({"a": {"ghost"}})


class TestCycles:
    @settings(max_examples=300, deadline=None)
    @given(st.data())
    def test_injected_back_edge_is_always_caught(self, data: st.DataObject) -> None:
        """A back edge from an upstream to one of its descendants always yields a real cycle and a CycleError."""
        edges = data.draw(dags(min_size=1))
        candidates = sorted((name, anc) for name in edges for anc in reachable(edges, name))
        if candidates:
            descendant, ancestor = data.draw(st.sampled_from(candidates))
        else:  # no edge at all: a self-loop is the only cycle to make
            descendant = ancestor = data.draw(st.sampled_from(sorted(edges)))
        edges[ancestor] = edges[ancestor] | {descendant}
        cycle = find_cycle(edges)
        assert cycle is not None
        assert cycle[0] == cycle[-1]
        assert len(set(cycle[:-1])) == len(cycle) - 1, "a simple cycle"
        for needed, dependent in itertools.pairwise(cycle):
            assert needed in edges[dependent], f"{needed} -> {dependent} is not an edge"
        with pytest.raises(CycleError) as caught:
            Graph.of(edges)
        assert "dependency cycle: " + " -> ".join(cycle) in str(caught.value)

    @settings(max_examples=200, deadline=None)
    @given(dags())
    def test_dag_has_no_cycle(self, edges: dict[str, set[str]]) -> None:
        """A DAG never reports a cycle."""
        assert find_cycle(edges) is None

    def test_two_cycle_path(self) -> None:
        """A two-component cycle prints as a -> b -> a, in dependency direction."""
        assert find_cycle({"network": {"clusters"}, "clusters": {"network"}}) in (
            ["network", "clusters", "network"],
            ["clusters", "network", "clusters"],
        )

    def test_cycle_error_is_a_config_error(self) -> None:
        """A cycle exits 2 like any invalid configuration."""
        with pytest.raises(CycleError) as caught:
            Graph.of({"a": {"a"}})
        assert caught.value.exit_code == 2


class TestSelection:
    @settings(max_examples=200, deadline=None)
    @given(st.data())
    def test_closures_are_exact(self, data: st.DataObject) -> None:
        """`+NAME` is NAME and all its upstream, `NAME+` NAME and all its downstream, `+NAME+` both."""
        edges = data.draw(dags())
        graph = Graph.of(edges)
        name = data.draw(st.sampled_from(sorted(edges)))
        up, down = reachable(edges, name), reachable(inverse(edges), name)
        assert graph.select(name) == {name}
        assert graph.select(f"+{name}") == {name} | up
        assert graph.select(f"{name}+") == {name} | down
        assert graph.select(f"+{name}+") == {name} | up | down
        assert graph.ancestors(name) == up
        assert graph.descendants(name) == down

    @settings(max_examples=150, deadline=None)
    @given(st.data())
    def test_lists_are_unions(self, data: st.DataObject) -> None:
        """A comma-separated spec selects the union of its items; no spec selects everything."""
        edges = data.draw(dags())
        graph = Graph.of(edges)
        items = data.draw(
            st.lists(st.tuples(st.sampled_from(sorted(edges)), st.sampled_from(["", "+"]), st.sampled_from(["", "+"])),
                     min_size=1, max_size=4)
        )
        spec = " , ".join(f"{pre}{name}{post}" for name, pre, post in items)
        expected: set[str] = set()
        for name, pre, post in items:
            expected |= graph.select(f"{pre}{name}{post}")
        assert graph.select(spec) == expected
        assert graph.select(None) == graph.select("") == graph.select("  ") == set(edges)

    def test_unknown_name_suggests(self) -> None:
        """An unknown name is a UsageError suggesting the closest known one."""
        graph = Graph.of({"network": set(), "clusters": {"network"}})
        with pytest.raises(UsageError, match=r"unknown component 'netwrk' \(did you mean 'network'\?\)"):
            graph.select("+netwrk")

    @pytest.mark.parametrize("spec", ["+", ",", "++, ,"])
    def test_spec_naming_nothing_is_refused(self, spec: str) -> None:
        """A spec that names no component is a UsageError, not an empty selection that silently does nothing."""
        with pytest.raises(UsageError, match="names no component"):
            Graph.of({"a": set()}).select(spec)


class TestPriorities:
    @settings(max_examples=200, deadline=None)
    @given(weighted_dags())
    def test_priority_is_the_longest_remaining_path(self, dag: WeightedDag) -> None:
        """Each component's priority is the heaviest path from it to the end of the graph."""
        edges, durations = dag
        down = inverse(edges)
        priorities = Graph.of(edges).priorities(durations)
        for name in edges:
            assert priorities[name] == pytest.approx(longest_from(name, down, durations))

    @settings(max_examples=100, deadline=None)
    @given(dags())
    def test_default_duration_counts_components(self, edges: dict[str, set[str]]) -> None:
        """Without durations, a priority is the number of components on the longest chain from it."""
        down = inverse(edges)
        priorities = Graph.of(edges).priorities()
        for name in edges:
            assert priorities[name] == longest_from(name, down, dict.fromkeys(edges, 1.0))

    def test_critical_path(self) -> None:
        """The critical path is the heaviest chain."""
        graph = Graph.of({"a": set(), "b": {"a"}, "c": {"a"}, "d": {"b", "c"}})
        assert graph.critical_path({"a": 1, "b": 5, "c": 2, "d": 1}) == 7


class TestScheduler:
    @settings(max_examples=300, deadline=None)
    @given(st.data())
    def test_random_runs_keep_every_promise(self, data: st.DataObject) -> None:
        """Under random completion order and failures the scheduler caps parallelism, waits for upstreams,
        skips exactly the descendants of failures (naming a failed ancestor) and finishes everything."""
        edges = data.draw(dags())
        graph = Graph.of(edges)
        cap = data.draw(st.integers(1, 4), label="max_parallel")
        weighted = data.draw(st.booleans(), label="with priorities")
        priority = graph.priorities({n: data.draw(st.integers(1, 5)) for n in edges}) if weighted else {}
        scheduler = Scheduler(graph, cap, priority)
        started: list[str] = []
        for _ in range(4 * len(edges) + 4):
            if scheduler.finished:
                break
            for name in scheduler.start():
                assert name not in started, f"{name} started twice"
                assert name not in scheduler.skipped
                assert all(scheduler.done.get(dep) is True for dep in edges[name]), f"{name} started too early"
                started.append(name)
            assert len(scheduler.running) <= cap
            assert scheduler.running, "nothing running yet not finished"
            name = data.draw(st.sampled_from(sorted(scheduler.running)), label="finishes")
            ok = data.draw(st.booleans(), label="ok")
            skipped = scheduler.finish(name, ok)
            assert set(skipped) <= graph.descendants(name)
        assert scheduler.finished
        assert set(scheduler.done) | set(scheduler.skipped) == set(edges)
        assert not set(scheduler.done) & set(scheduler.skipped)
        failed = {n for n, ok in scheduler.done.items() if not ok}
        should_skip = {d for f in failed for d in graph.descendants(f)}
        assert set(scheduler.skipped) == should_skip
        for name, cause in scheduler.skipped.items():
            assert cause in failed, f"{name} skipped because of {cause}, which did not fail"
            assert cause in graph.ancestors(name)

    def test_highest_priority_starts_first(self) -> None:
        """When more are ready than may run, the longest remaining path starts first."""
        graph = Graph.of({"short": set(), "long": set(), "tail": {"long"}})
        scheduler = Scheduler(graph, 1, graph.priorities({"short": 5, "long": 2, "tail": 4}))
        assert scheduler.start() == ["long"]

    def test_failure_names_the_failed_upstream(self) -> None:
        """A component behind a failure is skipped naming the component that failed, not an intermediate one."""
        scheduler = Scheduler(Graph.of({"a": set(), "b": {"a"}, "c": {"b"}}), 2)
        assert scheduler.start() == ["a"]
        assert scheduler.finish("a", False) == ["b", "c"]
        assert scheduler.skipped == {"b": "a", "c": "a"}
        assert scheduler.finished

    def test_max_parallel_below_one_is_refused(self) -> None:
        """A parallelism cap below one is a usage error."""
        with pytest.raises(UsageError):
            Scheduler(Graph.of({"a": set()}), 0)


class TestListSchedule:
    @settings(max_examples=200, deadline=None)
    @given(weighted_dags(), st.integers(1, 6))
    def test_makespan_bounds(self, dag: WeightedDag, cap: int) -> None:
        """The makespan is at least the critical path and the total work over the cap, and at most their sum."""
        edges, durations = dag
        graph = Graph.of(edges)
        makespan = list_schedule(graph, durations, cap)
        critical = graph.critical_path(durations)
        total = sum(durations.values())
        assert makespan >= critical - 1e-9
        assert makespan >= total / cap - 1e-9
        assert makespan <= critical + total / cap + 1e-9  # Graham's bound for list scheduling
        assert makespan <= total + 1e-9

    @settings(max_examples=200, deadline=None)
    @given(weighted_dags())
    def test_unbounded_parallelism_meets_the_critical_path(self, dag: WeightedDag) -> None:
        """With at least as many slots as components the makespan equals the critical path."""
        edges, durations = dag
        graph = Graph.of(edges)
        assert math.isclose(list_schedule(graph, durations, len(edges)), graph.critical_path(durations))
        assert math.isclose(list_schedule(graph, durations, len(edges) + 5), graph.critical_path(durations))

    def test_sequential_is_total_work(self) -> None:
        """With one slot the makespan is the sum of all durations."""
        graph = Graph.of({"a": set(), "b": set(), "c": {"a"}})
        assert list_schedule(graph, {"a": 1.0, "b": 2.0, "c": 3.0}, 1) == 6.0
