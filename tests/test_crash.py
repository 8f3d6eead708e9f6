"""Crashes: `strata apply` killed with SIGKILL mid-run, and the Prefect server restarted mid-run.

The kill is real (SIGKILL to the `strata` process, while a command sleeps and a CloudFormation
stack is still CREATE_IN_PROGRESS); the resume waits for the dead run's lease to expire
(60 s, Prefect's minimum) and finishes the work without redoing what finished. The server
restart uses a Prefect server of its own (separate STRATA_HOME), stopped and started again
on the same port and database while a run goes on.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.aws import ACCOUNT, PARAMETER_TEMPLATE, REGION
from tests.support.cli import cli
from tests.support.configs import command, count, unique, write_platform
from tests.support.prefect_api import api, statuses
from tests.support.processes import Processes, start_server, stop_server
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("prefect_api")



def marked(name: str, marks: Path, sleep: float = 0.0, start: bool = False) -> dict[str, Any]:
    """A command component appending a line to ``marks/<name>`` when done (and to ``<name>.start`` first)."""
    steps = [f"echo $STRATA_ENV >> {marks}/{name}.start"] if start else []
    steps += [f"sleep {sleep:g}"] if sleep else []
    steps.append(f"echo $STRATA_ENV >> {marks}/{name}")
    return command("; ".join(steps))


def records(env: str, names: list[str]) -> dict[str, Any]:
    from strataflow import state

    return state.latest_components(env, "aws", names)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _SlowCloudFormation:
    """moto in this process, serving HTTP; CreateStack of ``name`` leaves it CREATE_IN_PROGRESS until ``finish``."""

    def __init__(self, name: str) -> None:
        from moto.cloudformation.models import CloudFormationBackend
        from moto.server import ThreadedMotoServer

        self.name, self.creates, self.describes = name, [], 0
        self.backend_class = CloudFormationBackend
        self.originals = (CloudFormationBackend.create_stack, CloudFormationBackend.describe_stacks)
        slow = self

        def create_stack(backend: Any, *args: Any, **kwargs: Any) -> Any:
            stack = slow.originals[0](backend, *args, **kwargs)
            if stack.name == slow.name:
                slow.creates.append(stack.stack_id)
                stack.status = "CREATE_IN_PROGRESS"  # as AWS while it creates the resources
            return stack

        def describe_stacks(backend: Any, name_or_stack_id: str) -> Any:
            found = slow.originals[1](backend, name_or_stack_id)
            if any(s.name == slow.name for s in found):
                slow.describes += 1
            return found

        CloudFormationBackend.create_stack = create_stack  # type: ignore[method-assign]
        CloudFormationBackend.describe_stacks = describe_stacks  # type: ignore[method-assign]
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.url = f"http://{host}:{port}"

    def stack(self) -> Any:
        from moto.cloudformation.models import cloudformation_backends

        return next(s for s in cloudformation_backends[ACCOUNT][REGION].stacks.values() if s.name == self.name)

    def finish(self) -> None:
        self.stack().status = "CREATE_COMPLETE"

    def close(self) -> None:
        self.backend_class.create_stack, self.backend_class.describe_stacks = self.originals  # type: ignore[method-assign]
        self.server.stop()


class TestKilledApply:
    """A SIGKILLed apply is resumed: nothing finished is redone, nothing in flight was recorded, the lock comes back."""

    def test_sigkill_then_resume(self, tmp_path: Path, procs: Processes) -> None:
        """Kill `strata apply` while `c` sleeps and a stack is CREATE_IN_PROGRESS; `--resume --wait-lock` completes the rest."""
        env = unique("k")
        marks = tmp_path / "marks"
        marks.mkdir()
        cloud = _SlowCloudFormation(f"strata-{env}-stack")
        try:
            components = {
                "a": marked("a", marks),
                "b": marked("b", marks, sleep=0.5),
                "e": marked("e", marks),
                "c": {**marked("c", marks, sleep=20, start=True), "depends_on": ["a"]},
                "d": {**marked("d", marks), "depends_on": ["c"]},
                "stack": {
                    "aws": {
                        "backend": "cloudformation",
                        "template": "templates/stack.yaml",
                        "parameters": {"Greeting": "hi"},
                    }
                },
            }
            config = write_platform(
                tmp_path / "cfg",
                components,
                {env: {"clouds": {"aws": {"region": REGION, "endpoint_url": cloud.url}}}},
                files={"templates/stack.yaml": PARAMETER_TEMPLATE},
            )
            aws = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}
            names = list(components)
            run = procs.strata("apply", env, "--config", str(config), env=aws)
            wait_until(
                lambda: (
                    {"a", "b", "e"} <= {n for n, r in records(env, names).items() if r.status == "succeeded"}
                    and (marks / "c.start").exists()
                    and cloud.creates
                ),
                90,
                what="a, b and e to be recorded, c to start and the stack to be created",
            )
            time.sleep(1)  # the stack's task is polling it now
            os.kill(run.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            assert run.wait(10) == -signal.SIGKILL

            # between the kill and the resume: nothing in flight recorded, the lock still held by the dead run
            status = json.loads(cli("status", env, "--config", str(config), "--json").stdout)["components"]
            assert {n: status[n]["state"] for n in names} == {
                "a": "applied",
                "b": "applied",
                "e": "applied",
                "c": "never",
                "d": "never",
                "stack": "never",
            }
            refused = cli("apply", env, "--config", str(config), env=aws)
            assert refused.returncode == 4, refused.stderr
            assert cloud.stack().status == "CREATE_IN_PROGRESS"

            describes = cloud.describes
            resume = procs.strata(
                "apply", env, "--config", str(config), "--resume", "--wait-lock", "120", "--json", env=aws
            )
            wait_until(
                lambda: cloud.describes >= describes + 3 or resume.process.poll() is not None,
                150,
                what="the resume to wait on the stack in progress",
            )
            cloud.finish()  # CloudFormation completes the create the dead run started
            code = resume.wait(150)
            waited = time.monotonic() - killed_at
            print(f"resumed {waited:.0f}s after the kill (lease {60}s)")
            assert code == 0, resume.err()
            report = json.loads(resume.out())
            assert statuses(report) == {"c": "succeeded", "d": "succeeded", "stack": "succeeded"}
            assert report["components"]["stack"]["outputs"]["Greeting"] == "hi"
            assert {n: count(marks, n) for n in ("a", "b", "e", "d")} == {"a": 1, "b": 1, "e": 1, "d": 1}
            # c's command outlived the killed strata (its own process group) and finished on its own; the resume ran it again
            assert count(marks, "c") in (1, 2)
            assert len(cloud.creates) == 1, "the stack was created again instead of adopted"
            assert cloud.stack().stack_id == cloud.creates[0] and cloud.stack().status == "CREATE_COMPLETE"
            final = records(env, names)
            assert {n: final[n].status for n in names} == dict.fromkeys(names, "succeeded")
        finally:
            cloud.close()


class TestServerRestart:
    """The Prefect server restarting mid-run leaves a consistent state that a resume completes."""

    def test_restart_mid_run(self, tmp_path: Path, procs: Processes) -> None:
        """Stop and start the run's server while `c` runs: the run ends with a clear message or succeeds, finished
        components stay recorded, nothing is recorded that did not finish, and `--resume` completes the rest."""
        home = tmp_path / "home"
        port = free_port()
        info = start_server(home, port)
        url = info["url"] + "/api"
        own = {"STRATA_HOME": str(home), "PREFECT_API_URL": url, "PREFECT_UI_URL": info["url"]}
        env = unique("r")
        marks = tmp_path / "marks"
        marks.mkdir()
        components = {
            "a": marked("a", marks),
            "b": marked("b", marks),
            "c": {**marked("c", marks, sleep=8, start=True), "depends_on": ["a"]},
            "d": {**marked("d", marks), "depends_on": ["c"]},
        }
        names = list(components)
        config = write_platform(tmp_path / "cfg", components, {env: {}})
        try:
            run = procs.strata("apply", env, "--config", str(config), "--json", env=own)
            with api(url):
                wait_until(
                    lambda: (
                        {"a", "b"} <= {n for n, r in records(env, names).items() if r.status == "succeeded"}
                        and (marks / "c.start").exists()
                    ),
                    90,
                    what="a and b to be recorded",
                )
            stop_server(home)
            down = time.monotonic()
            restarted = start_server(home, port)
            print(f"server down for {time.monotonic() - down:.1f}s")
            assert restarted["port"] == port
            code = run.wait(180)
            err = run.err()
            assert code in (0, 1), err
            assert "Traceback" not in err
            if code == 1:
                assert "Prefect API" in err or json.loads(run.out())["status"] == "failed", err

            with api(url):
                after = records(env, names)
            assert after["a"].status == "succeeded" and after["b"].status == "succeeded"
            for name in names:  # a record of success only for what ran to the end
                if name in after and after[name].status == "succeeded":
                    assert count(marks, name) >= 1, name

            resume = cli("apply", env, "--config", str(config), "--resume", "--wait-lock", "120", "--json", env=own)
            assert resume.returncode == 0, resume.stderr
            with api(url):
                final = records(env, names)
            assert {n: final[n].status for n in names} == dict.fromkeys(names, "succeeded")
            assert (count(marks, "a"), count(marks, "b"), count(marks, "d")) == (1, 1, 1)
            status = json.loads(cli("status", env, "--config", str(config), "--json", env=own).stdout)
            assert {n: c["state"] for n, c in status["components"].items()} == dict.fromkeys(names, "applied")
        finally:
            procs.end_all()
            stop_server(home)
