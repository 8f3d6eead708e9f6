"""Notifications through Prefect's notification blocks: the messages, one per event, broken blocks, and the flows' calls."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from strataflow.backends.base import ComponentRun, Drift
from strataflow.backends.memory import OK, FakeBackend, installed
from strataflow.config import Environment
from strataflow.notifications import (
    ApplyFailed,
    ApprovalWaiting,
    DriftFound,
    LockHeld,
    PromotionEnded,
    key,
    message,
    wanted,
)
from tests.support.configs import command, unique, write_platform
from tests.support.prefect_api import run_flow
from tests.support.processes import Processes
from tests.support.services import free_port
from tests.support.waiting import wait_until
from tests.support.webhook import Webhook, webhook_server

RUN = "0b7c2f5e-1111-4222-8333-444455556666"
SINCE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def events() -> list[Any]:
    """One event of each kind."""
    return [
        ApprovalWaiting(
            flow_run_id=RUN,
            target="prod",
            cloud="aws",
            source="staging",
            approvers=["alice", "bob"],
            requester="rita",
            url=f"http://ui.example/runs/flow-run/{RUN}",
        ),
        PromotionEnded(flow_run_id=RUN, target="prod", cloud="aws", source="staging", status="failed", components={"app": "exit 3"}),
        ApplyFailed(flow_run_id="r2", env="dev", cloud="aws", components={"network": "stack rolled back", "dns": "timed out"}),
        DriftFound(flow_run_id="r3", env="dev", cloud="aws", components={"network": ["subnet (update)"]}),
        LockHeld(flow_run_id="r4", env="dev", cloud="aws", since=SINCE, held_s=3700, threshold_s=1800, actor="ci"),
    ]


class TestMessages:
    """What each event says."""

    def test_approval_message_has_the_approve_command_and_link(self) -> None:
        """The approval message names the approvers and requester and carries `strata approve <id> --as NAME` and the UI link."""
        text = message(events()[0])
        assert f"strata approve {RUN} --as NAME" in text.body
        assert f"http://ui.example/runs/flow-run/{RUN}" in text.body
        assert "alice, bob" in text.body and "rita" in text.body
        assert "waits for approval" in text.subject and "prod" in text.subject

    def test_failures_name_components_and_causes(self) -> None:
        """A failed apply and a failed promotion list each failed component with its cause; drift lists the resources."""
        applied = message(events()[2])
        assert "network" in applied.subject and "**network**: stack rolled back" in applied.body
        assert "**dns**: timed out" in applied.body and "--resume" in applied.body
        assert "**app**: exit 3" in message(events()[1]).body
        assert "subnet (update)" in message(events()[3]).body

    def test_lock_message_names_the_holder_and_the_way_out(self) -> None:
        """The lock message says how long, by whom, and how to unlock a dead run's lock."""
        text = message(events()[4])
        assert "1h01m" in text.subject and "r4" in text.body and "strata unlock dev --cloud aws --force" in text.body

    def test_one_key_per_event_and_run(self) -> None:
        """The same event of the same run has one key; another run or another kind has another."""
        first = events()
        again = events()
        assert [key(e) for e in first] == [key(e) for e in again]
        assert len({key(e) for e in first}) == len(first)
        assert key(first[2]) != key(first[2].model_copy(update={"flow_run_id": "other"}))

    def test_a_refused_promotion_is_not_sent(self) -> None:
        """Promotions that succeeded, failed, were rejected or timed out are sent; a gate's refusal is not."""
        ended = events()[1]
        assert all(wanted(ended.model_copy(update={"status": s})) for s in ("succeeded", "failed", "rejected", "timed out"))
        assert not wanted(ended.model_copy(update={"status": "refused"}))


@pytest.fixture
def hook(prefect_api: str) -> Iterator[Webhook]:
    """A local webhook server; blocks saved with ``hook.block(path)`` post to it."""
    del prefect_api
    with webhook_server() as found:
        yield found


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    """Each test starts with no event remembered as sent."""
    from tasks.notify import forget

    forget()
    yield
    forget()


def broken_block() -> str:
    """A custom-webhook block pointed at a port nothing listens on."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    name = f"broken-{uuid.uuid4().hex[:10]}"
    CustomWebhookNotificationBlock(name=name, url=f"http://127.0.0.1:{free_port()}/x", timeout=2).save(name)
    return name


class TestBlocks:
    """Sending through Prefect's blocks: once per event, to every block named, whatever the others do."""

    def test_exactly_one_message_per_event(self, hook: Webhook) -> None:
        """Each event reported twice reaches the block once; the approval one carries the command and the link."""
        from tasks.notify import notify

        environment = Environment(name="dev", notify=[hook.block("/one")])
        for event in [*events(), *events()]:
            notify(environment, event)
        received = hook.wait_for(5, "/one")
        time.sleep(0.5)
        assert len(hook.received("/one")) == 5
        assert [m["subject"] for m in received] == [message(e).subject for e in events()]
        assert f"strata approve {RUN} --as NAME" in received[0]["body"] and f"/runs/flow-run/{RUN}" in received[0]["body"]

    def test_every_block_named_gets_it_by_name_or_type_and_name(self, hook: Webhook) -> None:
        """A block named bare or as `custom-webhook/NAME` each get the message."""
        from tasks.notify import notify

        first, second = hook.block("/a"), hook.block("/b")
        notify(Environment(name="dev", notify=[first, f"custom-webhook/{second}"]), events()[3])
        assert len(hook.wait_for(1, "/a")) == 1 and len(hook.wait_for(1, "/b")) == 1

    def test_a_broken_block_is_logged_and_the_others_still_get_it(self, hook: Webhook, caplog: pytest.LogCaptureFixture) -> None:
        """A missing block and an unreachable one are logged as errors; notify returns and the good block gets the message."""
        from tasks.notify import notify

        good = hook.block("/good")
        environment = Environment(name="dev", notify=["no-such-block", broken_block(), good])
        with caplog.at_level(logging.ERROR, logger="strataflow.notify"):
            notify(environment, events()[2])
        assert len(hook.wait_for(1, "/good")) == 1
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert any("no-such-block" in e for e in errors) and any("broken-" in e for e in errors), errors


@dataclass
class Drifting(FakeBackend):
    """Applies succeed; every drift check finds the component's bucket changed."""

    def drift(self, run: ComponentRun) -> Drift:
        return Drift(supported=True, drifted=True, resources=[f"{run.component}-bucket (update)"])


class TestFlows:
    """The flows' calls: a failed apply and found drift send one message each, and a broken block fails nothing."""

    def platform(self, tmp_path: Path, notify: list[str], **extra: Any) -> tuple[Path, str]:
        env = unique("n")
        config = write_platform(
            tmp_path / "cfg",
            {"base": command("true"), "app": command("true", ["base"]), "side": command("true")},
            {env: {"notify": notify, **extra}},
        )
        return config, env

    def test_failed_apply_sends_one_message_naming_component_and_cause(self, hook: Webhook, tmp_path: Path) -> None:
        """An apply whose component fails sends one message naming it, its cause and what was skipped; a good apply sends none."""
        config, env = self.platform(tmp_path, [hook.block("/apply")])
        with installed(FakeBackend(scripts={"base": [RuntimeError("quota exceeded"), OK]})):
            failed = run_flow(config, env)
            assert failed["status"] == "failed"
            received = hook.wait_for(1, "/apply")
            assert run_flow(config, env)["status"] == "succeeded"
        time.sleep(1.0)
        assert len(hook.received("/apply")) == 1
        assert "apply" in received[0]["subject"] and "base" in received[0]["subject"]
        assert "**base**" in received[0]["body"] and "quota exceeded" in received[0]["body"] and "app" in received[0]["body"]

    def test_drift_found_sends_one_message(self, hook: Webhook, tmp_path: Path) -> None:
        """A drift check that finds drift sends one message listing the drifted components and resources."""
        from flows.drift import drift

        config, env = self.platform(tmp_path, [hook.block("/drift")])
        with installed(Drifting()):
            assert run_flow(config, env)["status"] == "succeeded"
            found = drift(env=env, config_dir=str(config))
        assert sorted(found["drifted"]) == ["app", "base", "side"]
        received = hook.wait_for(1, "/drift")
        time.sleep(0.5)
        assert len(hook.received("/drift")) == 1
        assert "drift" in received[0]["subject"] and "base-bucket (update)" in received[0]["body"]

    def test_a_broken_block_never_fails_the_run(self, prefect_api: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        """With only broken blocks named, a failed apply still ends as a normal failed run with its report, the error logged."""
        del prefect_api
        config, env = self.platform(tmp_path, ["no-such-block", broken_block()])
        with caplog.at_level(logging.ERROR), installed(FakeBackend(scripts={"side": [RuntimeError("boom")]})):
            report = run_flow(config, env)
        assert report["status"] == "failed" and report["components"]["side"]["error"]
        assert any("could not notify through block" in r.getMessage() for r in caplog.records)


class TestLockHeld:
    """`strata metrics serve` tells an environment's blocks once when a run holds its lock too long."""

    def test_one_message_while_the_lock_is_held_too_long(self, hook: Webhook, tmp_path: Path, procs: Processes) -> None:
        """With notify_lock_after 1s, a held lock sends one message, however many refreshes see it."""
        from strataflow import state
        from strataflow.records import RunRecord, now

        env = unique("l")
        config = write_platform(
            tmp_path / "cfg", {"base": command("true")}, {env: {"notify": [hook.block("/lock")], "notify_lock_after": "1s"}}
        )
        holder = str(uuid.uuid4())
        started = now() - timedelta(seconds=5)
        state.write_run(RunRecord(env=env, cloud="aws", action="apply", status="running", flow_run_id=holder, actor="ci", started_at=started))
        with state.environment_lock(env, "aws", None, "ci"):
            port = free_port()
            job = procs.strata("metrics", "serve", "--port", str(port), "--interval", "1", "--env", env, "--config", str(config))
            wait_until(lambda: hook.received("/lock") or job.process.poll() is not None, 60, what="the lock message")
            assert job.process.poll() is None, job.err()
            time.sleep(3.5)  # three more refreshes see the same holder
        received = hook.received("/lock")
        assert len(received) == 1, received
        assert f"{env} (aws)" in received[0]["subject"] and holder in received[0]["body"]
