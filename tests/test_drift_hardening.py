"""Issue 16, items 5 and 8: drift under the lock, with secrets resolved, compared by meaning, and its exit code.

- A drift check started during an apply waits for the environment's lock (or exits 4 without
  ``wait_lock``) and records its result on the record that apply wrote, never on the copy it
  would have read before (a scripted in-memory backend holds the apply and the check open).
- On the sandbox (moto), a CloudFormation stack with a list, a comma-delimited list, a number,
  a secret (not NoEcho) and a NoEcho parameter is in sync right after its apply; changed by hand,
  `strata drift` exits 6 naming the secret parameters without any value, and no value shows in
  the drift report, its artifact, the records or `strata status`.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from strataflow.backends.base import ComponentRun, Drift, Outcome
from strataflow.backends.memory import FakeBackend, installed
from strataflow.errors import LockedError
from tests.support.cli import cli
from tests.support.configs import command, unique, write_platform
from tests.support.prefect_api import everything, run_flow

pytestmark = pytest.mark.usefixtures("prefect_api")


@dataclass
class HeldOpen(FakeBackend):
    """The second apply waits for ``release``; a drift check waits until that apply has ended (``applied``)."""

    applying: threading.Event = field(default_factory=threading.Event)
    applied: threading.Event = field(default_factory=threading.Event)
    checking: threading.Event = field(default_factory=threading.Event)

    def apply(self, run: ComponentRun) -> Outcome:
        if self.count("apply", run.component) >= 1:
            self.applying.set()
            self.release.wait(120)
        return super().apply(run)

    def drift(self, run: ComponentRun) -> Drift:
        self.checking.set()
        self.applied.wait(120)  # a check that read the records before the apply ended holds a stale copy here
        return Drift(supported=True, drifted=True, resources=[f"{run.component} (Fake): MODIFIED"])


def _drift(config: Path, env: str, wait_lock: float) -> Any:
    from flows.drift import drift

    state = drift(env=env, config_dir=str(config), wait_lock=wait_lock, return_state=True)
    return state.result(raise_on_failure=False)


class TestDriftDuringAnApply:
    def test_drift_waits_for_the_apply_and_never_restores_an_older_record(self, tmp_path: Path) -> None:
        """While an apply holds the environment, a drift check exits locked or waits; it then records the drift on the
        record that apply wrote, which stays the latest (the check never writes back the record it read before)."""
        from strataflow import state

        env = unique("d")
        config = write_platform(tmp_path / "cfg", {"box": command("true")}, {env: {}})
        fake = HeldOpen()
        with installed(fake):
            first = run_flow(config, env)
            assert first["status"] == "succeeded", first
            second: dict[str, Any] = {}
            applying = threading.Thread(target=lambda: second.update(run_flow(config, env, force=True)))
            applying.start()
            try:
                assert fake.applying.wait(60), "the second apply did not start"
                assert isinstance(_drift(config, env, 0), LockedError)  # no wait: exit 4, nothing checked
                assert not fake.checking.is_set()
                checked: dict[str, Any] = {}
                checking = threading.Thread(target=lambda: checked.update(result=_drift(config, env, 120)))
                checking.start()
                checking.join(3)  # long enough for a check that does not wait to read the records
            finally:
                fake.release.set()
                applying.join(120)
                fake.applied.set()
            checking.join(120)
        assert second["status"] == "succeeded", second
        assert checked["result"]["components"]["box"]["status"] == "drifted", checked
        latest = state.latest_components(env, "aws", ["box"])["box"]
        assert latest.applied is not None and latest.applied.flow_run_id == second["flow_run_id"]
        assert latest.drift is not None and latest.drift.resources == ["box (Fake): MODIFIED"]
        assert [r.flow_run_id for r in state.component_history(env, "aws", "box", 10)][1:] == [
            second["flow_run_id"],
            first["flow_run_id"],
        ]


TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Names: {Type: CommaDelimitedList}
  Zones: {Type: "List<String>"}
  Count: {Type: Number}
  Token: {Type: String}
  Hidden: {Type: String, NoEcho: true}
Resources:
  Setting:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub /strata-test/${AWS::StackName}/names
      Type: String
      Value: !Join [",", !Ref Names]
  Zoned:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub /strata-test/${AWS::StackName}/zones
      Type: String
      Value: !Join [",", !Ref Zones]
  Other:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub /strata-test/${AWS::StackName}/other
      Type: String
      Value: !Join ["-", [!Ref Count, !Ref Token, !Ref Hidden]]
"""


class TestSandboxDrift:
    def test_in_sync_after_apply_then_secret_drift_shown_without_values(self, tmp_path: Path) -> None:
        """Right after `strata apply --sandbox`, `strata drift --sandbox` exits 0 (lists, numbers and secrets compared by
        meaning); after an update-stack by hand it exits 6, naming the secret parameters with no value anywhere."""
        from prefect.blocks.system import Secret

        from strataflow import server, state

        env = unique("d")
        secret = f"it's \"{uuid.uuid4().hex}\" $x"
        name = f"strata-test-{uuid.uuid4().hex[:8]}"
        Secret(value=secret).save(name)
        parameters = {
            "Names": ["a", "b"],
            "Zones": "us-east-1a, us-east-1b",
            "Count": 3,
            "Token": f"${{secret.{name}}}",
            "Hidden": f"${{secret.{name}}}",
        }
        stack = {"backend": "cloudformation", "template": "stack.yaml", "parameters": parameters}
        config = write_platform(
            tmp_path / "cfg",
            {"stack": stack},
            {env: {"clouds": {"aws": {"region": "us-east-1"}}}},
            files={"stack.yaml": TEMPLATE},
        )
        common = ("--config", str(config), "--sandbox", "--json")
        applied = cli("apply", env, *common)
        assert applied.returncode == 0, applied.stderr
        clean = cli("drift", env, *common)
        assert clean.returncode == 0, clean.stdout + clean.stderr
        assert json.loads(clean.stdout)["components"]["stack"] == {"status": "in sync", "resources": []}

        box = server.sandbox("aws")
        cloudformation = boto3.client(
            "cloudformation", region_name="us-east-1", endpoint_url=box["endpoint_url"], **box["credentials"]
        )
        tampered = {"Token": f"tok-{uuid.uuid4().hex}", "Hidden": f"hid-{uuid.uuid4().hex}"}
        cloudformation.update_stack(
            StackName=f"strata-{env}-stack",
            UsePreviousTemplate=True,
            Parameters=[
                *({"ParameterKey": k, "UsePreviousValue": True} for k in ("Names", "Zones", "Count")),
                *({"ParameterKey": k, "ParameterValue": v} for k, v in tampered.items()),
            ],
        )
        found = cli("drift", env, *common)
        assert found.returncode == 6, found.stdout + found.stderr
        report = json.loads(found.stdout)
        assert report["drifted"] == ["stack"]
        assert sorted(report["components"]["stack"]["resources"]) == [
            f"parameter {key} (AWS::CloudFormation::Stack): the deployed value differs from the applied one "
            "(secret: not shown)"
            for key in ("Hidden", "Token")
        ]
        assert f"{env} (aws) drifted: stack" in found.stderr
        status = cli("status", env, "--config", str(config), "--sandbox", "--json")
        records = [r.model_dump(mode="json") for r in state.component_history(env, "aws", "stack", 10, sandbox=True)]
        prefect = everything([report_id(clean), report_id(found)], [f"strata-drift-{env}-aws"])
        produced = json.dumps([found.stdout, found.stderr, clean.stdout, status.stdout, records, prefect])
        for value in (uuid_of(secret), *tampered.values()):
            assert value not in produced, value
        assert records[0]["drift"]["drifted"] is True


def report_id(result: Any) -> str:
    """The flow run of a `strata drift --json`."""
    return str(json.loads(result.stdout)["flow_run_id"])


def uuid_of(secret: str) -> str:
    return secret.split('"')[1]
