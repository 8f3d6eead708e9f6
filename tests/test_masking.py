"""Issue 16, items 2, 7 and 10 (retry log): a secret is masked in every form it takes on the way out of a run.

The secret holds ``'``, ``"``, ``\\``, ``$``, spaces, a tab and a newline, and each of its lines
carries a unique token, so any form of it (raw, shell-quoted, JSON-escaped, URL-encoded, one
line of it) is found by searching for the tokens; its base64 is searched for too. Commands
print it in all those forms, to stdout and stderr, into their JSON outputs and into a failure;
a transient error carries it into the retry log line. Then every log line, summary, report,
record, artifact, status and history, and the raw bytes of the server's database and of the
files under STRATA_HOME are searched, and the downstream component is checked to have received
the real value.
"""

from __future__ import annotations

import base64
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from strataflow import runner
from strataflow.backends.memory import OK, FakeBackend, installed
from strataflow.errors import TransientError
from strataflow.load import load_platform
from strataflow.records import MASK
from strataflow.runner import Job
from tests.support.cli import cli
from tests.support.configs import command, unique, write_platform
from tests.support.prefect_api import everything, statuses

PY = sys.executable
FORMS = (
    "import json, shlex, sys, urllib.parse as u; v = sys.argv[1]; "
    "print(shlex.quote(v)); print(json.dumps(v)); print(u.quote(v)); print(u.quote_plus(v)); "
    "print(shlex.quote(v), file=sys.stderr); print(json.dumps({'token': v, 'plain': 'visible'}))"
)
"""Prints the value shell-quoted, JSON-escaped and URL-encoded, then outputs holding it."""


def nasty_secret() -> tuple[str, list[str]]:
    """A secret with quotes, a backslash, a dollar, spaces, a tab and a newline; the tokens in its lines."""
    one, two = uuid.uuid4().hex, uuid.uuid4().hex
    return f"p'w\"d \\x$y {one} $(x)\n\t\"z\" '$HOME' {two}", [one, two]


def leaks(secret: str, tokens: list[str], produced: dict[str, str]) -> list[str]:
    """Where any form of the secret shows: one of its tokens, or its base64."""
    encoded = base64.b64encode(secret.encode()).decode()
    needles = [*tokens, encoded, encoded.rstrip("=")]
    return [where for where, text in produced.items() if any(needle in text for needle in needles)]


def leaky_command(ref: str) -> str:
    """Prints ``ref`` raw (both lines), to stderr, in quoted/escaped/encoded forms, and outputs holding it."""
    return f"printf '%s\\n' {ref}; printf 'err %s\\n' {ref} >&2; {PY} -c \"{FORMS}\" {ref}"


def failing_command(ref: str) -> str:
    """Prints 'bad' and ``ref`` shell-quoted (over two lines) on stderr, then exits 3."""
    return f"{PY} -c \"import shlex, sys; print('bad', shlex.quote(sys.argv[1]), file=sys.stderr)\" {ref}; exit 3"


def job_for(config: Path, env: str, name: str, **fields: Any) -> Job:
    platform = load_platform(config)
    return Job(
        platform=platform,
        env=platform.environment(env),
        cloud="aws",
        name=name,
        action="apply",
        upstream_outputs={},
        **fields,
    )


class TestRunnerMasks:
    """Through the runner and the real command backend, without Prefect."""

    def test_every_form_of_the_secret_is_masked_and_outputs_carrying_it_are_sensitive(self, tmp_path: Path) -> None:
        """Logs, summary, report and record hold no form of the secret; the output carrying it is stored masked and
        treated as sensitive, while the run's real outputs (for downstream components) keep the value."""
        secret, tokens = nasty_secret()
        env = unique("m")
        config = write_platform(
            tmp_path / "cfg", {"leak": command(leaky_command("${secret.pw}"), outputs="json")}, {env: {}}
        )
        lines: list[str] = []
        result = runner.execute(job_for(config, env, "leak"), secret=lambda _: secret, log=lines.append)
        assert result.report.status == "succeeded", result.report.error
        assert result.record is not None and result.record.applied is not None
        produced = {
            "log": "\n".join(lines),
            "summary": "\n".join(result.summary),
            "report": result.report.model_dump_json(),
            "record": result.record.model_dump_json(),
        }
        assert not leaks(secret, tokens, produced), leaks(secret, tokens, produced)
        assert result.report.outputs == {"token": MASK, "plain": "visible"}
        assert result.record.applied.outputs == {"token": MASK, "plain": "visible"}
        assert result.record.applied.sensitive == ["token"]
        assert result.sensitive == frozenset({"token"})
        assert result.outputs["token"] == secret  # downstream gets the real value
        assert result.summary == [f"ran: {leaky_command('${secret.pw}')}"]  # the template, not the value
        assert sum("***" in line for line in lines) >= 7, lines  # the search was not vacuous: it was printed

    def test_failure_message_is_masked(self, tmp_path: Path) -> None:
        """A command failing with the secret (shell-quoted) on stderr: the error and its log line are masked."""
        secret, tokens = nasty_secret()
        env = unique("m")
        fail = failing_command("${secret.pw}")
        config = write_platform(tmp_path / "cfg", {"fail": command(fail)}, {env: {}})
        lines: list[str] = []
        result = runner.execute(job_for(config, env, "fail"), secret=lambda _: secret, log=lines.append)
        assert result.report.status == "failed"
        assert result.report.error is not None and "bad ***" in result.report.error, result.report.error
        assert not leaks(secret, tokens, {"log": "\n".join(lines), "report": result.report.model_dump_json()})

    def test_declared_sensitive_outputs_are_masked_everywhere_but_downstream(self, tmp_path: Path) -> None:
        """`sensitive_outputs: [key]`: the value is masked in the logged outputs line, report and record; the run keeps it."""
        env = unique("m")
        key = f"generated-{uuid.uuid4().hex}"
        apply = f"echo working; echo '{json.dumps({'key': key, 'pub': 'shown'})}'"
        config = write_platform(
            tmp_path / "cfg",
            {"gen": command(apply, outputs="json", sensitive_outputs=["key"])},
            {env: {}},
        )
        lines: list[str] = []
        result = runner.execute(job_for(config, env, "gen"), log=lines.append)
        assert result.report.status == "succeeded", result.report.error
        assert result.record is not None and result.record.applied is not None
        assert result.report.outputs == {"key": MASK, "pub": "shown"}
        assert result.record.applied.outputs == {"key": MASK, "pub": "shown"}
        assert result.record.applied.sensitive == ["key"]
        assert result.outputs["key"] == key
        assert not any(key in line for line in lines), lines
        assert lines[-1] == '[gen] {"key": "***", "pub": "shown"}', lines

    def test_retry_log_line_is_masked(self, tmp_path: Path) -> None:
        """A transient error whose message holds the secret is retried with a masked log line."""
        secret, tokens = nasty_secret()
        env = unique("m")
        config = write_platform(tmp_path / "cfg", {"flaky": command("echo ${secret.pw}")}, {env: {}})
        fake = FakeBackend(scripts={"flaky": [TransientError(f"throttled sending {secret}", retry_after=0), OK]})
        lines: list[str] = []
        with installed(fake):
            result = runner.execute(job_for(config, env, "flaky"), secret=lambda _: secret, log=lines.append)
        assert result.report.status == "succeeded"
        assert any(line.startswith("transient error, retrying in 0s: throttled sending ***") for line in lines), lines
        assert not leaks(secret, tokens, {"log": "\n".join(lines)})


def _raw_files(home: Path) -> dict[str, str]:
    """Every file under STRATA_HOME, raw (the SQLite database and its write-ahead log among them)."""
    return {
        f"file {path}": path.read_bytes().decode("latin-1")
        for path in home.rglob("*")
        if path.is_file() and "terraform" not in path.relative_to(home).parts
    }


@pytest.mark.usefixtures("prefect_api")
class TestNowhereInPrefect:
    """Through `strata apply` on a real Prefect server, with the secret in a Secret block."""

    def test_secret_with_quotes_and_newlines_appears_nowhere(self, tmp_path: Path, strata_home: Path) -> None:
        """No log, artifact, state, report, record, status, history or file under STRATA_HOME holds any form of the
        secret; the downstream got the real value; run alone it fails saying why rather than get `***`."""
        from prefect.blocks.system import Secret

        from strataflow import records, state

        secret, tokens = nasty_secret()
        name = f"strata-test-{uuid.uuid4().hex[:8]}"
        Secret(value=secret).save(name)
        env = unique("m")
        got = tmp_path / "got"
        fail = failing_command(f"${{secret.{name}}}")
        config = write_platform(
            tmp_path / "cfg",
            {
                "leak": command(leaky_command(f"${{secret.{name}}}"), outputs="json"),
                "down": command(f"printf %s ${{leak.outputs.token}} > {got}", ["leak"]),
                "fail": command(fail),
            },
            {env: {}},
        )
        report_file = tmp_path / "report.json"
        applied = cli("apply", env, "--config", str(config), "--json", "--report", str(report_file))
        received = got.read_text() if got.exists() else None
        got.unlink(missing_ok=True)
        alone = cli("apply", env, "--config", str(config), "--select", "down", "--force", "--json")
        status = cli("status", env, "--config", str(config), "--json")
        history = cli("history", env, "--config", str(config), "--json")
        names = ("leak", "down", "fail")
        components = [r.model_dump(mode="json") for n in names for r in state.component_history(env, "aws", n, 20)]
        runs = [json.loads(applied.stdout)["flow_run_id"], json.loads(alone.stdout)["flow_run_id"]]
        keys = [records.component_key(env, "aws", n) for n in names] + [records.run_key(env, "aws")]
        keys.append(f"strata-report-{env}-aws")
        prefect = everything(runs, keys)
        produced = {
            "prefect api": json.dumps(prefect),
            "cli output": "".join(r.stdout + r.stderr for r in (applied, alone, status, history)),
            "report": report_file.read_text(),
            "component records": json.dumps(components),
            **_raw_files(strata_home),
        }
        assert not leaks(secret, tokens, produced), leaks(secret, tokens, produced)

        # not vacuous: the value went through, and everything that printed it was recorded masked
        assert applied.returncode == 1, applied.stderr
        report = json.loads(report_file.read_text())
        assert statuses(report) == {"leak": "succeeded", "down": "succeeded", "fail": "failed"}
        assert report["components"]["leak"]["outputs"] == {"token": "***", "plain": "visible"}
        assert "bad ***" in report["components"]["fail"]["error"]
        assert received == secret
        doc = json.loads(status.stdout)
        assert doc["components"]["leak"]["outputs"] == {"token": "***", "plain": "visible"}
        assert alone.returncode == 1 and not got.exists()  # never `***` as a value
        error = json.loads(alone.stdout)["components"]["down"]["error"]
        assert "sensitive (recorded masked)" in error and "--select leak+" in error, error
        messages = [log["message"] for log in prefect["logs"]]
        assert any("[leak] ! err ***" in m for m in messages), messages
        assert sum(m.startswith("[leak] ***") for m in messages) >= 2, messages
        database = [text for where, text in produced.items() if where.startswith("file ") and "prefect.db" in where]
        assert any("[leak] ! err ***" in text for text in database)  # the logs are in the bytes searched
