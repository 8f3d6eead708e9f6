"""Ctrl-C and SIGTERM during a real `strata apply`: the run stops its work, then ends, then lets the lock go.

Each test starts `strata apply` as a user would (a subprocess with its own Prefect client),
signals it while a component is in the middle of changing something, and checks what the
issue asked for: the process ends within seconds (130 after SIGINT, 143 after SIGTERM), the
component is reported and recorded ``cancelled``, nothing is sent to the cloud after the
signal, and programs are stopped (terraform with SIGINT, saving its state and releasing its
lock; a command's whole process group). The cloud is moto in this process, served on one
port per `strata` process, so every request is attributed to the process that sent it and
timed against the signal.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from strataflow import cancel
from strataflow.backends.arm.backend import ArmBackend
from strataflow.errors import Cancelled
from tests.support.arm import (
    ArmSandbox,
    arm_sandbox,  # noqa: F401 - the session fixture, used by name
    make_run,
    vnet_template,
    write_template,
)
from tests.support.aws import ACCOUNT, PARAMETER_TEMPLATE, REGION
from tests.support.cli import cli
from tests.support.configs import command, unique, write_platform
from tests.support.processes import Background, Processes, alive
from tests.support.terraform import SLOW_MODULE, terraform_path
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("prefect_api")

AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}
STOPS_WITHIN = 10.0
"""Seconds from the signal to the end of `strata` (a CloudFormation wait stops at once; most of it is Prefect)."""


class _Emulator:
    """moto in this process, on one port per name, recording every request: (port name, time, action).

    CreateStack of ``stack`` leaves it CREATE_IN_PROGRESS (as AWS while it creates resources)
    until ``finish``. ``arm(port, pid, sig)`` sends ``sig`` to ``pid`` while the next
    DescribeStackEvents on ``port`` is being handled, before moto answers: that request is the
    last one its process sent before the signal, and any later request on ``port`` is one sent
    after it.
    """

    def __init__(self, stack: str, ports: Iterable[str]) -> None:
        from moto.cloudformation.models import CloudFormationBackend
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        self.stack_name = stack
        self.requests: list[tuple[str, float, str]] = []
        self.first_at: dict[str, float] = {}
        """Each port's first request, wall clock (to compare with records' times)."""
        self.signalled_at: float | None = None
        self._armed: tuple[str, int, int] | None = None
        self._guard = threading.Lock()
        self.backend_class = CloudFormationBackend
        self.original = CloudFormationBackend.create_stack
        emulator = self

        def create_stack(backend: Any, *args: Any, **kwargs: Any) -> Any:
            created = emulator.original(backend, *args, **kwargs)
            if created.name == emulator.stack_name:
                created.status = "CREATE_IN_PROGRESS"
            return created

        CloudFormationBackend.create_stack = create_stack  # type: ignore[method-assign]
        app = DomainDispatcherApplication(create_backend_app)
        self.quiet = logging.getLogger("werkzeug")
        self.level = self.quiet.level
        self.quiet.setLevel(logging.WARNING)  # one line per request otherwise
        self.servers = {
            name: make_server(
                "127.0.0.1", 0, self._recording(name, app), threaded=True, request_handler=MotoRequestHandler
            )
            for name in ports
        }
        for server in self.servers.values():
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def url(self, port: str) -> str:
        host, number = self.servers[port].server_address[:2]
        return f"http://{host!s}:{number}"

    def _recording(self, port: str, app: Callable[..., Any]) -> Callable[..., Any]:
        def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            form = urllib.parse.parse_qs(body.decode(errors="replace"))
            action = (form.get("Action") or [str(environ.get("HTTP_X_AMZ_TARGET", "?"))])[0]
            with self._guard:
                self.requests.append((port, time.monotonic(), action))
                self.first_at.setdefault(port, time.time())
                armed, fire = self._armed, False
                if armed is not None and armed[0] == port and action == "DescribeStackEvents":
                    self._armed, fire = None, True
            if fire and armed is not None:
                os.kill(armed[1], armed[2])
                self.signalled_at = time.monotonic()
            return app(environ, start_response)

        return middleware

    def arm(self, port: str, pid: int, sig: int) -> None:
        with self._guard:
            self._armed = (port, pid, sig)

    def sent(self, port: str, after: float = 0.0) -> list[tuple[float, str]]:
        with self._guard:
            return [(at, action) for name, at, action in self.requests if name == port and at > after]

    def stack(self) -> Any:
        from moto.cloudformation.models import cloudformation_backends

        return next(s for s in cloudformation_backends[ACCOUNT][REGION].stacks.values() if s.name == self.stack_name)

    def finish(self) -> None:
        self.stack().status = "CREATE_COMPLETE"

    def close(self) -> None:
        self.backend_class.create_stack = self.original  # type: ignore[method-assign]
        self.quiet.setLevel(self.level)
        for server in self.servers.values():
            server.shutdown()


def _record(env: str, name: str) -> Any:
    from strataflow import state

    return state.latest_components(env, "aws", [name]).get(name)


def _flow_runs(env: str) -> int:
    """How many flow runs of ``env`` exist (a run tags itself before it asks for the lock)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    with get_client(sync_client=True) as client:
        return len(client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"env:{env}"]))))


def _ended(run: Background, timeout: float) -> tuple[int, float]:
    """Wait for the `strata` process; its exit code and when it ended (monotonic)."""
    code = run.wait(timeout)
    return code, time.monotonic()


def _group(pgid: int) -> list[int]:
    """The live (not zombie) members of process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


class TestCloudFormation:
    """A signal while a stack is being created: the wait stops at once and leaves the stack to CloudFormation."""

    @pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
    def test_signal_while_a_stack_is_in_progress(self, tmp_path: Path, procs: Processes, sig: int) -> None:
        """`strata apply` signalled while it polls a CREATE_IN_PROGRESS stack ends within seconds (128 + the signal),
        sends nothing after the signal, records the stack cancelled, and a second apply waiting for the lock gets it
        only after the first's run is over, then finishes the stack."""
        env = unique("x")
        cloud = _Emulator(f"strata-{env}-stack", ["first", "second"])
        try:
            components = {
                "stack": {
                    "aws": {
                        "backend": "cloudformation",
                        "template": "templates/stack.yaml",
                        "parameters": {"Greeting": "hi"},
                    }
                }
            }
            configs = {
                port: write_platform(
                    tmp_path / port,
                    components,
                    {env: {"clouds": {"aws": {"region": REGION, "endpoint_url": cloud.url(port)}}}},
                    files={"templates/stack.yaml": PARAMETER_TEMPLATE},
                )
                for port in ("first", "second")
            }
            first = procs.strata("apply", env, "--config", str(configs["first"]), "--json", env=AWS)
            wait_until(
                lambda: (
                    any(a == "DescribeStackEvents" for _, a in cloud.sent("first")) or first.process.poll() is not None
                ),
                120,
                what="the first apply to poll the stack",
            )
            assert first.process.poll() is None, first.err()
            second = procs.strata(
                "apply", env, "--config", str(configs["second"]), "--wait-lock", "120", "--json", env=AWS
            )
            wait_until(lambda: _flow_runs(env) >= 2, 120, what="the second apply to start its run")
            time.sleep(2)  # it is asking for the lock now
            assert not cloud.sent("second"), "the second apply reached the cloud while the first held the lock"

            cloud.arm("first", first.pid, sig)
            wait_until(lambda: cloud.signalled_at is not None, 30, what="the signal to be sent on a poll")
            assert cloud.signalled_at is not None
            code, ended = _ended(first, 60)
            stopped = ended - cloud.signalled_at
            print(f"{signal.Signals(sig).name}: strata ended {stopped:.2f}s after the signal")

            assert code == 128 + sig, first.err()
            assert stopped < STOPS_WITHIN
            assert cloud.sent("first", after=cloud.signalled_at) == [], "a request was sent after the signal"
            assert "DeleteStack" not in [action for _, action in cloud.sent("first")]
            assert "Traceback" not in first.err()
            report = json.loads(first.out())
            assert report["status"] == "cancelled"
            stack = report["components"]["stack"]
            assert stack["status"] == "cancelled", stack
            assert "was left CREATE_IN_PROGRESS" in stack["error"] and "--resume" in stack["error"], stack["error"]
            record = _record(env, "stack")
            assert record is not None and record.status == "cancelled" and record.applied is None, record
            assert cloud.stack().status == "CREATE_IN_PROGRESS"  # neither deleted nor rolled back

            from strataflow import state

            run = next(r for r in state.run_history(env, "aws", 5) if r.flow_run_id == report["flow_run_id"])
            assert run.status == "cancelled" and run.finished_at is not None, run
            assert second.process.poll() is None, second.err()

            cloud.finish()  # CloudFormation completes the create the first run left
            assert second.wait(120) == 0, second.err()
            began = min(at for at, _ in cloud.sent("second"))
            print(f"the second apply's first request came {began - ended:+.2f}s after the first ended")
            assert began > cloud.signalled_at
            assert (
                cloud.first_at["second"] > run.finished_at.timestamp()
            )  # it got the lock once the first's run was over
            assert json.loads(second.out())["components"]["stack"]["status"] == "succeeded"
            assert len([a for _, a in cloud.sent("first") + cloud.sent("second") if a == "CreateStack"]) == 1
        finally:
            cloud.close()


class TestPrograms:
    """A signal while a program runs: its process group is stopped, and the component recorded cancelled."""

    def test_sigint_interrupts_terraform_which_saves_its_state(
        self, tmp_path: Path, procs: Processes, strata_home: Path
    ) -> None:
        """SIGINT during a terraform apply interrupts terraform (SIGINT to its group): it saves its state and
        releases its lock, the component is cancelled, and the next apply works."""
        terraform_path()
        env = unique("t")
        marker = 40 + int(env[-2:], 16) % 50  # a sleep length this test's provisioner alone uses
        module_dir = tmp_path / "cfg" / "modules" / "slow"
        config = write_platform(
            tmp_path / "cfg",
            {"slow": {"backend": "terraform", "module": "modules/slow", "parameters": {"seconds": "${var.seconds}"}}},
            {env: {"variables": {"seconds": marker}}},
        )
        module_dir.mkdir(parents=True)
        (module_dir / "main.tf").write_text(SLOW_MODULE)
        workdir = strata_home / "terraform" / env / "aws" / "slow"
        run = procs.strata("apply", env, "--config", str(config), "--json")

        def sleeping() -> list[int]:
            found = []
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    try:
                        if (entry / "cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", str(marker).encode()]:
                            found.append(int(entry.name))
                    except OSError:
                        continue
            return found

        wait_until(lambda: sleeping() or run.process.poll() is not None, 180, what="terraform to run the provisioner")
        assert run.process.poll() is None, run.err()
        assert (workdir / ".terraform.tfstate.lock.info").exists()  # terraform holds its state lock
        sleepers = sleeping()
        os.kill(run.pid, signal.SIGINT)
        signalled = time.monotonic()
        code, ended = _ended(run, 60)
        print(f"terraform: strata ended {ended - signalled:.2f}s after SIGINT")

        assert code == 130, run.err()
        assert ended - signalled < 10 + STOPS_WITHIN  # terraform's grace (10 s) at most, then the rest
        assert not [pid for pid in sleepers if alive(pid)]
        component = json.loads(run.out())["components"]["slow"]
        assert component["status"] == "cancelled", component
        assert "saved its state and released its state lock" in component["error"], component["error"]
        assert not (workdir / ".terraform.tfstate.lock.info").exists()
        saved = json.loads((workdir / "terraform.tfstate").read_text())
        assert [i["status"] for r in saved["resources"] for i in r["instances"]] == ["tainted"]
        record = _record(env, "slow")
        assert record is not None and record.status == "cancelled" and record.applied is None, record

        (config / "environments" / f"{env}.yaml").write_text(json.dumps({"variables": {"seconds": 0}}))
        again = cli("apply", env, "--config", str(config), "--json")
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["components"]["slow"]["status"] == "succeeded"

    def test_sigint_stops_a_command_and_its_whole_process_group(self, tmp_path: Path, procs: Processes) -> None:
        """SIGINT during a command component ends its process group (SIGTERM, then SIGKILL for a child that ignores
        SIGTERM) within the grace; the component is cancelled and `strata` exits 130."""
        from strataflow.backends.command.backend import KILL_GRACE

        env = unique("m")
        pids = tmp_path / "pids"
        script = f"(trap '' TERM; sleep 300) & echo $$ $! > {pids}; wait"
        config = write_platform(tmp_path / "cfg", {"work": command(script)}, {env: {}})
        run = procs.strata("apply", env, "--config", str(config), "--json")
        wait_until(
            lambda: (pids.exists() and pids.read_text().strip()) or run.process.poll() is not None,
            120,
            what="the command to start",
        )
        assert run.process.poll() is None, run.err()
        leader, child = (int(p) for p in pids.read_text().split())
        assert _group(leader) and alive(child)
        os.kill(run.pid, signal.SIGINT)
        signalled = time.monotonic()
        wait_until(lambda: not _group(leader), KILL_GRACE + 3, interval=0.05, what="the command's process group to end")
        gone = time.monotonic() - signalled
        code, ended = _ended(run, 60)
        print(f"command: group gone {gone:.2f}s and strata ended {ended - signalled:.2f}s after SIGINT")

        assert code == 130, run.err()
        assert ended - signalled < STOPS_WITHIN + KILL_GRACE
        assert not alive(child)
        component = json.loads(run.out())["components"]["work"]
        assert component["status"] == "cancelled", component
        assert "SIGTERM" in component["error"], component["error"]
        record = _record(env, "work")
        assert record is not None and record.status == "cancelled", record

    def test_a_second_sigint_exits_at_once_killing_the_command(self, tmp_path: Path, procs: Processes) -> None:
        """A second SIGINT while the first is handled exits at once (130), killing the command's group (a child that
        ignores SIGTERM included) and leaving the environment lock to expire."""
        from strataflow.backends.command.backend import KILL_GRACE

        env = unique("f")
        pids = tmp_path / "pids"
        script = f"(trap '' TERM; sleep 300) & echo $$ $! > {pids}; wait"
        config = write_platform(tmp_path / "cfg", {"work": command(script)}, {env: {}})
        run = procs.strata("apply", env, "--config", str(config), "--json")
        wait_until(
            lambda: (pids.exists() and pids.read_text().strip()) or run.process.poll() is not None,
            120,
            what="the command to start",
        )
        assert run.process.poll() is None, run.err()
        leader, child = (int(p) for p in pids.read_text().split())
        os.kill(run.pid, signal.SIGINT)
        wait_until(lambda: not alive(leader), 5, interval=0.05, what="the command's shell to stop on SIGTERM")
        assert alive(child)  # it ignores SIGTERM: the grace is not over
        os.kill(run.pid, signal.SIGINT)
        again = time.monotonic()
        code, ended = _ended(run, 10)
        print(f"second SIGINT: strata ended {ended - again:.2f}s after it")

        assert code == 130
        assert ended - again < 2 < KILL_GRACE
        wait_until(lambda: not _group(leader), 1, interval=0.05, what="the command's group to be killed")
        assert "SIGINT again: exiting now" in run.err()
        held = cli("apply", env, "--config", str(config))
        assert held.returncode == 4, held.stderr  # the lock was not released: its lease expires on its own


class TestArm:
    """A cancelled ARM apply stops waiting for the deployment at once and sends nothing more."""

    def test_cancel_while_a_deployment_runs(self, arm_sandbox: ArmSandbox, tmp_path: Path) -> None:  # noqa: F811
        """Cancelled while Azure deploys, apply raises Cancelled within a poll slice saying the deployment was left
        running, and sends no request after (the SDK poller's own polls included)."""
        arm_sandbox.emulator.faults.clear()
        backend = ArmBackend(polling_interval=2.0)  # the poller's next poll comes 2 s after the PUT
        run = make_run(arm_sandbox, tmp_path, write_template(tmp_path, "vnet", vnet_template()))
        group = str(getattr(run.target, "resource_group", ""))
        token = cancel.Token()
        outcome: dict[str, Any] = {}

        def apply() -> None:
            with cancel.scope(token):
                try:
                    outcome["value"] = backend.apply(run)
                except BaseException as exc:
                    outcome["error"] = exc

        thread = threading.Thread(target=apply, daemon=True)
        thread.start()
        deployments = f"{group}/providers/Microsoft.Resources/deployments/"
        wait_until(lambda: arm_sandbox.emulator.requests_to("PUT", deployments), 30, interval=0.02, what="the PUT")
        token.cancel("the test cancelled the run")
        cancelled_at, sent = time.monotonic(), len(arm_sandbox.emulator.requests_to())
        thread.join(5)
        stopped = time.monotonic() - cancelled_at
        print(f"arm: apply raised {stopped:.2f}s after the cancellation")

        assert not thread.is_alive() and stopped < 2
        error = outcome.get("error")
        assert isinstance(error, Cancelled), outcome
        assert f"in resource group {group} was left" in str(error) and "--resume" in str(error), error
        time.sleep(3)  # past the poller's next poll
        assert len(arm_sandbox.emulator.requests_to()) == sent, arm_sandbox.emulator.requests_to()[sent:]
