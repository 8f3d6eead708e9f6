"""Lock fencing and dead runs: a run that cannot prove it holds its environment starts nothing more.

The stops and kills are real (SIGSTOP past the 60 s lease, a forced unlock, the API killed);
each test ends by checking that no component ran twice at once and what the history says.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from uuid import uuid4

import pytest

from strataflow.errors import LockLost
from strataflow.state.lock import Lease
from tests.support.cli import cli
from tests.support.configs import command, count, marked, unique, write_platform
from tests.support.processes import Processes, start_server, stop_server
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("prefect_api")


class TestLease:
    """The fence itself: local time since the server last confirmed the lease."""

    def test_a_fresh_lease_passes_and_a_stale_one_fails(self) -> None:
        """Within the lease (less a margin) check() passes; past it, it raises LockLost saying why."""
        lease = Lease(uuid4(), "strata-x-aws", seconds=1.2)
        lease.check()
        time.sleep(1.05)
        with pytest.raises(LockLost, match="last confirmed"):
            lease.check()

    def test_a_confirmation_renews_the_proof_and_a_lost_lease_stays_lost(self) -> None:
        """confirmed() resets the clock; once lose() is called nothing brings it back."""
        lease = Lease(uuid4(), "strata-x-aws", seconds=1.2)
        time.sleep(0.6)
        lease.confirmed()
        time.sleep(0.6)
        lease.check()
        lease.lose("the server no longer knows its lease")
        lease.confirmed()
        with pytest.raises(LockLost, match="no longer knows"):
            lease.check()


def _sequence(marks: Path, names: list[str], sleep: float) -> dict[str, dict[str, object]]:
    """Components run one after another, each sleeping, each marking when it starts and ends."""
    found: dict[str, dict[str, object]] = {}
    previous = None
    for name in names:
        step = command(marked(name, marks, before=f"echo $STRATA_ENV >> {marks / (name + '.start')}; sleep {sleep:g}"))
        if previous:
            step["depends_on"] = [previous]
        found[name] = step
        previous = name
    return found


class TestStoppedRun:
    """A run stopped past its lease does not go on when it wakes up: the run that took over is alone."""

    def test_sigstop_past_the_lease(self, tmp_path: Path, procs: Processes) -> None:
        """Run 1 stopped for 75 s while `one` sleeps; run 2 takes the lock and applies; run 1 resumes, starts nothing, exits 4."""
        env, marks = unique("f"), tmp_path / "marks"
        marks.mkdir()
        config = write_platform(tmp_path / "cfg", _sequence(marks, ["one", "two"], sleep=3), {env: {}})
        first = procs.strata("apply", env, "--config", str(config), "--json")
        wait_until((marks / "one.start").exists, 90, what="the first run to start `one`")
        os.kill(first.pid, signal.SIGSTOP)
        try:
            second = cli("apply", env, "--config", str(config), "--wait-lock", "150", "--json", timeout=300)
            assert second.returncode == 0, second.stderr
        finally:
            os.kill(first.pid, signal.SIGCONT)
        code = first.wait(120)
        assert code == 4, first.err()
        assert "lost the lock" in first.err()
        starts = (marks / "two.start").read_text().splitlines()
        assert starts == [env], "only the run that held the lock started `two`"
        history = json.loads(cli("history", env, "--config", str(config), "--json").stdout)
        assert sorted(r["status"] for r in history if r["kind"] == "orchestrate") == ["lock lost", "succeeded"]


class TestForcedUnlock:
    """`strata unlock --force` while the holder lives: the holder notices and stops starting components."""

    def test_a_forced_unlock_stops_the_holder(self, tmp_path: Path, procs: Processes) -> None:
        """After the unlock the run ends with exit 4 within a renewal, having started no new component."""
        env, marks = unique("u"), tmp_path / "marks"
        marks.mkdir()
        names = [f"c{i}" for i in range(8)]
        config = write_platform(tmp_path / "cfg", _sequence(marks, names, sleep=6), {env: {}})
        run = procs.strata("apply", env, "--config", str(config), "--json")
        wait_until((marks / "c0.start").exists, 90, what="the run to start")
        unlocked = cli("unlock", env, "--config", str(config), "--cloud", "aws", "--force", "--as", "oscar")
        assert unlocked.returncode == 0, unlocked.stderr
        code = run.wait(120)
        assert code == 4, run.err()
        started = sum(1 for n in names if (marks / f"{n}.start").exists())
        assert started < len(names), "the run went on after losing its lock"
        report = json.loads(run.out())
        assert any("not started" in (c.get("error") or "") for c in report["components"].values())


class TestDeadApi:
    """The Prefect API gone mid-run: `strata` says so in bounded time and keeps what it knew."""

    def test_a_killed_server_ends_the_command_with_a_clear_message(self, tmp_path: Path, procs: Processes) -> None:
        """With its server killed, `strata apply` exits 1 within two minutes, naming the API, with a local report."""
        home = tmp_path / "home"
        info = start_server(home)
        own = {
            "STRATA_HOME": str(home),
            "PREFECT_API_URL": info["url"] + "/api",
            "PREFECT_UI_URL": info["url"],
            "STRATA_API_TIMEOUT": "20",
        }
        env, marks = unique("a"), tmp_path / "marks"
        marks.mkdir()
        config = write_platform(tmp_path / "cfg", _sequence(marks, ["one", "two"], sleep=30), {env: {}})
        report = tmp_path / "report.json"
        run = procs.strata("apply", env, "--config", str(config), "--report", str(report), env=own)
        try:
            wait_until((marks / "one.start").exists, 90, what="the run to start")
            stop_server(home)
            killed = time.monotonic()
            code = run.wait(150)
            took = time.monotonic() - killed
        finally:
            stop_server(home)
        print(f"strata gave up {took:.0f}s after the server was killed")
        assert code == 1, run.err()
        assert took < 120
        err = run.err()
        assert info["url"] in err and "--resume" in err and "Traceback" not in err
        written = json.loads(report.read_text())
        assert written["env"] == env and written["status"] == "failed"
        assert set(written["components"]) == {"one", "two"}


class TestCrashedRunsAndResume:
    """A run whose process died shows as crashed; resume redoes what it did not record, forced or not."""

    def test_killed_forced_run_is_crashed_and_resume_redoes_it(self, tmp_path: Path, procs: Processes) -> None:
        """SIGKILL during a --force apply: history says crashed once the lease expires; --resume reruns `two`."""
        env, marks = unique("k"), tmp_path / "marks"
        marks.mkdir()
        config = write_platform(tmp_path / "cfg", _sequence(marks, ["one", "two"], sleep=1), {env: {}})
        assert cli("apply", env, "--config", str(config)).returncode == 0
        forced = procs.strata("apply", env, "--config", str(config), "--force")
        wait_until(lambda: count(marks, "two.start") == 2, 90, what="the forced run to start `two`")
        os.killpg(forced.pid, signal.SIGKILL)
        forced.wait(30)
        resumed = cli("apply", env, "--config", str(config), "--resume", "--wait-lock", "150", "--json", timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        report = json.loads(resumed.stdout)
        assert report["components"]["two"]["status"] == "succeeded", "the interrupted forced component runs again"
        history = json.loads(cli("history", env, "--config", str(config), "--json").stdout)
        crashed = [r for r in history if r["status"] == "crashed"]
        assert crashed and "lease expired" in crashed[0]["detail"]["crashed"]

    def test_a_destroy_is_resumed_only_as_a_destroy(self, tmp_path: Path) -> None:
        """After a destroy, `apply --resume` refuses (exit 2) naming `strata destroy ENV --resume`."""
        env, marks = unique("d"), tmp_path / "marks"
        marks.mkdir()
        config = write_platform(tmp_path / "cfg", _sequence(marks, ["one"], sleep=0), {env: {}})
        assert cli("apply", env, "--config", str(config)).returncode == 0
        assert cli("destroy", env, "--config", str(config)).returncode == 0
        result = cli("apply", env, "--config", str(config), "--resume")
        assert result.returncode == 2 and f"strata destroy {env} --resume" in result.stderr
        assert cli("destroy", env, "--config", str(config), "--resume").returncode == 0
