"""The orchestrator flow against a real Prefect server: scheduling, failure, destroy."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from strataflow.graph import Graph, list_schedule
from tests.support.cli import strata
from tests.support.dags import Dag, layered, write_config

pytestmark = pytest.mark.usefixtures("prefect_api")


def run(config: Path, **params: Any) -> dict[str, Any]:
    """Run the orchestrator in-process on the config's only environment."""
    from flows.orchestrate import orchestrate

    env = next((config / "environments").glob("*.yaml")).stem
    state = orchestrate(env=env, config_dir=str(config), return_state=True, **params)
    report = state.result(raise_on_failure=False)
    assert isinstance(report, dict), report
    return report


def spans(report: dict[str, Any]) -> dict[str, tuple[datetime, datetime]]:
    return {
        name: (datetime.fromisoformat(c["started_at"]), datetime.fromisoformat(c["finished_at"]))
        for name, c in report["components"].items()
        if c["started_at"]
    }


def makespan(report: dict[str, Any]) -> float:
    times = spans(report).values()
    return (max(end for _, end in times) - min(start for start, _ in times)).total_seconds()


def max_overlap(report: dict[str, Any]) -> int:
    events = sorted(
        [(s, 1) for s, _ in spans(report).values()] + [(e, -1) for _, e in spans(report).values()],
        key=lambda x: (x[0], x[1]),
    )
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


def assert_dependency_order(report: dict[str, Any], dag: Dag) -> None:
    times = spans(report)
    for name, deps in dag.edges.items():
        for dep in deps:
            assert times[name][0] >= times[dep][1], f"{name} started before its upstream {dep} finished"


class TestScheduling:
    """The flow is the scheduler: as parallel as the graph allows, capped, critical path first."""

    def test_uncapped_makespan_close_to_critical_path(self, tmp_path: Path) -> None:
        """With no cap a 30-component DAG finishes within 1.2x its critical path, in dependency order."""
        dag = layered(30, seed=11)
        report = run(write_config(tmp_path, dag), max_parallel=30)
        assert report["status"] == "succeeded"
        assert_dependency_order(report, dag)
        critical = Graph.of(dag.edges).critical_path(dag.durations)
        ratio = makespan(report) / critical
        print(f"uncapped makespan / critical path = {ratio:.3f}")
        assert ratio <= 1.20

    def test_cap_is_respected_and_close_to_list_schedule(self, tmp_path: Path) -> None:
        """With --max-parallel 3 at most 3 run at once and the makespan is within 1.2x the ideal list schedule."""
        dag = layered(30, seed=12)
        report = run(write_config(tmp_path, dag), max_parallel=3)
        assert report["status"] == "succeeded"
        assert_dependency_order(report, dag)
        assert max_overlap(report) <= 3
        ideal = list_schedule(Graph.of(dag.edges), dag.durations, 3)
        ratio = makespan(report) / ideal
        print(f"cap 3 makespan / list schedule = {ratio:.3f}")
        assert ratio <= 1.20

    def test_sequential_never_overlaps(self, tmp_path: Path) -> None:
        """--sequential (max_parallel=1) never runs two components at once."""
        dag = layered(12, seed=13, low=0.05, high=0.2)
        report = run(write_config(tmp_path, dag), max_parallel=1)
        assert report["status"] == "succeeded"
        assert max_overlap(report) == 1
        assert_dependency_order(report, dag)


class TestFailure:
    """A failed component fails its downstream as skipped and leaves independent branches running."""

    def test_failure_skips_downstream_and_continues_independents(self, tmp_path: Path) -> None:
        """The failed component's descendants are skipped naming it; the others succeed; the run fails."""
        dag = Dag(
            edges={
                "base": [],
                "bad": ["base"],
                "child": ["bad"],
                "grandchild": ["child"],
                "other": ["base"],
                "lone": [],
            },
            durations=dict.fromkeys(["base", "bad", "child", "grandchild", "other", "lone"], 0.05),
        )
        report = run(write_config(tmp_path, dag, fail={"bad"}))
        statuses = {n: c["status"] for n, c in report["components"].items()}
        assert report["status"] == "failed"
        assert statuses == {
            "base": "succeeded",
            "bad": "failed",
            "child": "skipped",
            "grandchild": "skipped",
            "other": "succeeded",
            "lone": "succeeded",
        }
        assert report["components"]["child"]["skipped_because"] == "bad"
        assert report["components"]["grandchild"]["skipped_because"] == "bad"
        assert "boom" in report["components"]["bad"]["error"]

    def test_cli_exit_code_and_report_file(self, tmp_path: Path) -> None:
        """`strata apply` exits 1 on a failed component and writes the contract report."""
        dag = Dag(edges={"a": [], "b": ["a"]}, durations={"a": 0.01, "b": 0.01})
        config = write_config(tmp_path / "cfg", dag, fail={"a"})
        out = tmp_path / "report.json"
        env = next((config / "environments").glob("*.yaml")).stem
        result = strata("apply", env, "--config", str(config), "--report", str(out))
        assert result.returncode == 1, result.stderr
        data = json.loads(out.read_text())
        assert set(data) == {
            "env",
            "cloud",
            "action",
            "status",
            "flow_run_id",
            "started_at",
            "finished_at",
            "components",
        }
        assert set(data["components"]["a"]) == {
            "status",
            "started_at",
            "finished_at",
            "duration_s",
            "outputs",
            "changes",
            "error",
            "skipped_because",
        }
        assert data["components"]["b"] == {**data["components"]["b"], "status": "skipped", "skipped_because": "a"}
        assert "Traceback" not in result.stderr


class TestDestroy:
    """Destroy walks the same graph in reverse."""

    def test_destroy_runs_in_exact_reverse_dependency_order(self, tmp_path: Path) -> None:
        """Every component is destroyed only after all of its downstream components were."""
        dag = layered(15, seed=14, low=0.02, high=0.1)
        config = write_config(tmp_path, dag)
        assert run(config)["status"] == "succeeded"
        report = run(config, action="destroy")
        assert report["status"] == "succeeded"
        assert report["action"] == "destroy"
        times = spans(report)
        for name, deps in dag.edges.items():
            for dep in deps:
                assert times[dep][0] >= times[name][1], f"{dep} destroyed before its downstream {name}"

    def test_destroy_of_never_applied_does_nothing(self, tmp_path: Path) -> None:
        """Destroying an environment where nothing was applied runs no command and reports unchanged."""
        dag = Dag(edges={"x": []}, durations={"x": 0.01})
        config = write_config(tmp_path, dag)
        marker = tmp_path / "ran"
        text = (config / "components.yaml").read_text().replace("destroy: 'true'", f"destroy: touch {marker}")
        (config / "components.yaml").write_text(text)
        report = run(config, action="destroy")
        assert report["components"]["x"]["status"] == "unchanged"
        assert not marker.exists()


class TestRecords:
    """A component's dependents start when its backend returns; the records follow in dependency order."""

    @staticmethod
    def slow_writes(
        monkeypatch: pytest.MonkeyPatch, delay: dict[str, float], fail: frozenset[str] = frozenset()
    ) -> list[Any]:
        """Make writing the records of ``delay``'s components slow (``fail``'s fail); return the writes seen."""
        from strataflow import state

        original = state.write_component
        writes: list[tuple[str, float, float]] = []
        lock = threading.Lock()

        def write(record: Any, task_run_id: str | None = None) -> None:
            began = time.time()
            time.sleep(delay.get(record.component, 0.0))
            if record.component in fail:
                raise RuntimeError("the API answered 503")
            original(record, task_run_id=task_run_id)
            with lock:
                writes.append((record.component, began, time.time()))

        monkeypatch.setattr(state, "write_component", write)
        return writes

    def test_dependents_do_not_wait_for_the_record(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """With a's record taking 2 s to write, b starts at once; b's record is written after a's; all exist at the end."""
        from strataflow import state

        writes = self.slow_writes(monkeypatch, {"a": 2.0})
        dag = Dag(edges={"a": [], "b": ["a"], "c": ["b"]}, durations=dict.fromkeys("abc", 0.05))
        config = write_config(tmp_path, dag)
        report = run(config)
        assert report["status"] == "succeeded"
        times = spans(report)
        written = {name: (began, ended) for name, began, ended in writes}
        assert set(written) == {"a", "b", "c"}, "the flow returned before every record was written"
        assert times["b"][0].timestamp() < written["a"][1] - 1.0, "b waited for a's record"
        assert written["b"][1] >= written["a"][1] and written["c"][1] >= written["b"][1], "records out of order"
        records = state.latest_components(report["env"], report["cloud"], ["a", "b", "c"])
        assert {name: r.status for name, r in records.items()} == dict.fromkeys("abc", "succeeded")
        run_record = next(iter(state.run_history(report["env"], report["cloud"], 1)), None)
        assert run_record is not None and run_record.status == "succeeded"
        assert run_record.finished_at is not None and run_record.finished_at.timestamp() >= written["c"][1]

    def test_a_record_that_cannot_be_written_fails_its_component(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The component fails saying its record is missing, and what was built on it is not recorded either."""
        from strataflow import state

        self.slow_writes(monkeypatch, {}, fail=frozenset({"a"}))
        dag = Dag(edges={"a": [], "b": ["a"]}, durations=dict.fromkeys("ab", 0.05))
        config = write_config(tmp_path, dag)
        report = run(config)
        assert report["status"] == "failed"
        assert report["components"]["a"]["status"] == "failed"
        assert "state record could not be written" in report["components"]["a"]["error"]
        assert "--resume" in report["components"]["a"]["error"]
        assert report["components"]["b"]["status"] == "failed"
        assert "the record of a, which it was built on, could not be written" in report["components"]["b"]["error"]
        records = state.latest_components(report["env"], report["cloud"], ["a", "b"])
        assert "a" not in records or records["a"].status != "succeeded"
        assert "b" not in records, "b's record would rest on outputs of a that nobody recorded"

    def test_the_ui_draws_each_dependency(self, tmp_path: Path) -> None:
        """Each task run lists the task runs of its upstreams as inputs (the edges of the run graph)."""
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, TaskRunFilter

        dag = Dag(edges={"a": [], "b": [], "c": ["a", "b"], "d": ["c"]}, durations=dict.fromkeys("abcd", 0.05))
        report = run(write_config(tmp_path, dag))
        assert report["status"] == "succeeded"
        with get_client(sync_client=True) as client:
            task_runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[report["flow_run_id"]])),
                task_run_filter=TaskRunFilter(),
            )
        by_name = {run.name.removeprefix("apply-"): run for run in task_runs}
        inputs = {name: {str(ref.id) for ref in by_name[name].task_inputs.get("wait_for", [])} for name in dag.edges}
        assert inputs == {name: {str(by_name[dep].id) for dep in deps} for name, deps in dag.edges.items()}, (
            "an edge is missing or extra"
        )


class TestLogs:
    """A command's output reaches the flow run's logs on the run's Prefect API."""

    def test_command_output_is_in_the_run_logs(self, tmp_path: Path) -> None:
        """Each stdout and stderr line of a command is a log of its task run, read back from the API."""
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

        dag = Dag(edges={"talk": []}, durations={"talk": 0.01})
        config = write_config(tmp_path, dag)
        text = (
            (config / "components.yaml")
            .read_text()
            .replace("sleep 0.01", "echo said-on-stdout; echo said-on-stderr >&2")
        )
        (config / "components.yaml").write_text(text)
        report = run(config)
        assert report["status"] == "succeeded"
        deadline = time.monotonic() + 30
        messages: list[str] = []
        while time.monotonic() < deadline:  # logs are sent in batches
            with get_client(sync_client=True) as client:
                logs = client.read_logs(
                    log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[report["flow_run_id"]]))
                )
            messages = [log.message for log in logs]
            if "[talk] said-on-stdout" in messages and "[talk] ! said-on-stderr" in messages:
                break
            time.sleep(0.5)
        assert "[talk] said-on-stdout" in messages and "[talk] ! said-on-stderr" in messages, messages
