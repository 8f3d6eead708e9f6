"""Promotion against a real Prefect server: gates, approval, deployment, report, issue on failure."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import strata
from tests.support.github import fake_github
from tests.support.platforms import applied, promotion_platform
from tests.support.promotions import ok, paused, run_state

pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture
def platform(tmp_path: Path) -> dict[str, Any]:
    """The three-environment platform with dev applied and promoted to staging."""
    names = promotion_platform(tmp_path, approval_timeout="10m")
    ok("apply", names["dev"], "--config", str(tmp_path))
    return {"config": tmp_path, **names}


class TestUnattended:
    """A promotion into an environment that needs no approval runs through on its own."""

    def test_promotion_without_approval_completes(self, platform: dict[str, Any]) -> None:
        """dev -> staging exits 0 and staging then runs dev's versions and bundles, byte for byte."""
        config, dev, staging = str(platform["config"]), platform["dev"], platform["staging"]
        result = ok("promote", dev, staging, "--config", config, "--json")
        report = json.loads(result.stdout)
        assert report["env"] == staging and report["status"] == "succeeded"
        source = json.loads(ok("status", dev, "--config", config, "--json").stdout)["components"]
        target = json.loads(ok("status", staging, "--config", config, "--json").stdout)["components"]
        for name in ("base", "app", "side"):
            assert target[name]["state"] == "applied"
            assert target[name]["version"] == source[name]["version"]
            assert target[name]["bundle"] == source[name]["bundle"]
            assert target[name]["how"] == "promotion"
        assert f"app base-{staging} {staging}" in applied(platform["config"])

    def test_auto_approve_is_refused_where_approval_is_required(self, platform: dict[str, Any]) -> None:
        """--auto-approve into prod is a usage error (exit 2)."""
        result = strata("promote", platform["staging"], platform["prod"], "--config", str(platform["config"]), "--auto-approve")
        assert result.returncode == 2
        assert "requires approval" in result.stderr


class TestGates:
    """A gate that refuses stops the promotion before approval and deployment, with exit 5."""

    def test_failed_source_component_refuses(self, tmp_path: Path) -> None:
        """A source component whose last apply failed is named with the gate."""
        names = promotion_platform(tmp_path, fail="app")
        config = str(tmp_path)
        (tmp_path / "FAIL").touch()
        assert strata("apply", names["dev"], "--config", config).returncode == 1
        result = strata("promote", names["dev"], names["staging"], "--config", config)
        assert result.returncode == 5, result.stderr
        assert "gate source_verified refused (app)" in result.stderr
        assert not [line for line in applied(tmp_path) if names["staging"] in line]

    def test_the_working_tree_ahead_of_the_source_does_not_matter(self, platform: dict[str, Any]) -> None:
        """With dev's file edited but not applied, dev -> staging still promotes what dev runs (size 1)."""
        config = platform["config"]
        env_file = config / "environments" / f"{platform['dev']}.yaml"
        env_file.write_text(env_file.read_text().replace("size: 1", "size: 9"))
        (config / "components.yaml").write_text((config / "components.yaml").read_text().replace("1.0.0", "9.9.9"))
        ok("promote", platform["dev"], platform["staging"], "--config", str(config))
        target = json.loads(ok("status", platform["staging"], "--config", str(config), "--json").stdout)["components"]
        assert {target[n]["version"] for n in ("base", "app", "side")} == {"1.0.0"}
        assert f"app base-{platform['staging']} {platform['staging']}" in applied(config)

    def test_wrong_edge_refuses(self, platform: dict[str, Any]) -> None:
        """Promoting dev straight to prod refuses: prod receives promotions from staging."""
        result = strata("promote", platform["dev"], platform["prod"], "--config", str(platform["config"]))
        assert result.returncode == 5
        assert "gate promote_from refused" in result.stderr


class TestFreeze:
    """Promotions into an environment inside a freeze window are refused unless an approver overrides."""

    def test_freeze_refuses_and_an_approver_overrides(self, platform: dict[str, Any]) -> None:
        """Inside a window the gate refuses (exit 5); a non-approver cannot override; an approver's override is recorded."""
        config, dev, staging = platform["config"], platform["dev"], platform["staging"]
        env_file = config / "environments" / f"{staging}.yaml"
        env_file.write_text(
            env_file.read_text()
            + "approval: {approvers: [alice]}\n"
            + "freeze: [{start: '2020-01-01T00:00:00+00:00', end: '2099-01-01T00:00:00+00:00', reason: big migration}]\n"
        )
        refused = strata("promote", dev, staging, "--config", str(config))
        assert refused.returncode == 5 and "big migration" in refused.stderr
        by_other = strata("promote", dev, staging, "--config", str(config), "--override-freeze", "hotfix", "--as", "zed")
        assert by_other.returncode == 5 and "only an approver may override" in by_other.stderr
        ok("promote", dev, staging, "--config", str(config), "--override-freeze", "hotfix 42", "--as", "alice")
        runs = json.loads(ok("history", staging, "--config", str(config), "--json").stdout)
        promotion = next(r for r in runs if r["kind"] == "promote" and r["status"] == "succeeded")
        assert promotion["detail"]["override_freeze"] == "hotfix 42" and promotion["actor"] == "alice"


class TestApproval:
    """Promotions into prod pause for a listed approver who is not the requester."""

    def test_approver_resumes_and_history_records_it(self, platform: dict[str, Any]) -> None:
        """Non-approvers and the requester are refused (run stays paused); alice's approval completes it."""
        config, staging, prod = platform["config"], platform["staging"], platform["prod"]
        ok("promote", platform["dev"], staging, "--config", str(config))
        with paused("promote", staging, prod, "--config", str(config), actor="alice") as (flow_run_id, process):
            for who in ("mallory", "alice"):  # not an approver; the requester
                refused = strata("approve", flow_run_id, "--as", who)
                assert refused.returncode == 2 and "refused" in refused.stderr
            assert run_state(flow_run_id) == "PAUSED"
            started = time.monotonic()
            ok("approve", flow_run_id, "--as", "bob", "--comment", "looks good")
            out, err = process.communicate(timeout=120)
            print(f"resumed and finished {time.monotonic() - started:.1f}s after the approval")
            assert process.returncode == 0, err
        assert json.loads(out)["status"] == "succeeded"
        runs = json.loads(ok("history", prod, "--config", str(config), "--json").stdout)
        promotion = next(r for r in runs if r["kind"] == "promote")
        assert promotion["detail"]["approval"]["approver"] == "bob"
        assert promotion["detail"]["approval"]["verified"] is False
        assert promotion["detail"]["approval"]["comment"] == "looks good"
        assert promotion["actor"] == "alice"
        refusals = [r for r in runs if r["kind"] == "approval" and r["status"] == "refused"]
        assert {r["actor"] for r in refusals} == {"mallory", "alice"}

    def test_reject_ends_with_exit_3(self, platform: dict[str, Any]) -> None:
        """A rejection ends the promotion with exit 3 and deploys nothing."""
        config, staging, prod = platform["config"], platform["staging"], platform["prod"]
        ok("promote", platform["dev"], staging, "--config", str(config))
        with paused("promote", staging, prod, "--config", str(config)) as (flow_run_id, process):
            ok("reject", flow_run_id, "--as", "alice", "--comment", "not today")
            _, err = process.communicate(timeout=60)
            assert process.returncode == 3, err
            assert "rejected by alice" in err
        assert not [line for line in applied(config) if prod in line]

    def test_timeout_ends_with_exit_3(self, tmp_path: Path) -> None:
        """Nobody approving within the environment's timeout ends the promotion with exit 3."""
        names = promotion_platform(tmp_path, approval_timeout="3s")
        config = str(tmp_path)
        ok("apply", names["dev"], "--config", config)
        ok("promote", names["dev"], names["staging"], "--config", config)
        result = strata("promote", names["staging"], names["prod"], "--config", config, timeout=120)
        assert result.returncode == 3, result.stderr
        assert "nobody approved" in result.stderr
        runs = json.loads(ok("history", names["prod"], "--config", config, "--json").stdout)
        assert next(r for r in runs if r["kind"] == "promote")["status"] == "timed out"


class TestIssueOnFailure:
    """A failed target deployment opens one issue through the tracker block, not one per retry."""

    def test_one_issue_for_repeated_failures(self, tmp_path: Path) -> None:
        """Two failed promotions into staging open one issue and comment on it the second time."""
        from blocks.issues import GitHubIssueTracker

        names = promotion_platform(tmp_path, fail="app")
        config = str(tmp_path)
        ok("apply", names["dev"], "--config", config)
        env_file = tmp_path / "environments" / f"{names['staging']}.yaml"
        block = f"tracker-{names['staging']}"
        env_file.write_text(env_file.read_text() + f"issue_tracker: {block}\n")
        with fake_github(token="ghp-test-token") as hub:
            GitHubIssueTracker(repository="acme/platform", token="ghp-test-token", api_url=hub.url).save(block, overwrite=True)
            (tmp_path / "FAIL").touch()
            for _ in range(2):
                result = strata("promote", names["dev"], names["staging"], "--config", config)
                assert result.returncode == 1, result.stderr
            assert len(hub.issues) == 1
            assert names["staging"] in hub.issues[0]["title"] and "app" in hub.issues[0]["body"]
            assert len(hub.comments) == 1
        assert "ghp-test-token" not in result.stdout + result.stderr
