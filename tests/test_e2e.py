"""End to end, as production runs it: a Prefect server, a process worker, `prefect deploy --all`.

For each database (SQLite, PostgreSQL), in fresh temporary directories, the test types what
docs/running-on-a-prefect-server.md tells a user to type:

    prefect server start                                   (PREFECT_API_DATABASE_CONNECTION_URL set)
    prefect work-pool create strata --type process
    prefect deploy --all --no-prompt                       (in the project directory)
    prefect worker start --pool strata                     (anywhere; STRATA_HOME shared)
    prefect deployment run 'orchestrate/dev' --param sandbox=true --watch
    strata apply dev --sandbox --json                      (the deployment run then agrees: all unchanged)
    prefect deployment run 'promote/dev-to-staging' --param sandbox=true --watch
    prefect deployment run 'promote/staging-to-prod' --param sandbox=true --param actor=carol
    prefect flow-run ls --flow-name promote --state-type PAUSED -o json
    strata approve FLOW_RUN_ID --as alice
    prefect flow-run watch FLOW_RUN_ID
    strata status prod --json; strata history prod --json

with PREFECT_API_URL pointing at the server and STRATA_HOME at a temp dir, so the sandbox
AWS (moto) the first flow run starts is shared by every later run and command. Everything
is stopped at the end (worker, sandbox, server, PostgreSQL), also on failure.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.services import (
    Ran,
    Service,
    base_env,
    free_port,
    postgres,
    prefect_server,
    prefect_worker,
    run,
    wait_for_service,
)

ROOT = Path(__file__).resolve().parent.parent
POOL = "strata"
DEPLOYMENTS = {
    "orchestrate/dev", "orchestrate/staging", "orchestrate/prod",
    "promote/dev-to-staging", "promote/staging-to-prod",
    "drift/dev", "drift/staging", "drift/prod",
}
WATCH = 240.0
RUN = ("prefect", "deployment", "run")


class Session:
    """The commands of one end-to-end run, their timings, and what to show when one fails."""

    def __init__(self, env: dict[str, str], api: str, worker_log: Path) -> None:
        self.env, self.api, self.worker_log = env, api, worker_log
        self.timings: list[tuple[str, float]] = []

    def run(self, *args: str, timeout: float = 180.0) -> Ran:
        return run(args, self.env, ROOT, timeout=timeout, timings=self.timings)

    def ok(self, *args: str, timeout: float = 180.0) -> Ran:
        ran = self.run(*args, timeout=timeout)
        assert ran.returncode == 0, f"{ran.describe()}\n--- worker log (tail) ---\n{_tail(self.worker_log)}"
        return ran

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args).stdout)

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.api}{path}", timeout=10) as response:
            return json.load(response)

    def flow_run_state(self, flow_run_id: str) -> str:
        state = self.get(f"/flow_runs/{flow_run_id}").get("state") or {}
        return str(state.get("type"))


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def _database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp / 'prefect.db'}"
    else:
        with postgres(tmp / "logs") as url:
            yield url


def _stop_sandbox(env: dict[str, str]) -> None:
    """`strata server stop` stops the sandbox AWS the first flow run started under STRATA_HOME."""
    run(["strata", "server", "stop"], env, ROOT, timeout=60)


@pytest.mark.slow
@pytest.mark.timeout(420)
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_deployments_workers_promotion_and_approval(database: str, tmp_path: Path) -> None:
    started = time.monotonic()
    strata_home, prefect_home, elsewhere = tmp_path / "strata-home", tmp_path / "prefect-home", tmp_path / "elsewhere"
    for path in (strata_home, prefect_home, elsewhere):
        path.mkdir()
    print(f"\n[{database}] logs under {tmp_path}", flush=True)
    services: list[Service] = []
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(_database(database, tmp_path))
        server = stack.enter_context(prefect_server(prefect_home, url, base_env(), tmp_path))
        services.append(server)
        assert server.url
        env = base_env(PREFECT_API_URL=server.url, PREFECT_HOME=str(prefect_home), STRATA_HOME=str(strata_home))
        # after the worker stops (LIFO): the sandbox's moto server, which the first flow run started
        stack.callback(_stop_sandbox, env)
        s = Session(env, server.url, tmp_path / "worker.log")
        print(f"  [{time.monotonic() - started:6.1f}s] server up on {database}", flush=True)

        # --- deploy -------------------------------------------------------------------------------
        s.ok("prefect", "work-pool", "create", POOL, "--type", "process")
        s.ok("prefect", "deploy", "--all", "--no-prompt", timeout=240)
        _check_deployments(s)

        # --- a worker, started outside the project: the pull step finds the project ---------------
        worker_env = {**env, "PREFECT_WORKER_QUERY_SECONDS": "1"}  # pick runs up fast (default 10 s)
        worker = stack.enter_context(prefect_worker(POOL, worker_env, elsewhere, s.worker_log))
        services.append(worker)

        # --- dev from the CLI, then the same from its deployment: nothing to do ----------------------
        report = s.json("strata", "apply", "dev", "--sandbox", "--json")
        assert report["status"] == "succeeded", report
        components = list(report["components"])
        assert len(components) >= 5, report
        assert (strata_home / "sandbox-aws.json").exists(), "no sandbox under STRATA_HOME"
        from_cli = s.json("strata", "status", "dev", "--sandbox", "--json")
        for name, info in from_cli["components"].items():
            assert info["state"] == "applied" and not info["pending_change"], (name, info)
        assert {c["state"] for c in s.json("strata", "status", "dev", "--json")["components"].values()} == {"never"}, (
            "sandbox records are not the cloud's"
        )
        s.ok(*RUN, "orchestrate/dev", "--param", "sandbox=true", "--watch", timeout=WATCH)
        dev_run = s.json("strata", "history", "dev", "--sandbox", "--json")[0]
        assert (dev_run["kind"], dev_run["action"], dev_run["status"]) == ("orchestrate", "apply", "succeeded"), dev_run
        assert dev_run["components"] == dict.fromkeys(components, "unchanged"), "the worker agrees with the CLI"
        from_deployment = s.json("strata", "status", "dev", "--sandbox", "--json")
        assert _shape(from_cli) == _shape(from_deployment)

        # --- a deployment made for dev refuses a run pointed at prod -----------------------------------
        refused = s.run(*RUN, "orchestrate/dev", "--param", "env=prod", "--param", "sandbox=true", "--watch", timeout=WATCH)
        assert refused.returncode != 0, refused.describe()
        assert not s.json("strata", "history", "prod", "--sandbox", "--json"), "nothing ran in prod"

        # --- the worker reads the bundles the CLI stored through the API, not from this disk ---------
        for snapshot in sorted((strata_home / "bundles").glob("*")):
            if snapshot.is_dir():
                for file in sorted(snapshot.rglob("*"), reverse=True):
                    file.unlink() if file.is_file() else file.rmdir()
                snapshot.rmdir()

        # --- dev -> staging: no approval ---------------------------------------------------------------------
        s.ok(*RUN, "promote/dev-to-staging", "--param", "sandbox=true", "--watch", timeout=WATCH)
        staging = s.json("strata", "status", "staging", "--sandbox", "--json")
        assert list(staging["components"]) == components
        assert all(c["state"] == "applied" and not c["pending_change"] for c in staging["components"].values()), staging
        assert staging["release"] == from_cli["release"], "staging runs the bundles dev ran, byte for byte"
        promotion = next(r for r in s.json("strata", "history", "staging", "--sandbox", "--json") if r["kind"] == "promote")
        assert promotion["status"] == "succeeded" and promotion["detail"]["approval"]["decision"] == "auto", promotion

        # --- staging -> prod: paused for approval, approved by alice ---------------------------------------
        started_run = s.ok(*RUN, "promote/staging-to-prod", "--param", "sandbox=true", "--param", "actor=carol")
        match = re.search(r"UUID: ([0-9a-f-]{36})", started_run.stdout)
        assert match, started_run.describe()
        flow_run_id = match.group(1)
        terminal = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
        wait_for_service(
            "the promotion to prod to pause for approval",
            lambda: _paused_or_over(s, flow_run_id, terminal),
            worker, timeout=WATCH, every=1.0,
        )
        assert s.flow_run_state(flow_run_id) == "PAUSED", f"{s.flow_run_state(flow_run_id)}\n{_tail(s.worker_log)}"
        paused = s.ok("prefect", "flow-run", "ls", "--flow-name", "promote", "--state-type", "PAUSED", "-o", "json")
        assert [r["id"] for r in json.loads(paused.stdout)] == [flow_run_id], paused.stdout
        # (strata approve checks that the promotion recorded itself as awaiting approval)
        s.ok("strata", "approve", flow_run_id, "--as", "alice", "--comment", "e2e")
        s.ok("prefect", "flow-run", "watch", flow_run_id, timeout=WATCH)
        assert s.flow_run_state(flow_run_id) == "COMPLETED"

        prod = s.json("strata", "status", "prod", "--sandbox", "--json")
        assert list(prod["components"]) == components
        for name, info in prod["components"].items():
            assert info["state"] == "applied" and not info["pending_change"], (name, info)
            assert info["version"] == info["working_version"] and info["applied_by"] == "carol", (name, info)
            assert info["approved_by"] == "alice (not verified)" and info["how"] == "promotion", (name, info)
        history = s.json("strata", "history", "prod", "--sandbox", "--json")
        promoted = next(r for r in history if r["kind"] == "promote" and r["flow_run_id"] == flow_run_id)
        assert promoted["status"] == "succeeded", promoted
        assert promoted["actor"] == promoted["detail"]["requester"] == "carol" and promoted["detail"]["source"] == "staging"
        approval = promoted["detail"]["approval"]
        assert (approval["decision"], approval["approver"], approval["comment"]) == ("approve", "alice", "e2e")
        assert promoted["components"] == dict.fromkeys(components, "succeeded")
        deployed_prod = next(r for r in history if r["kind"] == "orchestrate")
        assert deployed_prod["status"] == "succeeded" and deployed_prod["actor"] == "carol", deployed_prod

        print(f"  [{time.monotonic() - started:6.1f}s] all steps passed on {database}; stopping", flush=True)
    for service in services:
        assert not service.alive(), f"{service.name} still running after the test"
    print(f"[{database}] {time.monotonic() - started:.1f}s in all", flush=True)


def _paused_or_over(s: Session, flow_run_id: str, terminal: set[str]) -> bool:
    state = s.flow_run_state(flow_run_id)
    if state in terminal:
        raise AssertionError(f"the promotion ended {state} instead of pausing for approval\n{_tail(s.worker_log)}")
    return state == "PAUSED"


def _shape(status: dict[str, Any]) -> dict[str, Any]:
    """What a run must agree on, whoever triggered it: components, state, versions, digests, output keys."""
    return {
        name: (info["state"], info["version"], info["digest"], info["working_digest"],
               sorted(info["outputs"]), sorted(info))
        for name, info in status["components"].items()
    }


def _check_deployments(s: Session) -> None:
    """Parameters, tags, work pool, pull steps and schedules as prefect.yaml declares them."""
    for name in sorted(DEPLOYMENTS):
        flow, deployment = name.split("/")
        found = s.get(f"/deployments/name/{flow}/{deployment}")
        assert found["work_pool_name"] == POOL, found
        assert "strata" in found["tags"], found
        params = found["parameters"]
        assert params["config_dir"] == "config" and params["sandbox"] is False and params["cloud"] is None, params
        steps = [next(iter(step)) for step in found["pull_steps"]]
        assert steps[-1] == "prefect.deployments.steps.set_working_directory", found["pull_steps"]
        if flow == "promote":
            assert f"{params['source']}-to-{params['target']}" == deployment
        else:
            assert params["env"] == deployment
        crons = [sched["schedule"].get("cron") for sched in found["schedules"]]
        if flow == "drift":
            assert len(crons) == 1 and crons[0].endswith("* * *"), found["schedules"]
        elif name == "promote/dev-to-staging":
            assert crons == ["0 2 * * *"], found["schedules"]
        else:
            assert crons == [], found["schedules"]


@pytest.mark.slow
@pytest.mark.parametrize("override", [False, True], ids=["deployed-from", "STRATA_PROJECT_DIR"])
def test_pull_steps_find_the_project(override: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """prefect.yaml's steps as `prefect deploy` and a worker run them: the project dir, or the worker's override."""
    import asyncio

    import yaml
    from prefect.deployments.steps.core import run_steps
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.utilities.templating import apply_values

    project = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    elsewhere, checkout = tmp_path / "elsewhere", tmp_path / "checkout"
    elsewhere.mkdir()
    checkout.mkdir()
    monkeypatch.delenv("STRATA_PROJECT_DIR", raising=False)
    monkeypatch.chdir(ROOT)  # `prefect deploy` runs the build steps in the project directory
    # no Prefect server here (the steps only open a client to look for block and variable
    # references, and none are used): an address nothing listens on keeps Prefect from
    # starting a temporary one
    with temporary_settings(updates={PREFECT_API_URL: f"http://127.0.0.1:{free_port()}/api"}):
        built = asyncio.run(run_steps(project["build"], print_function=lambda *a, **k: None))
        pull = apply_values(project["pull"], built, remove_notset=False)  # what `prefect deploy` stores
        assert isinstance(pull, list) and "deployed-from.stdout" not in json.dumps(pull), pull
        monkeypatch.chdir(elsewhere)  # the worker runs flow runs in a temporary directory
        if override:
            monkeypatch.setenv("STRATA_PROJECT_DIR", str(checkout))
        pulled = asyncio.run(run_steps(pull, print_function=lambda *a, **k: None))
    expected = checkout if override else ROOT
    assert Path(pulled["directory"]) == expected.resolve()
    assert Path.cwd() == expected.resolve()
