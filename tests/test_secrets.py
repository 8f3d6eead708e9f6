"""Secrets: a `${secret.NAME}` value, a sensitive terraform output and block credentials never leave the task.

The run is made to leak every way it could: the command echoes the secret to stdout and
stderr and fails once with it (so it reaches the error path), a terraform provisioner prints
the credentials block's key, a downstream command echoes the sensitive outputs it gets. Then
everything the runs produced is searched: the flow and task runs' logs, states and
artifacts read back through the Prefect client, the reports (`--json`, `--report`), state
records and history, `strata status --json`, the command line's output, and the raw bytes of
the server's database and log files.
"""

from __future__ import annotations

import hashlib
import json
import re
import typing
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from tests.support.cli import cli
from tests.support.configs import unique, write_platform
from tests.support.prefect_api import everything, statuses

pytestmark = pytest.mark.usefixtures("prefect_api")

MODULE = """\
variable "token" {
  type      = string
  sensitive = true
}

resource "terraform_data" "holder" {
  input = sha256(var.token)

  provisioner "local-exec" {
    command = "echo provisioner sees key=$AWS_SECRET_ACCESS_KEY"
  }
}

output "token_echo" {
  value     = var.token
  sensitive = true
}

output "token_hash" {
  value     = sha256(var.token)
  sensitive = true
}

output "plain" {
  value = "visible"
}
"""


def save_blocks(secret: str, key: str) -> tuple[str, str]:
    """A Prefect Secret block holding ``secret`` and an AWS credentials block holding ``key``; their names."""
    from prefect.blocks.system import Secret

    from blocks import AwsDeployCredentials

    secret_name, credentials_name = f"strata-test-{uuid.uuid4().hex[:8]}", f"strata-test-aws-{uuid.uuid4().hex[:8]}"
    Secret(value=secret).save(secret_name)
    AwsDeployCredentials(aws_access_key_id="AKIATESTONLY", aws_secret_access_key=SecretStr(key)).save(credentials_name)
    return secret_name, credentials_name


def leaky_platform(root: Path, secret_name: str, credentials_name: str) -> tuple[Path, str]:
    """`leaky` (echoes the secret, fails on its first run), `tfc` (terraform: sensitive outputs), `consumer` (echoes them)."""
    env = unique("x")
    once, got = root / "leaky.once", root / "consumer.got"
    ref = f"${{secret.{secret_name}}}"
    leaky = (
        f"echo token={ref}; echo token={ref} >&2; "
        f"if [ ! -e {once} ]; then touch {once}; echo failing, token {ref} >&2; exit 3; fi"
    )
    consumer = (
        "echo consumer got ${tfc.outputs.token_echo} and ${tfc.outputs.token_hash} and ${tfc.outputs.plain}; "
        f"printf %s ${{tfc.outputs.token_echo}} > {got}"
    )
    config = write_platform(
        root / "cfg",
        {
            "leaky": {"backend": "command", "apply": leaky, "timeout": 120},  # through the runner's timeout guard
            "tfc": {"aws": {"backend": "terraform", "module": "modules/tfc", "parameters": {"token": ref}}},
            "consumer": {"backend": "command", "apply": consumer, "depends_on": ["leaky", "tfc"]},
        },
        {env: {"clouds": {"aws": {"region": "us-east-1", "credentials": credentials_name}}}},
        files={"modules/tfc/main.tf": MODULE},
    )
    return config, env


def raw_files(home: Path) -> dict[str, bytes]:
    """The server's database (with its write-ahead log) and every log file under STRATA_HOME.

    Terraform's working copies are left out: its state holds the values by design (mode 0600).
    """
    found = {}
    for path in home.rglob("*"):
        if path.is_file() and "terraform" not in path.relative_to(home).parts:
            found[str(path)] = path.read_bytes()
    return found


class TestSecretsNeverLeak:
    """A secret parameter, a sensitive output and a credentials block appear nowhere a run writes."""

    def test_secret_sensitive_output_and_credentials_appear_nowhere(self, tmp_path: Path, strata_home: Path) -> None:
        """After a failing apply, a succeeding one and one of the consumer alone, no log, report, artifact, record,
        state, status or file holds the values, and the consumer always got the real ones."""
        from strataflow import records, state

        secret = f"s3cr3t-{uuid.uuid4().hex}"
        key = f"k3y-{uuid.uuid4().hex}"
        secret_hash = hashlib.sha256(secret.encode()).hexdigest()
        secret_name, credentials_name = save_blocks(secret, key)
        config, env = leaky_platform(tmp_path, secret_name, credentials_name)
        first, second, third = (tmp_path / f"{n}.json" for n in ("first", "second", "third"))
        got = tmp_path / "consumer.got"

        failed = cli("apply", env, "--config", str(config), "--json", "--report", str(first))
        applied = cli("apply", env, "--config", str(config), "--json", "--report", str(second))
        received = got.read_text() if got.exists() else None
        got.unlink(missing_ok=True)
        # tfc outside the selection: its sensitive outputs are recorded masked, so they are read from terraform
        alone = cli(
            "apply", env, "--config", str(config), "--select", "consumer", "--force", "--json", "--report", str(third)
        )
        status = cli("status", env, "--config", str(config), "--json")
        history = cli("history", env, "--config", str(config), "--json")
        names = ("leaky", "tfc", "consumer")
        components = [r.model_dump(mode="json") for n in names for r in state.component_history(env, "aws", n, 20)]
        flow_runs = [json.loads(path.read_text())["flow_run_id"] for path in (first, second, third)]
        keys = [records.component_key(env, "aws", n) for n in names] + [records.run_key(env, "aws")]
        prefect = everything(flow_runs, keys)
        produced = {
            "prefect api": json.dumps(prefect),
            "cli output": "".join(r.stdout + r.stderr for r in (failed, applied, alone, status, history)),
            "reports": first.read_text() + second.read_text() + third.read_text(),
            "component records": json.dumps(components),
            **{f"file {name}": content.decode("latin-1") for name, content in raw_files(strata_home).items()},
        }
        for value, what in ((secret, "the secret"), (secret_hash, "the sensitive hash"), (key, "the credentials key")):
            leaks = [where for where, text in produced.items() if value in text]
            assert not leaks, f"{what} leaked into: {leaks}"

        # and the search was not vacuous: the runs did what leaks, and it was recorded masked
        assert (failed.returncode, applied.returncode, alone.returncode) == (1, 0, 0), failed.stderr + applied.stderr
        report = json.loads(first.read_text())
        assert statuses(report) == {"leaky": "failed", "tfc": "succeeded", "consumer": "skipped"}
        assert "token ***" in report["components"]["leaky"]["error"], report["components"]["leaky"]["error"]
        assert report["components"]["tfc"]["outputs"] == {"token_echo": "***", "token_hash": "***", "plain": "visible"}
        assert statuses(json.loads(second.read_text())) == {
            "leaky": "succeeded",
            "tfc": "unchanged",
            "consumer": "succeeded",
        }
        assert received == secret  # the downstream got the real value, not ***
        assert statuses(json.loads(third.read_text())) == {"consumer": "succeeded"}
        assert got.read_text() == secret
        messages = [log["message"] for log in prefect["logs"]]
        assert any("[leaky] token=***" in m for m in messages), messages
        assert any("[leaky] ! failing, token ***" in m for m in messages), messages
        assert any("provisioner sees key=***" in m for m in messages), messages
        assert sum("[consumer] consumer got *** and *** and visible" in m for m in messages) == 2, messages
        assert len(components) == 5  # records: leaky 2, tfc 1 (then unchanged), consumer 2
        assert len(prefect["task_runs"]) >= 5 and prefect["artifacts"]
        database = raw_files(strata_home).values()
        assert any(b"[leaky] token=***" in content for content in database)  # the logs are in the bytes searched


class TestCredentialBlocks:
    """Credentials in strataflow's blocks are SecretStr: obfuscated by Prefect's API and in every repr."""

    def test_every_secret_field_is_secretstr(self) -> None:
        """Each block field named like a secret (secret, token, password) is typed SecretStr (or optional SecretStr)."""
        import blocks

        checked = []
        for block in (blocks.AwsDeployCredentials, blocks.AzureDeployCredentials, blocks.GitHubIssueTracker):
            for name, field in block.model_fields.items():
                if re.search(r"secret|token|password", name):
                    types = set(typing.get_args(field.annotation)) or {field.annotation}
                    assert SecretStr in types and types <= {SecretStr, type(None)}, (
                        block.__name__,
                        name,
                        field.annotation,
                    )
                    checked.append(f"{block.__name__}.{name}")
        assert sorted(checked) == [
            "AwsDeployCredentials.aws_secret_access_key",
            "AwsDeployCredentials.aws_session_token",
            "AzureDeployCredentials.client_secret",
            "GitHubIssueTracker.token",
        ]

    def test_saved_credentials_read_back_obfuscated(self) -> None:
        """A saved credentials block's key comes back from the API obfuscated, and never shows in its repr."""
        from prefect.client.orchestration import get_client

        from blocks import AwsDeployCredentials

        key = f"k3y-{uuid.uuid4().hex}"
        name = f"strata-test-aws-{uuid.uuid4().hex[:8]}"
        block = AwsDeployCredentials(aws_access_key_id="AKIATESTONLY", aws_secret_access_key=SecretStr(key))
        block.save(name)
        with get_client(sync_client=True) as client:
            document = client.read_block_document_by_name(name, "strata-aws-credentials", include_secrets=False)
        data: dict[str, Any] = document.data
        assert data["aws_secret_access_key"] != key and set(str(data["aws_secret_access_key"])) == {"*"}
        loaded = AwsDeployCredentials.load(name)
        assert key not in repr(loaded) and key not in str(loaded.as_credentials())
        assert loaded.aws_secret_access_key.get_secret_value() == key
