"""Fault injection for reliability tests: platforms, background `strata` processes, process checks,
a separate Prefect server, and everything the Prefect API holds about a run (to grep for secrets).

Every process started here is tracked by ``Processes`` and ended by its id (its own process
group), never by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
AS_USER = {"PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL"}
"""What `strata` sets when the user has not (the test session asks Prefect for WARNING lines)."""


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`strata ARGS` in a subprocess, with the console a user gets; fails the test on a traceback."""
    from tests.support.cli import strata

    result = strata(*args, env={**AS_USER, **(env or {})}, timeout=timeout)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def unique(prefix: str = "r") -> str:
    """A fresh environment name (tests share one Prefect server)."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def write_platform(
    root: Path, components: dict[str, Any], environments: dict[str, Any], files: dict[str, str] | None = None
) -> Path:
    """A config directory: ``components.yaml``, ``environments/<name>.yaml`` and extra ``files``."""
    (root / "environments").mkdir(parents=True, exist_ok=True)
    (root / "components.yaml").write_text(yaml.safe_dump({"components": components}, sort_keys=False))
    for name, body in environments.items():
        (root / "environments" / f"{name}.yaml").write_text(yaml.safe_dump(body or {}) if body else "{}\n")
    for relative, text in (files or {}).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def command(apply: str, depends_on: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """A ``command`` component."""
    found: dict[str, Any] = {"backend": "command", "apply": apply, **extra}
    if depends_on:
        found["depends_on"] = depends_on
    return found


def marked(name: str, marks: Path, before: str = "", after: str = "") -> str:
    """A command that appends a line to ``marks/<name>`` when it has done its work."""
    return f"{before}{'; ' if before else ''}echo $STRATA_ENV >> {marks / name}{'; ' if after else ''}{after}"


def count(marks: Path, name: str) -> int:
    path = marks / name
    return len(path.read_text().splitlines()) if path.exists() else 0


def run_flow(config: Path, env: str, **params: Any) -> dict[str, Any]:
    """The orchestrator flow run in this process; its report."""
    from flows.orchestrate import orchestrate

    state = orchestrate(env=env, config_dir=str(config), return_state=True, **params)
    report = state.result(raise_on_failure=False)
    assert isinstance(report, dict), report
    return report


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {name: c["status"] for name, c in report["components"].items()}


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.25, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


# --- processes ----------------------------------------------------------------------------------


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@dataclass
class Background:
    """A `strata` command running in the background, its output in files."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    rusage: Any = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait(self, timeout: float) -> int:
        """Wait for the command (reaping it with wait4, so its peak RSS is known); its exit code."""
        deadline = time.monotonic() + timeout
        while self.process.returncode is None:
            pid, status, rusage = os.wait4(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.rusage = rusage
                self.process.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"strata (pid {self.pid}) still running after {timeout:g}s; stderr:\n{self.err()}")
            time.sleep(0.1)
        return self.process.returncode

    def out(self) -> str:
        return self.stdout.read_text(errors="replace")

    def err(self) -> str:
        return self.stderr.read_text(errors="replace")


@dataclass
class Processes:
    """Starts `strata` commands in the background and ends, by process group, those still running."""

    directory: Path
    started: list[Background] = field(default_factory=list)

    def strata(self, *args: str, env: dict[str, str] | None = None) -> Background:
        index = len(self.started)
        stdout, stderr = self.directory / f"strata-{index}.out", self.directory / f"strata-{index}.err"
        with open(stdout, "wb") as out, open(stderr, "wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "strataflow", *args],
                cwd=ROOT,
                env={**os.environ, **AS_USER, **(env or {})},
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        job = Background(process, stdout, stderr)
        self.started.append(job)
        return job

    def end_all(self) -> None:
        for job in self.started:
            if job.process.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(job.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError, AssertionError):
                    job.wait(10)


# --- a separate Prefect server ----------------------------------------------------------------


def start_server(home: Path, port: int | None = None) -> dict[str, Any]:
    """A local Prefect server of its own under ``home`` (as `strata` starts one), in a subprocess."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["STRATA_HOME"] = str(home)
    if port:
        env["STRATA_SERVER_PORT"] = str(port)
    code = "from strataflow import server; server.ensure_api(announce=False)"
    subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True, timeout=120, capture_output=True)
    info = json.loads((home / "server.json").read_text())
    assert info.get("port") == port or port is None, info
    return dict(info)


def stop_server(home: Path) -> None:
    """Stop the server (and sandboxes) under ``home``: their pids are in its state files."""
    env = {**os.environ, "STRATA_HOME": str(home)}
    code = "from strataflow import server; server.stop()"
    subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True, timeout=60, capture_output=True)


# --- everything the Prefect API holds about flow runs -------------------------------------------------


def flow_run_family(client: Any, flow_run_id: str) -> list[str]:
    """The flow run and its subflow runs."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    found = [flow_run_id]
    children = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[uuid.UUID(flow_run_id)]))
    )
    for child in children:
        found.extend(flow_run_family(client, str(child.id)))
    return found


def everything(flow_run_ids: list[str], artifact_keys: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    """Logs, artifacts (by flow run and by key, every version), flow and task run states and parameters
    of the flow runs (and their subflows), as the Prefect API returns them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )

    found: dict[str, Any] = {"logs": [], "artifacts": [], "flow_runs": [], "task_runs": []}
    with get_client(sync_client=True) as client:
        ids = [i for run in flow_run_ids for i in flow_run_family(client, run)]
        uuids = [uuid.UUID(i) for i in ids]
        offset = 0
        while True:
            page = client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=uuids)), limit=200, offset=offset
            )
            found["logs"].extend(log.model_dump(mode="json") for log in page)
            if len(page) < 200:
                break
            offset += 200
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=uuids))
        )
        if artifact_keys:
            artifacts += client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=list(artifact_keys)))
            )
        found["artifacts"] = [a.model_dump(mode="json") for a in artifacts]
        for run in client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=uuids))):
            found["flow_runs"].append(run.model_dump(mode="json"))
            for state in client.read_flow_run_states(run.id):
                found["flow_runs"].append(state.model_dump(mode="json"))
        for task_run in client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=uuids))):
            found["task_runs"].append(task_run.model_dump(mode="json"))
    return found


@contextlib.contextmanager
def api(url: str) -> Iterator[None]:
    """Talk to the Prefect API at ``url`` in this process for a while."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield
