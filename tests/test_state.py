"""State and audit trail in Prefect's run history, across separate `strata` processes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import strata
from tests.support.dags import layered, write_config
from tests.support.platforms import applied, promotion_platform

pytestmark = pytest.mark.usefixtures("prefect_api")


def run_json(*args: str, expect: int = 0, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = strata(*args, "--json", env=env)
    assert result.returncode == expect, result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {name: c["status"] for name, c in report["components"].items()}


class TestUnchanged:
    """A second apply of an unchanged environment does no backend work."""

    def test_second_apply_is_unchanged_and_fast(self, tmp_path: Path) -> None:
        """Every component is unchanged on the second apply, which takes well under the first's time.

        The margin is wide (half) because the machine is shared; `make bench` measures the ratio (~20%).
        """
        from flows.orchestrate import orchestrate

        config = write_config(tmp_path, layered(30, seed=21))
        env = next((config / "environments").glob("*.yaml")).stem
        started = time.monotonic()
        first = orchestrate(env=env, config_dir=str(config), return_state=True).result()
        first_time = time.monotonic() - started
        started = time.monotonic()
        second = orchestrate(env=env, config_dir=str(config), return_state=True).result()
        second_time = time.monotonic() - started
        print(f"first apply {first_time:.2f}s, unchanged re-run {second_time:.2f}s ({second_time / first_time:.0%})")
        assert set(statuses(first).values()) == {"succeeded"}
        assert set(statuses(second).values()) == {"unchanged"}
        assert second_time < 0.5 * first_time

    def test_force_and_changed_config_run_again(self, tmp_path: Path) -> None:
        """--force re-applies everything; a changed parameter re-applies the component and its consumers only."""
        names = promotion_platform(tmp_path)
        dev = names["dev"]
        config = str(tmp_path)
        run_json("apply", dev, "--config", config)
        assert statuses(run_json("apply", dev, "--config", config, "--force")) == dict.fromkeys(["base", "side", "app"], "succeeded")
        env_file = tmp_path / "environments" / f"{dev}.yaml"
        env_file.write_text(env_file.read_text().replace("size: 1", "size: 5"))
        report = run_json("apply", dev, "--config", config)
        assert statuses(report) == {"base": "unchanged", "side": "unchanged", "app": "succeeded"}


    def test_plan_says_what_will_not_change(self, tmp_path: Path) -> None:
        """After an apply, `plan` shows every component `unchanged`; a changed parameter plans that component only
        (its upstream outputs are the recorded ones); `--force` plans everything."""
        names = promotion_platform(tmp_path)
        dev, config = names["dev"], str(tmp_path)
        run_json("apply", dev, "--config", config)
        assert statuses(run_json("plan", dev, "--config", config)) == dict.fromkeys(["base", "side", "app"], "unchanged")
        env_file = tmp_path / "environments" / f"{dev}.yaml"
        env_file.write_text(env_file.read_text().replace("size: 1", "size: 5"))
        report = run_json("plan", dev, "--config", config)
        assert statuses(report) == {"base": "unchanged", "side": "unchanged", "app": "planned"}
        forced = run_json("plan", dev, "--config", config, "--force")
        assert statuses(forced) == dict.fromkeys(["base", "side", "app"], "planned")
        assert len(applied(tmp_path)) == 3, "a plan applies nothing"


class TestStatusAndHistory:
    """`strata status` and `strata history` answer from the run history, across processes."""

    def test_status_shows_applied_outputs_pending_and_next(self, tmp_path: Path) -> None:
        """Status lists state, version, actor and outputs, flags a pending change, and names what is next."""
        names = promotion_platform(tmp_path)
        dev, config = names["dev"], str(tmp_path)
        before = run_json("status", dev, "--config", config)
        assert {c["state"] for c in before["components"].values()} == {"never"}
        assert sorted(before["next"]) == ["base", "side"]
        run_json("apply", dev, "--config", config, "--select", "base", env={"STRATA_ACTOR": "carol"})
        doc = run_json("status", dev, "--config", config)
        base = doc["components"]["base"]
        assert base["state"] == "applied" and base["version"] == "1.0.0" and base["applied_by"] == "carol"
        assert base["outputs"] == {"id": f"base-{dev}"} and base["pending_change"] is False
        assert doc["components"]["app"]["state"] == "never"
        assert sorted(doc["next"]) == ["app", "side"]

    def test_history_records_who_did_what(self, tmp_path: Path) -> None:
        """History is newest first and names the actor from --as, STRATA_ACTOR or the CI's variable."""
        names = promotion_platform(tmp_path)
        dev, config = names["dev"], str(tmp_path)
        run_json("apply", dev, "--config", config, "--select", "side", "--as", "dana")
        run_json("apply", dev, "--config", config, "--select", "base", env={"STRATA_ACTOR": "", "GITHUB_ACTOR": "octocat"})
        runs = run_json("history", dev, "--config", config)
        assert [(r["actor"], r["planned"]) for r in runs[:2]] == [("octocat", ["base"]), ("dana", ["side"])]
        assert runs[0]["status"] == "succeeded" and runs[0]["components"] == {"base": "succeeded"}
        per_component = run_json("history", dev, "--config", config, "--component", "side")
        assert per_component[0]["actor"] == "dana" and per_component[0]["status"] == "succeeded"


class TestOutputsOutsideSelection:
    """Upstream outputs for components outside --select come from the run history."""

    def test_downstream_alone_uses_recorded_outputs(self, tmp_path: Path) -> None:
        """Applying only `app` reads base's outputs from its state record."""
        names = promotion_platform(tmp_path)
        dev, config = names["dev"], str(tmp_path)
        run_json("apply", dev, "--config", config, "--select", "base")
        report = run_json("apply", dev, "--config", config, "--select", "app")
        assert statuses(report) == {"app": "succeeded"}
        assert f"app base-{dev} {dev}" in applied(tmp_path)

    def test_never_applied_upstream_is_a_clear_error(self, tmp_path: Path) -> None:
        """Applying `app` before `base` ever ran says so and how to fix it."""
        names = promotion_platform(tmp_path)
        dev, config = names["dev"], str(tmp_path)
        result = strata("apply", dev, "--config", config, "--select", "app")
        assert result.returncode == 2, result.stderr
        assert f"app needs base's outputs but base has never been applied in {dev}" in result.stderr
        assert "--select +app" in result.stderr and "Traceback" not in result.stderr
        assert applied(tmp_path) == []

    def test_plan_of_a_fresh_environment_shows_commands_as_written(self, tmp_path: Path) -> None:
        """A plan of a fresh environment runs, showing each command with its references, not values."""
        names = promotion_platform(tmp_path)
        result = strata("plan", names["dev"], "--config", str(tmp_path))
        assert result.returncode == 0, result.stderr
        assert "would run: echo app ${base.outputs.id}" in result.stdout


class TestResume:
    """--resume re-runs exactly the failed, skipped and cancelled components of the last run."""

    def test_resume_after_fix_runs_only_what_did_not_finish(self, tmp_path: Path) -> None:
        """After a failure and a fix, resume runs the failed and skipped components only."""
        names = promotion_platform(tmp_path, fail="base")
        dev, config = names["dev"], str(tmp_path)
        (tmp_path / "FAIL").touch()
        failed = run_json("apply", dev, "--config", config, expect=1)
        assert statuses(failed) == {"base": "failed", "side": "succeeded", "app": "skipped"}
        (tmp_path / "FAIL").unlink()
        resumed = run_json("apply", dev, "--config", config, "--resume")
        assert statuses(resumed) == {"base": "succeeded", "app": "succeeded"}
        assert sorted(line.split()[0] for line in applied(tmp_path)) == ["app", "base", "side"]
        doc = run_json("status", dev, "--config", config)
        assert {c["state"] for c in doc["components"].values()} == {"applied"}


class TestLock:
    """One run per environment and cloud at a time."""

    def test_second_apply_exits_4_naming_the_holder(self, tmp_path: Path) -> None:
        """While one apply runs, another apply of the same environment exits 4 naming it."""
        import subprocess
        import sys

        from tests.support.cli import ROOT

        config = write_config(tmp_path, layered(3, seed=5, low=10.0, high=10.0))  # holds the lock ~30 s
        env = next((config / "environments").glob("*.yaml")).stem
        first = subprocess.Popen(
            [sys.executable, "-m", "strataflow", "apply", env, "--config", str(config)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            from strataflow import state

            deadline = time.monotonic() + 60
            while (holder := state.lock_holder_if_held(env, "aws")) is None:
                assert time.monotonic() < deadline, "the first apply never took the lock"
                time.sleep(0.2)
            second = strata("apply", env, "--config", str(config))
            assert second.returncode == 4, second.stderr
            assert f"is locked by flow run {holder['flow_run_id']}" in second.stderr
        finally:
            _out, err = first.communicate(timeout=120)
        assert first.returncode == 0, err

    def test_unlock_force_is_recorded(self, tmp_path: Path) -> None:
        """`strata unlock --force` removes the lock and the history says who did it."""
        names = promotion_platform(tmp_path)
        dev, config = names["dev"], str(tmp_path)
        run_json("apply", dev, "--config", config, "--select", "side")
        result = strata("unlock", dev, "--config", config, "--cloud", "aws", "--force", "--as", "oscar")
        assert result.returncode == 0, result.stderr
        runs = run_json("history", dev, "--config", config)
        assert runs[0]["kind"] == "unlock" and runs[0]["actor"] == "oscar"


class TestPriorityFromHistory:
    """The scheduler's expected durations are the medians of recorded successful applies."""

    def test_expected_durations_are_medians(self) -> None:
        """Components with history get their median; the rest get the median of those that have one."""
        from flows.orchestrate import expected_durations
        from strataflow.records import ComponentRecord

        records = {
            "slow": ComponentRecord(env="e", cloud="aws", component="slow", action="apply", status="succeeded", durations=[9.0, 10.0, 11.0]),
            "fast": ComponentRecord(env="e", cloud="aws", component="fast", action="apply", status="succeeded", durations=[1.0, 3.0]),
            "new": ComponentRecord(env="e", cloud="aws", component="new", action="apply", status="failed"),
        }
        known, default = expected_durations(records)
        assert known == {"slow": 10.0, "fast": 2.0}
        assert default == 6.0
