"""Approvals people can trust: signed decisions checked by the flow, refusals visible, audit that says who."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from strataflow import sshsig
from strataflow.approvals import Answer, ApprovalRequest, judge, signed_text
from strataflow.config import Approver
from strataflow.errors import ConfigError
from strataflow.load import load_platform
from tests.support.cli import strata
from tests.support.prefect_api import everything
from tests.support.promotions import ok, paused, run_state
from tests.support.releases import deployed, keyed_release_platform, release_platform, status
from tests.support.ssh import KeyPair, agent, keypair


def _request(approvers: list[Approver], requester: str = "rita") -> ApprovalRequest:
    now = datetime.now(UTC)
    return ApprovalRequest(
        flow_run_id="11111111-2222-3333-4444-555555555555",
        kind="promotion",
        env="prod",
        cloud="aws",
        source="staging",
        requester=requester,
        approvers=approvers,
        digest="d" * 64,
        created_at=now,
        deadline=now + timedelta(hours=1),
    )


class TestJudge:
    """The pure rules a decision must meet (the flow and `strata approve` both apply them)."""

    def test_unkeyed_approvers_count_by_name_and_say_not_verified(self) -> None:
        """A listed approver who is not the requester, naming the digest, counts, unverified."""
        request = _request([Approver(name="alice"), Approver(name="bob")])
        assert judge(request, Answer(decision="approve", approver="bob", digest="d" * 64)).model_dump() == {
            "accepted": True,
            "reason": None,
            "verified": False,
        }
        for answer, why in [
            (Answer(decision="approve", approver="mallory", digest="d" * 64), "not an approver"),
            (Answer(decision="approve", approver="bob", digest="e" * 64), "names digest"),
            (Answer(decision="approve", approver="bob", digest=""), "names digest"),
        ]:
            verdict = judge(request, answer)
            assert not verdict.accepted and why in (verdict.reason or "")
        assert "requested this change" in (judge(_request([Approver(name="rita")]), Answer(
            decision="approve", approver="rita", digest="d" * 64)).reason or "")

    def test_keyed_approvers_need_their_own_signature_over_this_decision(self, tmp_path: Path) -> None:
        """Only alice's signature over this run, decision, target and digest counts for alice."""
        alice, bob = keypair(tmp_path, "alice"), keypair(tmp_path, "bob")
        request = _request([Approver(name="alice", key=alice.public), Approver(name="bob", key=bob.public)])

        def answer(key: KeyPair, **text: str) -> Answer:
            parts = {"flow_run_id": request.flow_run_id, "decision": "approve", "approver": "alice", "target": "prod",
                     "digest": request.digest, **text}
            signature = sshsig.sign_with_file(signed_text(**parts), key.private)
            return Answer(decision="approve", approver="alice", digest=request.digest, signature=signature)

        assert judge(request, answer(alice)).verified
        assert "no signature" in (judge(request, Answer(decision="approve", approver="alice", digest=request.digest)).reason or "")
        for forged in (answer(bob), answer(alice, flow_run_id="another-run"), answer(alice, digest="f" * 64),
                       answer(alice, decision="reject"), answer(alice, target="staging")):
            verdict = judge(request, forged)
            assert not verdict.accepted and "signature" in (verdict.reason or "")


class TestConfigKeys:
    """Approver keys in an environment file are checked by `strata validate`."""

    def _config(self, tmp_path: Path, approvers: list[Any]) -> Path:
        (tmp_path / "environments").mkdir(parents=True)
        (tmp_path / "components.yaml").write_text("components:\n  a: {backend: command, apply: 'true'}\n")
        body = {"approval": {"required": True, "approvers": approvers}}
        (tmp_path / "environments" / "prod.yaml").write_text(yaml.safe_dump(body))
        return tmp_path

    def test_a_malformed_key_is_refused_with_its_line(self, tmp_path: Path) -> None:
        """A key that is not a public SSH key is a one-line error naming the file and line (exit 2)."""
        config = self._config(tmp_path, [{"name": "alice", "key": "ssh-ed25519 nonsense"}])
        result = strata("validate", "--config", str(config))
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert "prod.yaml:" in result.stderr and "not a usable public SSH key" in result.stderr

    def test_mixing_keyed_and_unkeyed_approvers_is_refused(self, tmp_path: Path) -> None:
        """Some approvers signing and some not would let the unsigned ones speak for anyone: refused."""
        key = keypair(tmp_path, "alice")
        with pytest.raises(ConfigError, match="mix signed and unsigned"):
            load_platform(self._config(tmp_path / "c", [{"name": "alice", "key": key.public}, "bob"]))


@pytest.fixture
def keyed(tmp_path: Path, prefect_api: str) -> dict[str, Any]:
    """The release platform with prod's approvers alice and bob holding SSH keys; staging has dev's release."""
    del prefect_api
    return keyed_release_platform(tmp_path)


class TestSignedApprovals:
    """With keyed approvers, the flow itself verifies every decision; forged ones leave it paused."""

    def test_forged_decisions_are_refused_and_alices_signature_resumes(self, keyed: dict[str, Any]) -> None:
        """No signature, bob's key as alice, another run's or digest's signature: refused; alice's own: verified."""
        from strataflow import state

        config, staging, prod = keyed["config"], keyed["staging"], keyed["prod"]
        alice, bob = keyed["keys"]["alice"], keyed["keys"]["bob"]
        with paused("promote", staging, prod, "--config", str(config)) as (run_id, process):
            request, _ = state.read_request(run_id) or (None, None)
            assert request is not None and request.signed

            def signed(key: KeyPair, run: str = run_id, digest: str = request.digest) -> str:
                return sshsig.sign_with_file(signed_text(run, "approve", "alice", prod, digest), key.private)

            forged = ["", signed(bob), signed(alice, run="00000000-0000-0000-0000-000000000000"), signed(alice, digest="0" * 64)]
            for count, signature in enumerate(forged, start=1):  # straight to the API, past the command line's checks
                state.resume(run_id, Answer(decision="approve", approver="alice", digest=request.digest, signature=signature))
                _wait_for_refusals(prod, run_id, count)
                _wait_until_paused(run_id)
            refused_cli = strata("approve", run_id, "--as", "alice", "--key", str(bob.private))
            assert refused_cli.returncode == 2 and "signature" in refused_cli.stderr
            ok("approve", run_id, "--as", "alice", "--key", str(alice.private))
            _, err = process.communicate(timeout=180)
            assert process.returncode == 0, err
        web = status(keyed, prod)["components"]["web"]
        assert web["approved_by"] == "alice (verified)"
        history = ok("history", prod, "--config", str(config)).stdout
        assert "approve by alice (verified)" in history
        artifacts = everything([run_id])["artifacts"]
        still_paused = [a for a in artifacts if "Still paused" in str(a.get("data"))]
        assert len(still_paused) == 4, "each refusal is shown on the promotion's own run"
        report = next(a for a in artifacts if a.get("key", "") and a["key"].startswith("strata-promotion-") and "succeeded" in str(a["data"]))
        assert str(report["data"]).count("approve by alice:") >= 5, "the final report lists every refused attempt"

    def test_strata_sign_output_pasted_into_the_form_counts(self, keyed: dict[str, Any], tmp_path: Path) -> None:
        """The block `strata sign` prints (through ssh-agent) is what the UI's signature field takes."""
        from strataflow import state

        config, staging, prod = keyed["config"], keyed["staging"], keyed["prod"]
        bob = keyed["keys"]["bob"]
        with paused("promote", staging, prod, "--config", str(config)) as (run_id, process), agent(tmp_path, bob) as env:
            block = ok("sign", run_id, "--as", "bob", env=env).stdout
            assert block.startswith("-----BEGIN SSH SIGNATURE-----")
            request, _ = state.read_request(run_id) or (None, None)
            assert request is not None
            pasted = block.replace("\n", " ")  # a form field loses the line breaks
            state.resume(run_id, Answer(decision="approve", approver="bob", digest=request.digest, signature=pasted))
            _, err = process.communicate(timeout=180)
            assert process.returncode == 0, err
        assert status(keyed, prod)["components"]["web"]["approved_by"] == "bob (verified)"


def _wait_until_paused(run_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while run_state(run_id) != "PAUSED":
        assert time.monotonic() < deadline, "the run did not pause again"
        time.sleep(0.3)


def _wait_for_refusals(env: str, run_id: str, count: int, timeout: float = 60) -> None:
    from strataflow import state

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in state.run_history(env, "aws", 50) if r.kind == "approval" and r.detail.get("promotion") == run_id]
        if len([r for r in found if r.status == "refused"]) >= count:
            return
        time.sleep(0.5)
    raise AssertionError(f"{count} refusals were not recorded in {timeout:g}s")


class TestWhatTheApproverSees:
    """Before the pause, the run shows what is approved; after it, no traceback and no raw mermaid."""

    def test_the_paused_run_shows_the_report_and_a_rejection_ends_cleanly(self, tmp_path: Path, prefect_api: str) -> None:
        """The paused run has the promotion report (gates, changes, plan, digest, approvers); a rejection logs no traceback."""
        found = release_platform(tmp_path / "cfg")
        config = str(found["config"])
        ok("apply", found["dev"], "--config", config)
        ok("promote", found["dev"], found["staging"], "--config", config)
        with paused("promote", found["staging"], found["prod"], "--config", config) as (run_id, process):
            shown = everything([run_id])
            reports = [a for a in shown["artifacts"] if (a.get("key") or "").startswith("strata-promotion-")]
            assert reports, "the report is published before the pause"
            text = str(reports[-1]["data"])
            for expected in ("awaiting approval", "## Gates", "**PASS**", "## Changes", "Plan", "alice, bob", "Digest"):
                assert expected in text
            description = [a for a in shown["artifacts"] if a.get("key") == f"strata-approval-{run_id}"]
            assert description and "alice" in str(description[0]["description"])
            ok("reject", run_id, "--as", "alice", "--comment", "not now")
            _, err = process.communicate(timeout=120)
            assert process.returncode == 3 and "rejected by alice (not verified): not now" in err
        assert deployed(found, found["prod"]) == []
        after = everything([run_id])
        assert not [log for log in after["logs"] if "Traceback" in log["message"]]
        history = ok("history", found["prod"], "--config", config, "--json").stdout
        promotion = next(r for r in json.loads(history) if r["kind"] == "promote")
        assert promotion["status"] == "rejected"

    def test_no_artifact_holds_raw_mermaid(self, tmp_path: Path, prefect_api: str) -> None:
        """The apply report lists outputs in full and draws no mermaid source (the UI draws the task graph)."""
        found = release_platform(tmp_path / "cfg")
        report = json.loads(ok("apply", found["dev"], "--config", str(found["config"]), "--json").stdout)
        artifacts = everything([report["flow_run_id"]])["artifacts"]
        assert artifacts
        for artifact in artifacts:
            assert "flowchart" not in str(artifact.get("data")) and "```mermaid" not in str(artifact.get("data"))


class TestWaitingInHistory:
    """`strata history` says a promotion is awaiting approval while it is."""

    def test_history_says_awaiting_approval(self, tmp_path: Path, prefect_api: str) -> None:
        """While paused, the promotion's line reads "awaiting approval by alice, bob"."""
        found = release_platform(tmp_path / "cfg")
        config = str(found["config"])
        ok("apply", found["dev"], "--config", config)
        ok("promote", found["dev"], found["staging"], "--config", config)
        with paused("promote", found["staging"], found["prod"], "--config", config):
            line = next(line for line in ok("history", found["prod"], "--config", config).stdout.splitlines() if " promote " in line)
            assert "awaiting approval" in line and "alice, bob" in line and "auto" not in line
