"""Issue 17, item 2: a parameter the template declares secure (CloudFormation NoEcho, ARM securestring/secureObject,
Bicep @secure(), Terraform sensitive) is kept like a secret: masked in logs, reports, records, artifacts and errors,
shown as `***`, and entering the digest only as a salted hash."""

from __future__ import annotations

import json
import re
import shutil
import textwrap
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from strataflow import resolve as resolve_module
from strataflow.backends import registry
from strataflow.backends.base import ComponentRun, Outcome, Untracked
from strataflow.errors import DeploymentFailed
from strataflow.load import load_platform
from strataflow.records import MASK
from strataflow.resolve import resolve
from strataflow.runner import Job, execute
from tests.support.cli import cli
from tests.support.configs import unique, write_tree
from tests.support.prefect_api import everything

FIXTURES = Path(__file__).parent / "fixtures" / "templateparams"


def platform_with(root: Path, components: str, environment: str = "{}\n", copies: dict[str, Path] | None = None) -> Path:
    for relative, source in (copies or {}).items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, root / relative)
        else:
            shutil.copyfile(source, root / relative)
    return write_tree(root, {"components.yaml": textwrap.dedent(components), "environments/dev.yaml": environment})


CASES = {
    "cloudformation-yaml": (
        "backend: cloudformation\n    template: table.yaml\n"
        "    parameters: {BucketName: logs, HashKeyElementName: id, Subnets: s, VpcId: v, DbPassword: VALUE}",
        {"table.yaml": FIXTURES / "cloudformation" / "table.yaml"},
        "DbPassword",
    ),
    "cloudformation-json": (
        "backend: cloudformation\n    template: queue.json\n    parameters: {QueueName: jobs, Secret: VALUE}",
        {"queue.json": FIXTURES / "cloudformation" / "queue.json"},
        "Secret",
    ),
    "arm-securestring-any-case": (
        "backend: arm\n    template: storage.json\n"
        "    parameters: {storageName: st1, objectId: o, network: {}, AdminPassword: VALUE}",
        {"storage.json": FIXTURES / "arm" / "storage.json"},
        "AdminPassword",
    ),
    "arm-secureobject": (
        "backend: arm\n    template: storage.json\n"
        "    parameters: {storageName: st1, objectId: o, network: {}, adminPassword: p, settings: {key: VALUE}}",
        {"storage.json": FIXTURES / "arm" / "storage.json"},
        "settings",
    ),
    "bicep-secure": (
        "backend: arm\n    template: main.bicep\n"
        "    parameters: {storageName: st1, objectId: o, network: {}, mode: Complete, adminPassword: VALUE}",
        {"main.bicep": FIXTURES / "arm" / "storage.bicep"},
        "adminPassword",
    ),
    "terraform-sensitive": (
        "backend: terraform\n    module: module\n"
        "    parameters: {zone_name: z, account_id: a, untyped: u, api_token: VALUE}",
        {"module": FIXTURES / "terraform" / "module"},
        "api_token",
    ),
}


class TestResolve:
    @pytest.mark.parametrize("case", sorted(CASES))
    def test_each_backends_secure_parameter_is_shown_masked_and_kept_secret(self, case: str, tmp_path: Path) -> None:
        """The parameter each template declares secure is `***` in the shown (recorded) parameters, its value is among
        the run's secrets (masked everywhere), and the backend still gets the value."""
        body, copies, key = CASES[case]
        value = f"tok-{uuid.uuid4().hex}"
        root = platform_with(tmp_path, f"components:\n  c:\n    {body.replace('VALUE', value)}\n", copies=copies)
        platform = load_platform(root)
        resolved = resolve(platform, platform.environment("dev"), "aws", "c", {})
        assert resolved.shown_parameters[key] == MASK
        assert value in resolved.secrets
        assert value in json.dumps(resolved.parameters)
        assert value not in json.dumps(resolved.shown_parameters)
        masked = {k for k, v in resolved.shown_parameters.items() if v == MASK}
        assert key in masked and masked <= resolved.secure

    def test_digest_follows_the_value_through_a_salted_hash_never_the_value(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A new secure value (here through a variable) changes the digest, the same value keeps it, and what the digest
        is computed over never holds the value: a PBKDF2 hash salted per environment, component and parameter."""
        seen: list[str] = []
        real_digest = resolve_module.config_digest

        def spy(bundle: str, inputs: Any) -> str:
            seen.append(json.dumps(inputs, default=str))
            return real_digest(bundle, inputs)

        monkeypatch.setattr(resolve_module, "config_digest", spy)
        root = platform_with(
            tmp_path,
            "components:\n  q:\n    backend: cloudformation\n    template: queue.json\n"
            "    parameters: {QueueName: jobs, Secret: '${var.token}'}\n",
            "variables: {token: first-s3cret}\n",
            {"queue.json": FIXTURES / "cloudformation" / "queue.json"},
        )

        def digest(token: str, env_name: str = "dev") -> str:
            (root / "environments" / f"{env_name}.yaml").write_text(f"variables: {{token: {token}}}\n")
            platform = load_platform(root)
            return resolve(platform, platform.environment(env_name), "aws", "q", {}, bundle="b").digest

        first = digest("first-s3cret")
        assert digest("first-s3cret") == first
        assert digest("second-s3cret") != first
        assert digest("first-s3cret", "prod") != first  # salted: one value hashes differently elsewhere
        assert seen and not any("s3cret" in text for text in seen)
        assert all('"Secret": {"secure": "' in text for text in seen)


class Echo(Untracked):
    """A backend that logs its parameters, prints them in its summary and outputs, and fails when told to."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def _run(self, run: ComponentRun) -> Outcome:
        text = json.dumps(run.parameters)
        run.log(f"deploying with {text}")
        if self.fail:
            raise DeploymentFailed(f"rejected parameters {text}")
        return Outcome(changes=1, outputs={"echo": run.parameters.get("Secret"), "plain": "ok"}, summary=[f"+ {text}"])

    plan = apply = destroy = _run


@contextmanager
def serving(backend: Echo) -> Iterator[None]:
    """CloudFormation components deployed by ``backend`` in this process (the spec, and its template, stay)."""
    previous = registry.use("cloudformation", backend)
    try:
        yield
    finally:
        registry.use("cloudformation", previous)


class TestRunner:
    def _job(self, root: Path) -> Job:
        platform = load_platform(root)
        return Job(platform, platform.environment("dev"), "aws", "q", "apply", {})

    def _root(self, root: Path, value: str) -> Path:
        return platform_with(
            root,
            f"components:\n  q:\n    backend: cloudformation\n    template: queue.json\n"
            f"    parameters: {{QueueName: jobs, Secret: {value}}}\n",
            copies={"queue.json": FIXTURES / "cloudformation" / "queue.json"},
        )

    def test_secure_value_is_masked_in_logs_summary_report_record_and_outputs(self, tmp_path: Path) -> None:
        """What the backend prints or returns holding the value is masked; the record shows `***`; an output carrying
        the value is stored masked, like a sensitive one."""
        value = f"noecho-{uuid.uuid4().hex}"
        lines: list[str] = []
        with serving(Echo()):
            result = execute(self._job(self._root(tmp_path, value)), log=lines.append)
        assert result.report.status == "succeeded", result.report.error
        assert result.record is not None and result.record.applied is not None
        produced = json.dumps(
            [lines, result.summary, result.report.model_dump(mode="json"), result.record.model_dump(mode="json")]
        )
        assert value not in produced
        assert result.record.applied.parameters["Secret"] == MASK
        assert result.report.outputs == {"echo": MASK, "plain": "ok"}
        assert "echo" in result.record.applied.sensitive
        assert any("deploying with" in line and MASK in line for line in lines)
        assert result.outputs["echo"] == value  # downstream still gets it

    def test_secure_value_is_masked_in_a_failure(self, tmp_path: Path) -> None:
        """A backend error quoting the value is masked in the report, the record and the log."""
        value = f"noecho-{uuid.uuid4().hex}"
        lines: list[str] = []
        with serving(Echo(fail=True)):
            result = execute(self._job(self._root(tmp_path, value)), log=lines.append)
        assert result.report.status == "failed"
        assert result.report.error is not None and "rejected parameters" in result.report.error
        record = result.record.model_dump(mode="json") if result.record else None
        assert value not in json.dumps([lines, result.report.model_dump(mode="json"), record])


# --- through a real Prefect server ---------------------------------------------------------------------------

MODULE = """\
variable "name" {
  type = string
}

variable "password" {
  type      = string
  sensitive = true
}

variable "token" {
  type      = string
  sensitive = true
}

output "name" {
  value = var.name
}

output "password_length" {
  value = nonsensitive(length(var.password))
}
"""


def _raw_files(home: Path) -> dict[str, str]:
    """Every file under STRATA_HOME, raw (the SQLite database and its write-ahead log among them), but terraform's
    working copies (its state is the user's, as with any terraform)."""
    return {
        f"file {path}": path.read_bytes().decode("latin-1")
        for path in home.rglob("*")
        if path.is_file() and "terraform" not in path.relative_to(home).parts
    }


@pytest.mark.usefixtures("prefect_api")
class TestNowhere:
    @pytest.mark.skipif(shutil.which("terraform") is None, reason="needs the terraform CLI")
    def test_secure_values_appear_in_no_log_artifact_record_report_or_database_file(
        self, tmp_path: Path, strata_home: Path
    ) -> None:
        """A Terraform `sensitive` variable given in the environment file and one given through a variable are in no
        log, artifact, state, record, report, status, history, plan output or file under STRATA_HOME; the apply
        worked with them, and an unchanged plan says `unchanged`."""
        from strataflow import records, state

        env = unique("s")
        password, token = f"pw-{uuid.uuid4().hex}", f"tk-{uuid.uuid4().hex}"
        config = platform_with(
            tmp_path / "cfg",
            """\
            components:
              db:
                backend: terraform
                module: modules/db
                parameters: {name: app, token: "${var.token}"}
            """,
        )
        (config / "environments" / "dev.yaml").unlink()
        write_tree(
            config,
            {
                "modules/db/main.tf": MODULE,
                f"environments/{env}.yaml": (
                    f"variables: {{token: {token}}}\ncomponents:\n  db:\n    parameters: {{password: {password}}}\n"
                ),
            },
        )
        report_file = tmp_path / "report.json"
        applied = cli("apply", env, "--config", str(config), "--json", "--report", str(report_file))
        assert applied.returncode == 0, applied.stderr
        planned = cli("plan", env, "--config", str(config), "--json")
        status = cli("status", env, "--config", str(config), "--json")
        history = cli("history", env, "--config", str(config), "--json")
        runs = [json.loads(applied.stdout)["flow_run_id"], json.loads(planned.stdout)["flow_run_id"]]
        keys = [records.component_key(env, "aws", "db"), records.run_key(env, "aws"), f"strata-report-{env}-aws"]
        components = [r.model_dump(mode="json") for r in state.component_history(env, "aws", "db", 20)]
        produced = {
            "prefect api": json.dumps(everything(runs, keys)),
            "cli output": "".join(r.stdout + r.stderr for r in (applied, planned, status, history)),
            "report": report_file.read_text(),
            "component records": json.dumps(components),
            **_raw_files(strata_home),
        }
        leaks = [where for where, text in produced.items() for value in (password, token) if value in text]
        assert not leaks, leaks

        # not vacuous: the values reached terraform, the record shows them masked, and plan knows nothing changed
        report = json.loads(report_file.read_text())
        assert report["components"]["db"]["outputs"]["password_length"] == len(password)
        assert components[0]["applied"]["parameters"] == {"name": "app", "token": MASK, "password": MASK}
        assert json.loads(planned.stdout)["components"]["db"]["status"] == "unchanged"


NOECHO = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Password: {Type: String, NoEcho: true}
Resources:
  Setting:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub "/strata-test/${AWS::StackName}"
      Type: String
      Value: !Ref Password
Outputs:
  Setting:
    Value: !Ref Setting
"""


@pytest.mark.usefixtures("prefect_api")
class TestReleasedLiterals:
    def test_a_secure_value_written_in_components_yaml_is_released_as_a_secret_block_reference(
        self, tmp_path: Path, strata_home: Path
    ) -> None:
        """A NoEcho value written as text in components.yaml never enters a bundle, a release, a flow parameter or
        the bundle cache: it is stored as a Prefect Secret block `strata-secure-<hash>`, the bundle holds the
        reference, and the stack still receives the value."""
        import boto3
        from prefect.blocks.system import Secret
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

        from strataflow import server, state
        from strataflow.state import bundles

        env = unique("sl")
        password = f"pw-{uuid.uuid4().hex}"
        config = write_tree(
            tmp_path / "cfg",
            {
                "components.yaml": (
                    "components:\n  db:\n    backend: cloudformation\n    template: templates/db.yaml\n"
                    f"    parameters: {{Password: {password}}}\n"
                ),
                f"environments/{env}.yaml": "clouds: {aws: {region: us-east-1}}\n",
                "templates/db.yaml": NOECHO,
            },
        )
        applied = cli("apply", env, "--config", str(config), "--sandbox", "--json")
        assert applied.returncode == 0, applied.stderr
        run_id = json.loads(applied.stdout)["flow_run_id"]
        record = state.latest_components(env, "aws", ["db"], sandbox=True)["db"]
        assert record.applied is not None and record.applied.bundle
        keys = [bundles.bundle_key(record.applied.bundle)]
        with get_client(sync_client=True) as client:
            manifest = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)))
            assert manifest, "the apply stored no bundle: nothing was checked"
            keys += [bundles.blob_key(sha) for sha in manifest[0].data["files"].values()]
            stored = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)))
        assert len(stored) == len(keys) == 2, keys  # the manifest and the template's blob
        produced = {
            "prefect api": json.dumps(everything([run_id])),
            "bundle artifacts": json.dumps([a.model_dump(mode="json") for a in stored]),
            "cli output": applied.stdout + applied.stderr,
            **_raw_files(strata_home),
        }
        assert not [where for where, text in produced.items() if password in text]

        references = set(re.findall(r"\$\{secret\.(strata-secure-[0-9a-f]+)\}", json.dumps(manifest[0].data)))
        assert len(references) == 1, manifest[0].data
        assert Secret.load(references.pop()).get() == password

        setting = json.loads(applied.stdout)["components"]["db"]["outputs"]["Setting"]
        sandbox = server.sandbox("aws")
        keys = {k: v for k, v in sandbox["credentials"].items() if k.startswith("aws_")}
        ssm = boto3.client("ssm", region_name="us-east-1", endpoint_url=sandbox["endpoint_url"], **keys)
        assert ssm.get_parameter(Name=setting)["Parameter"]["Value"] == password
