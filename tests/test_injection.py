"""Issue 16, item 1: a reference in a command reaches the program as one literal value, never as code.

Hostile upstream outputs (command substitutions, quotes that close the surrounding ones, a
here-document's end line) are used in every quoting context a command can put a reference in:
bare, inside "...", inside '...', inside $(...), in a here-document, in an assignment. They run
through the real command backend (the runner, no Prefect) and through `strata apply` (a real
Prefect server): each value arrives byte for byte and nothing runs. Contexts where no quoting
can help (backticks, eval, sh -c, arithmetic) are refused by `strata validate` and `strata apply`
with a message saying how to write the command instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from strataflow import runner
from strataflow.load import load_platform
from strataflow.runner import Job
from tests.support.cli import cli
from tests.support.configs import command, unique, write_platform
from tests.support.prefect_api import everything, statuses

REF = "${up.outputs.msg}"
HOSTILE = {
    "issue": "$(echo INJECTED >&2; touch pwned)",
    "backticks": "`touch pwned`",
    "single": "'; touch pwned; '",
    "double": '"; touch pwned; "',
    "heredoc": "x\nEOF\ntouch pwned\nEOF",
    "escapes": "\\\"$(touch pwned)\\\" '$HOME' ${HOME} $((1+1)) ;|&<>*",
    "newlines": "\ntouch pwned\n",
}


def _same(value: str) -> str:
    return value


def _note(value: str) -> str:
    return "note=" + value


def _stripped(value: str) -> str:
    return value.rstrip("\n")  # $(...) drops trailing newlines


CONTEXTS: dict[str, tuple[str, Callable[[str], str]]] = {
    "bare": (f"printf %s {REF} > OUT", _same),
    "double quotes": (f'printf %s "note={REF}" > OUT', _note),
    "single quotes": (f"printf %s 'note={REF}' > OUT", _note),
    "issue": (f'echo "note={REF}" > OUT', lambda v: f"note={v}\n"),
    "command substitution": (f'printf %s "$(printf %s {REF})" > OUT', _stripped),
    "quoted in substitution": (f'printf %s "$(printf %s "{REF}")" > OUT', _stripped),
    "here-document": (f"cat > OUT <<EOF\nnote={REF}\nEOF", lambda v: f"note={v}\n"),
    "assignment": (f'V={REF}; printf %s "$V" > OUT', _same),
    "url": (f"printf %s https://{REF}/x > OUT", lambda v: f"https://{v}/x"),
}


def _pwned(*where: Path) -> list[Path]:
    return [place / "pwned" for place in (*where, Path.cwd()) if (place / "pwned").exists()]


class TestEveryQuotingContext:
    """Through the runner and the real command backend: a value is data in every context."""

    @pytest.mark.parametrize("value_key", list(HOSTILE))
    @pytest.mark.parametrize("context", list(CONTEXTS))
    def test_value_arrives_literally_and_never_runs(self, tmp_path: Path, context: str, value_key: str) -> None:
        """The downstream command receives the hostile output byte for byte, and no `pwned` file appears."""
        template, expected = CONTEXTS[context]
        value = HOSTILE[value_key]
        env = unique("i")
        config = write_platform(
            tmp_path / "cfg",
            {"up": command("true", outputs="json"), "down": command(template.replace("OUT", "out"), ["up"])},
            {env: {}},
        )
        platform = load_platform(config)
        lines: list[str] = []
        job = Job(
            platform=platform,
            env=platform.environment(env),
            cloud="aws",
            name="down",
            action="apply",
            upstream_outputs={"up": {"msg": value}},
        )
        result = runner.execute(job, log=lines.append)
        assert not _pwned(config, tmp_path), f"{value!r} ran as code in {context}"
        assert result.report.status == "succeeded", result.report.error
        assert (config / "out").read_bytes().decode() == expected(value)
        assert result.summary == [f"ran: {template.replace('OUT', 'out')}"]  # the template, never the value
        assert not any("INJECTED" in line for line in lines), lines


REFUSED = {
    "backticks": ("echo `echo ${up.outputs.msg}`", "write $(...) instead"),
    "eval": ('eval "echo ${up.outputs.msg}"', 'V=${up.outputs.msg}) and use "$V"'),
    "sh -c": ("sh -c 'echo ${up.outputs.msg}'", "pass it as an argument instead"),
    "arithmetic": ("echo $((${up.outputs.msg} + 1))", "check it is a number first"),
    "quoted here-document": ("cat <<'EOF'\n${up.outputs.msg}\nEOF", "use an unquoted delimiter"),
}


class TestRefusedContexts:
    """Where no quoting keeps a value from running, the config is refused, saying how to write it."""

    @pytest.mark.parametrize("context", list(REFUSED))
    def test_validate_refuses_with_position_and_advice(self, tmp_path: Path, context: str) -> None:
        """`strata validate` exits 2 with file:line:column of the command and how to pass the value as data."""
        template, advice = REFUSED[context]
        config = write_platform(
            tmp_path / "cfg",
            {"up": command("true", outputs="json"), "down": command(template, ["up"])},
            {unique("v"): {}},
        )
        result = cli("validate", "--config", str(config))
        assert result.returncode == 2, result.stdout + result.stderr
        lines = [line for line in result.stderr.splitlines() if "${up.outputs.msg}" in line]
        assert len(lines) == 1, result.stderr
        text = (config / "components.yaml").read_text().splitlines()
        line = next(n for n, row in enumerate(text, 1) if row.startswith("    apply:") and n > text.index("  down:"))
        assert f"{config / 'components.yaml'}:{line}:" in lines[0], lines[0]  # down's apply
        assert "'down' apply:" in lines[0] and advice in lines[0], lines[0]
        assert "through an environment variable, never as script text" in lines[0]

    def test_shipped_sample_config_is_accepted(self) -> None:
        """config/components.yaml (`./scripts/smoke.sh https://${dns.outputs.fqdn}`) is still valid."""
        result = cli("validate", "--config", str(Path(__file__).resolve().parents[1] / "config"))
        assert result.returncode == 0, result.stderr


@pytest.mark.usefixtures("prefect_api")
class TestThroughStrataApply:
    """`strata apply` with a real upstream printing hostile outputs, on a real Prefect server."""

    def test_hostile_outputs_through_strata_apply(self, tmp_path: Path) -> None:
        """Every context x value reaches its sink intact through `strata apply`, nothing runs, and the logged command
        lines are the templates; a refused context makes `strata apply` exit 2 before anything runs."""
        env = unique("i")
        out = tmp_path / "out"
        out.mkdir()
        keys = ["issue", "single", "heredoc", "escapes"]
        sinks: dict[str, Any] = {}
        for index, (template, _) in enumerate(CONTEXTS.values()):
            for key in keys:
                sink = template.replace(REF, f"${{up.outputs.{key}}}").replace("OUT", f"{out}/{index}-{key}")
                sinks[f"sink-{index}-{key}"] = command(sink, ["up"])
        config = write_platform(
            tmp_path / "cfg",
            {"up": command("cat payload.json", outputs="json", inputs=["payload.json"]), **sinks},
            {env: {}},
            files={"payload.json": json.dumps(HOSTILE) + "\n"},
        )
        applied = cli("apply", env, "--config", str(config), "--json")
        assert not _pwned(config, tmp_path), "an output ran as code"
        assert applied.returncode == 0, applied.stderr
        report = json.loads(applied.stdout)
        assert set(statuses(report).values()) == {"succeeded"}
        for index, (_, expected) in enumerate(CONTEXTS.values()):
            for key in keys:
                assert (out / f"{index}-{key}").read_bytes().decode() == expected(HOSTILE[key]), (index, key)
        messages = [log["message"] for log in everything([report["flow_run_id"]])["logs"]]
        assert not any("! INJECTED" in m for m in messages), "the command substitution ran"
        ran = [m for m in messages if ": ran: " in m]
        assert len(ran) == len(sinks) + 1 and all("${up.outputs." in m for m in ran if "sink-" in m), ran

        refused = write_platform(
            tmp_path / "refused",
            {"up": command("touch ran", outputs="json"), "down": command("echo `echo ${up.outputs.issue}`", ["up"])},
            {env: {}},
        )
        result = cli("apply", env, "--config", str(refused))
        assert result.returncode == 2, result.stderr
        assert "is inside backticks" in result.stderr and not (refused / "ran").exists()
