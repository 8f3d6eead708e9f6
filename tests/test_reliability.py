"""Reliability against a real Prefect API: backend faults, concurrency, approvals, injection, load.

Each fault is injected for real: a scripted in-memory backend (strataflow/backends/memory.py)
raising or hanging inside the orchestrator flow, commands whose children outlive them,
concurrent `strata` processes, decisions sent straight to Prefect, outputs full of shell
metacharacters, and 500 components through the command line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from strataflow.backends.memory import OK, FakeBackend, Hang, installed
from strataflow.errors import TemplateError, TransientError
from tests.support.cli import cli
from tests.support.configs import command, count, unique, write_platform
from tests.support.dags import layered
from tests.support.prefect_api import run_flow, statuses
from tests.support.processes import Processes, alive
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("prefect_api")



def history(env: str, config: Path) -> list[dict[str, Any]]:
    result = cli("history", env, "--config", str(config), "--json")
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


# --- 2. faults in backends ------------------------------------------------------------------------


def fake_platform(root: Path, timeouts: dict[str, int] | None = None) -> tuple[Path, str]:
    """`base` -> `flaky` -> `after`, `base` -> `other`, and a lone `lone`: command components served by the fake."""
    env = unique("f")
    components = {
        "base": command("true"),
        "flaky": command("true", ["base"]),
        "after": command("true", ["flaky"]),
        "other": command("true", ["base"]),
        "lone": command("true"),
    }
    for name, seconds in (timeouts or {}).items():
        components[name]["timeout"] = seconds
    return write_platform(root, components, {env: {}}), env


class TestBackendFaults:
    """Errors and hangs inside a backend become component results; the flow never crashes."""

    def test_transient_errors_are_retried_until_success(self, tmp_path: Path) -> None:
        """A backend raising TransientError twice then succeeding is called three times and the component succeeds."""
        config, env = fake_platform(tmp_path)
        throttled = TransientError("Rate exceeded (throttled)", retry_after=0.05)
        fake = FakeBackend(scripts={"flaky": [throttled, throttled, OK]})
        with installed(fake):
            report = run_flow(config, env)
        assert report["status"] == "succeeded", report
        assert set(statuses(report).values()) == {"succeeded"}
        assert fake.count("apply", "flaky") == 3
        assert fake.count("apply", "after") == 1

    def test_permanent_error_fails_fast_without_retry(self, tmp_path: Path) -> None:
        """A TemplateError is not retried: one call, the component fails with it, its downstream is skipped."""
        config, env = fake_platform(tmp_path)
        fake = FakeBackend(scripts={"flaky": [TemplateError("Template format error: unresolved !Ref Nope"), OK]})
        started = time.monotonic()
        with installed(fake):
            report = run_flow(config, env)
        assert fake.count("apply", "flaky") == 1
        assert statuses(report) == {
            "base": "succeeded",
            "flaky": "failed",
            "after": "skipped",
            "other": "succeeded",
            "lone": "succeeded",
        }
        assert "unresolved !Ref Nope" in report["components"]["flaky"]["error"]
        assert report["components"]["after"]["skipped_because"] == "flaky"
        assert report["components"]["flaky"]["duration_s"] < 1.0
        assert time.monotonic() - started < 30

    def test_unexpected_exception_fails_the_component_not_the_flow(self, tmp_path: Path) -> None:
        """A KeyError from a backend fails that component with the error in the report; the flow ends with its report."""
        from flows.orchestrate import orchestrate

        config, env = fake_platform(tmp_path)
        fake = FakeBackend(scripts={"flaky": [KeyError("SubnetIds")]})
        with installed(fake):
            state = orchestrate(env=env, config_dir=str(config), return_state=True)
        report = state.result(raise_on_failure=False)
        assert state.is_failed() and not state.is_crashed(), state
        assert isinstance(report, dict), report
        assert statuses(report) == {
            "base": "succeeded",
            "flaky": "failed",
            "after": "skipped",
            "other": "succeeded",
            "lone": "succeeded",
        }
        error = report["components"]["flaky"]["error"]
        assert "KeyError" in error and "SubnetIds" in error, error
        assert "flaky" in (state.message or "")

    def test_hung_backend_call_is_bounded_by_the_component_timeout(self, tmp_path: Path) -> None:
        """A backend call that never answers fails its component soon after the component's timeout; the rest go on."""
        config, env = fake_platform(tmp_path, timeouts={"flaky": 1})
        fake = FakeBackend(scripts={"flaky": [Hang(120)]})
        started = time.monotonic()
        with installed(fake):
            report = run_flow(config, env)
        took = time.monotonic() - started
        print(f"hung call: run ended after {took:.1f}s (component timeout 1s)")
        assert statuses(report)["flaky"] == "failed"
        assert statuses(report)["after"] == "skipped"
        assert statuses(report)["lone"] == "succeeded"
        assert "timeout" in report["components"]["flaky"]["error"]
        assert report["components"]["flaky"]["duration_s"] < 15
        assert took < 40

    def test_command_timeout_kills_the_whole_process_group(self, tmp_path: Path) -> None:
        """A command past its `timeout:` is killed with its children: the sleeping grandchild is gone too."""
        env = unique("k")
        pidfile = tmp_path / "child.pid"
        config = write_platform(
            tmp_path / "cfg",
            {
                "hangs": command(f"sleep 300 & echo $! > {pidfile}; wait", timeout=2),
                "after": command("true", ["hangs"]),
                "lone": command("true"),
            },
            {env: {}},
        )
        started = time.monotonic()
        report = run_flow(config, env)
        assert time.monotonic() - started < 30
        assert statuses(report) == {"hangs": "failed", "after": "skipped", "lone": "succeeded"}
        assert "timeout of 2s" in report["components"]["hangs"]["error"]
        child = int(pidfile.read_text())
        wait_until(lambda: not alive(child), 10, what=f"the command's child {child} to be gone")


# --- 4. concurrency ------------------------------------------------------------------------------------


def held_platform(root: Path, envs: dict[str, dict[str, Any]]) -> Path:
    """One component `slow`: it writes `<marks>/started-<env>`, waits (up to 60 s) for the test to create
    `<marks>/release-<env>`, then appends to `<marks>/slow`: its run holds the environment until released."""
    marks = root / "marks"
    marks.mkdir(parents=True)
    apply = (
        f"touch {marks}/started-$STRATA_ENV; n=0; "
        f"while [ ! -e {marks}/release-$STRATA_ENV ] && [ $n -lt 300 ]; do sleep 0.2; n=$((n+1)); done; "
        f"echo $STRATA_ENV >> {marks}/slow"
    )
    return write_platform(root / "cfg", {"slow": command(apply)}, envs)


class TestConcurrency:
    """One run per environment at a time; environments run side by side; promotions wait for applies."""

    def test_second_apply_of_one_environment_exits_4_naming_the_first(self, tmp_path: Path, procs: Processes) -> None:
        """While one apply holds the environment, another exits 4 and names the holder's flow run; the first succeeds."""
        env = unique("c")
        config = held_platform(tmp_path, {env: {}})
        first = procs.strata("apply", env, "--config", str(config), "--json")
        wait_until((tmp_path / "marks" / f"started-{env}").exists, 60, what="the first apply to start")
        second = cli("apply", env, "--config", str(config), "--json")
        (tmp_path / "marks" / f"release-{env}").touch()
        assert first.wait(120) == 0, first.err()
        holder = json.loads(first.out())["flow_run_id"]
        assert second.returncode == 4, second.stderr
        assert f"locked by flow run {holder}" in second.stderr
        assert "Traceback" not in second.stderr
        assert count(tmp_path / "marks", "slow") == 1

    def test_applies_of_two_environments_run_at_once(self, tmp_path: Path, procs: Processes) -> None:
        """Two environments of one config apply concurrently: both exit 0 and each saw the other running."""
        one, two = unique("c"), unique("c")
        marks = tmp_path / "marks"
        marks.mkdir()
        # each waits (up to 30 s) until both have started: run one after the other, they could not overlap
        apply = (
            f"touch {marks}/started-$STRATA_ENV; n=0; "
            f"while [ $(ls {marks} | grep -c started-) -lt 2 ] && [ $n -lt 150 ]; do sleep 0.2; n=$((n+1)); done; "
            f"ls {marks} | grep -c started- > {marks}/seen-$STRATA_ENV"
        )
        config = write_platform(tmp_path / "cfg", {"meet": command(apply)}, {one: {}, two: {}})
        runs = [procs.strata("apply", env, "--config", str(config), "--json") for env in (one, two)]
        codes = [run.wait(120) for run in runs]
        assert codes == [0, 0], [run.err() for run in runs]
        spans = []
        for run in runs:
            component = json.loads(run.out())["components"]["meet"]
            spans.append(
                (datetime.fromisoformat(component["started_at"]), datetime.fromisoformat(component["finished_at"]))
            )
        assert max(s for s, _ in spans) < min(e for _, e in spans), f"the applies did not overlap: {spans}"
        assert [(marks / f"seen-{env}").read_text().strip() for env in (one, two)] == ["2", "2"]

    def test_promotion_into_an_environment_being_applied_is_refused(self, tmp_path: Path, procs: Processes) -> None:
        """`strata promote` while the target is being applied exits 5, naming the apply's flow run (gate not_running)."""
        source, target = unique("s"), unique("t")
        config = held_platform(tmp_path, {source: {}, target: {"promote_from": source}})
        (tmp_path / "marks" / f"release-{source}").touch()
        assert run_flow(config, source)["status"] == "succeeded"
        apply = procs.strata("apply", target, "--config", str(config), "--json")
        wait_until((tmp_path / "marks" / f"started-{target}").exists, 60, what="the target's apply to start")
        promotion = cli("promote", source, target, "--config", str(config), "--auto-approve")
        (tmp_path / "marks" / f"release-{target}").touch()
        assert apply.wait(120) == 0, apply.err()
        holder = json.loads(apply.out())["flow_run_id"]
        assert promotion.returncode == 5, promotion.stderr
        assert "not_running" in promotion.stderr
        assert holder in promotion.stderr
        assert count(tmp_path / "marks", "slow") == 2  # the source's apply and the target's, not the promotion's


# --- 5. approvals --------------------------------------------------------------------------------------


class _Promotions:
    """Starts `strata promote SOURCE TARGET --as carol` in the background and waits until it is paused."""

    def __init__(self, procs: Processes, config: Path, source: str, target: str) -> None:
        self.procs, self.config, self.source, self.target = procs, config, source, target
        self.current: str | None = None

    def paused(self) -> str:
        """The flow run id of a promotion waiting for approval (a new one when the last was decided)."""
        from strataflow import state

        if self.current is not None and (state.read_flow_run(self.current) or {}).get("state") == "PAUSED":
            return self.current
        id_file = self.procs.directory / f"promotion-{uuid4().hex[:6]}.id"
        job = self.procs.strata(
            "promote",
            self.source,
            self.target,
            "--config",
            str(self.config),
            "--as",
            "carol",
            env={"STRATA_PROMOTION_ID_FILE": str(id_file)},
        )
        flow_run_id = wait_until(
            lambda: (
                (id_file.exists() and id_file.read_text().strip())
                or (job.process.poll() is not None and job.err() + "!")
            ),
            90,
            what="the promotion to start",
        )
        assert not flow_run_id.endswith("!"), flow_run_id
        wait_until(
            lambda: (state.read_flow_run(flow_run_id) or {}).get("state") == "PAUSED", 90, what="the promotion to pause"
        )
        self.current = flow_run_id
        self.job = job
        return flow_run_id


@pytest.fixture(scope="class")
def approvals(prefect_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Promotions]:
    """A source applied once, and a target requiring approval by alice or carol."""
    root = tmp_path_factory.mktemp("approvals")
    source, target = unique("s"), unique("t")
    marks = root / "marks"
    marks.mkdir()
    config = write_platform(
        root / "cfg",
        {"app": command(f"echo $STRATA_ENV >> {marks}/app")},
        {
            source: {},
            target: {
                "promote_from": source,
                "approval": {"required": True, "approvers": ["alice", "carol"], "timeout": "10m"},
            },
        },
    )
    assert run_flow(config, source)["status"] == "succeeded"
    procs = Processes(root)
    try:
        yield _Promotions(procs, config, source, target)
    finally:
        procs.end_all()


def refused_approvals(promotions: _Promotions, flow_run_id: str) -> list[dict[str, Any]]:
    entries = history(promotions.target, promotions.config)
    return [
        e
        for e in entries
        if e["kind"] == "approval" and e["status"] == "refused" and e["detail"].get("promotion") == flow_run_id
    ]


class TestApprovalRefusals:
    """Invalid approvals are refused with exit 2, recorded in the history, and leave the promotion paused."""

    def test_non_approver_is_refused_and_recorded(self, approvals: _Promotions) -> None:
        """Someone not among the approvers cannot approve; the attempt is in `strata history --json`."""
        from strataflow import state

        flow_run_id = approvals.paused()
        result = cli("approve", flow_run_id, "--as", "mallory", "--comment", "let me in")
        assert result.returncode == 2, result.stderr
        assert "mallory is not an approver" in result.stderr and "Traceback" not in result.stderr
        refused = refused_approvals(approvals, flow_run_id)
        assert any(e["actor"] == "mallory" and "not an approver" in e["detail"]["reason"] for e in refused), refused
        assert state.read_flow_run(flow_run_id)["state"] == "PAUSED"  # type: ignore[index]

    def test_requester_cannot_approve_their_own_promotion(self, approvals: _Promotions) -> None:
        """carol requested the promotion: carol's approval is refused (exit 2) and recorded, though carol is an approver."""
        from strataflow import state

        flow_run_id = approvals.paused()
        result = cli("approve", flow_run_id, "--as", "carol")
        assert result.returncode == 2, result.stderr
        assert "carol requested this change and cannot decide on it" in result.stderr
        assert any(e["actor"] == "carol" for e in refused_approvals(approvals, flow_run_id))
        assert state.read_flow_run(flow_run_id)["state"] == "PAUSED"  # type: ignore[index]

    def test_malformed_decision_is_refused_by_the_server(self, approvals: _Promotions) -> None:
        """A decision of "maybe" sent straight to Prefect is rejected against the input schema; the run stays paused."""
        from prefect.flow_runs import resume_flow_run

        from strataflow import state

        flow_run_id = approvals.paused()
        with pytest.raises(RuntimeError, match="maybe"):
            resume_flow_run(UUID(flow_run_id), run_input={"decision": "maybe", "approver": "alice", "comment": ""})
        time.sleep(3)  # longer than the flow's poll interval: it would have resumed by now
        assert state.read_flow_run(flow_run_id)["state"] == "PAUSED"  # type: ignore[index]
        resume_flow_run(UUID(flow_run_id), run_input={"approver": "alice", "digest": "0" * 64})  # valid input, another digest
        wait_until(lambda: any("digest" in (e["detail"].get("reason") or "") for e in refused_approvals(approvals, flow_run_id)), 60, what="the refusal")
        wait_until(lambda: state.read_flow_run(flow_run_id)["state"] == "PAUSED", 60, what="the run to pause again")  # type: ignore[index]
        assert count(approvals.config.parent / "marks", "app") == 1

    def test_not_a_promotion_and_bad_ids_are_refused(self, approvals: _Promotions) -> None:
        """Approving an apply's flow run, an unknown id or a malformed id exits 2 with a clear message; the first is recorded."""
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"env:{approvals.source}"]))
            )
        apply_run = str(runs[0].id)
        result = cli("approve", apply_run, "--as", "alice")
        assert result.returncode == 2, result.stderr
        assert f"flow run {apply_run} is not waiting for approval" in result.stderr
        entries = history(approvals.source, approvals.config)
        assert any(
            e["kind"] == "approval" and e["status"] == "refused" and e["detail"].get("promotion") == apply_run
            for e in entries
        ), entries
        unknown = str(uuid4())
        result = cli("approve", unknown, "--as", "alice")
        assert result.returncode == 2 and f"flow run {unknown} is not waiting for approval" in result.stderr, result.stderr
        result = cli("reject", "not-a-uuid", "--as", "alice")
        assert result.returncode == 2 and "'not-a-uuid' is not a flow run id" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr

    def test_second_approval_after_resume_is_refused(self, approvals: _Promotions) -> None:
        """Once alice's approval resumed the promotion, bob's is refused (not waiting for approval) and recorded."""
        flow_run_id = approvals.paused()
        result = cli("approve", flow_run_id, "--as", "alice", "--comment", "ship it")
        assert result.returncode == 0, result.stderr
        assert approvals.job.wait(120) == 0, approvals.job.err()
        assert count(approvals.config.parent / "marks", "app") == 2
        result = cli("approve", flow_run_id, "--as", "bob")
        assert result.returncode == 2, result.stderr
        assert "is not waiting for approval" in result.stderr
        refused = refused_approvals(approvals, flow_run_id)
        assert any(e["actor"] == "bob" and "not waiting for approval" in e["detail"]["reason"] for e in refused), (
            refused
        )


# --- 7. injection and paths ----------------------------------------------------------------------------

HOSTILE = {
    "semicolon": "x; touch PWNED",
    "substitution": "$(touch PWNED)",
    "backticks": "`touch PWNED`",
    "quotes": "it's \"quoted\" 'twice'; touch PWNED",
    "newline": "first\ntouch PWNED\nlast",
    "dollar": "$HOME ${PATH} ${var.x} %s",
    "ampersand": "a && touch PWNED || touch PWNED & wait",
}


class TestInjection:
    """Outputs from outside are data: substituted into commands quoted, never executed."""

    def test_hostile_outputs_reach_the_downstream_command_intact(self, tmp_path: Path) -> None:
        """Values with ; $( ) backticks quotes newlines reach `printf %s` byte for byte and nothing is executed."""
        env = unique("i")
        out = tmp_path / "out"
        out.mkdir()
        sinks = {f"sink-{key}": command(f"printf %s ${{source.outputs.{key}}} > {out}/{key}") for key in HOSTILE}
        config = write_platform(
            tmp_path / "cfg",
            {"source": command("cat payload.json", outputs="json", inputs=["payload.json"]), **sinks},
            {env: {}},
            files={"payload.json": json.dumps(HOSTILE) + "\n"},
        )
        report = run_flow(config, env)
        for where in (config, tmp_path, Path.cwd()):
            assert not (where / "PWNED").exists(), f"an output was executed as code (PWNED in {where})"
        assert report["status"] == "succeeded", report
        for key, value in HOSTILE.items():
            assert (out / key).read_text() == value, key

    @pytest.mark.parametrize("escape", ["dotdot", "absolute", "symlink", "module-file-symlink"])
    def test_paths_escaping_the_config_directory_are_refused_by_apply(self, tmp_path: Path, escape: str) -> None:
        """`strata apply` refuses a template or module that leads outside the config directory (exit 2) and runs nothing."""
        env = unique("p")
        outside = tmp_path / "outside"
        outside.mkdir()
        (outside / "stack.yaml").write_text("Resources: {}\n")
        (outside / "main.tf").write_text('output "x" { value = "from outside" }\n')
        config = tmp_path / "cfg"
        marker = tmp_path / "ran"
        components: dict[str, Any] = {"first": command(f"touch {marker}")}
        if escape == "dotdot":
            components["stack"] = {"backend": "cloudformation", "template": "../outside/stack.yaml"}
        elif escape == "absolute":
            components["stack"] = {"backend": "cloudformation", "template": str(outside / "stack.yaml")}
        elif escape == "symlink":
            components["stack"] = {"backend": "cloudformation", "template": "templates/stack.yaml"}
        else:
            components["stack"] = {"backend": "terraform", "module": "modules/dns"}
        write_platform(config, components, {env: {}})
        if escape == "symlink":
            (config / "templates").mkdir()
            (config / "templates" / "stack.yaml").symlink_to(outside / "stack.yaml")
        elif escape == "module-file-symlink":
            (config / "modules" / "dns").mkdir(parents=True)
            (config / "modules" / "dns" / "variables.tf").write_text("")
            (config / "modules" / "dns" / "main.tf").symlink_to(outside / "main.tf")
        result = cli("apply", env, "--config", str(config))
        assert result.returncode == 2, (result.returncode, result.stderr)
        assert "components.yaml" in result.stderr
        assert "outside the config directory" in result.stderr or "is absolute" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        assert not marker.exists()


# --- 8. load ---------------------------------------------------------------------------------------------


class TestLoad:
    """Five hundred components apply through the command line in order, with bounded memory."""

    def test_500_components_in_order_with_bounded_memory(self, tmp_path: Path, procs: Processes) -> None:
        """An environment of 500 `true` components applies in dependency order; the CLI's peak RSS stays under 1.5 GiB."""
        env = unique("l")
        dag = layered(500, seed=500, layers=12)
        components = {name: command("true", deps) for name, deps in dag.edges.items()}
        config = write_platform(tmp_path / "cfg", components, {env: {}})
        started = time.monotonic()
        run = procs.strata("apply", env, "--config", str(config), "--json", "--max-parallel", "16")
        code = run.wait(600)
        took = time.monotonic() - started
        assert code == 0, run.err()[-3000:]
        report = json.loads(run.out())
        peak_mib = run.rusage.ru_maxrss / 1024
        print(f"500 components: {took:.1f}s, peak RSS of the strata process {peak_mib:.0f} MiB")
        assert set(statuses(report).values()) == {"succeeded"}
        assert len(report["components"]) == 500
        times = {
            name: (datetime.fromisoformat(c["started_at"]), datetime.fromisoformat(c["finished_at"]))
            for name, c in report["components"].items()
        }
        for name, deps in dag.edges.items():
            for dep in deps:
                assert times[name][0] >= times[dep][1], f"{name} started before its upstream {dep} finished"
        assert peak_mib < 1536
