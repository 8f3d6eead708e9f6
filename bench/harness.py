"""One local Prefect server for the whole bench, in a fresh ``STRATA_HOME``; CPU and settle helpers.

Order matters: ``PREFECT_API_URL`` must be in the environment before Prefect is imported,
or Prefect falls back to an ephemeral server (which loses state at exit). So nothing in bench/ imports
Prefect, ``flows`` or ``tasks`` at module level; they are imported after ``Harness.start``.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` (its own threads, not children)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Harness:
    """A fresh STRATA_HOME, a local Prefect server in it, and the environment for CLI subprocesses."""

    def __init__(self, keep: bool = False) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="strata-bench-home-"))
        self.work = Path(tempfile.mkdtemp(prefix="strata-bench-work-"))
        self.keep = keep
        self.server_pid: int | None = None
        self.server_start_s = 0.0
        self.api_url = ""

    def start(self) -> None:
        os.environ["STRATA_HOME"] = str(self.home)
        os.environ.pop("PREFECT_API_URL", None)
        os.environ.pop("PREFECT_UI_URL", None)
        os.environ["STRATA_ACTOR"] = "bench"
        # Prefect's console lines would drown the bench's own output; the API log handler stays on
        os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "CRITICAL"
        os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL"] = "CRITICAL"
        os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL"] = "CRITICAL"
        from strataflow import server

        clock = time.perf_counter()
        self.api_url = server.ensure_api(announce=False)
        self.server_start_s = time.perf_counter() - clock
        info = server.local_server()
        self.server_pid = int(info["pid"]) if info else None

    def stop(self) -> dict[str, float]:
        """Flush what Prefect still holds for the server, stop it (and the sandbox), remove the home."""
        timings: dict[str, float] = {}
        clock = time.perf_counter()
        if "prefect" in sys.modules:
            # Without this, the log and event workers retry against a stopped server at exit (~75 s).
            from prefect.events.worker import EventsWorker
            from prefect.logging.handlers import APILogWorker

            for worker in (APILogWorker, EventsWorker):
                with contextlib.suppress(Exception):  # best effort at shutdown
                    worker.drain_all(timeout=30)
        timings["drain_s"] = time.perf_counter() - clock
        from strataflow import server

        clock = time.perf_counter()
        server.stop()
        timings["stop_s"] = time.perf_counter() - clock
        if not self.keep:
            shutil.rmtree(self.home, ignore_errors=True)
            shutil.rmtree(self.work, ignore_errors=True)
        return timings

    def server_cpu(self) -> float:
        return proc_cpu(self.server_pid) if self.server_pid else 0.0

    def settle(self, idle_fraction: float = 0.10, window: float = 0.5, limit: float = 20.0) -> float:
        """Wait until the server's CPU use over ``window`` seconds drops below ``idle_fraction``.

        The server keeps ingesting a run's events and logs for seconds after the flow returns;
        starting the next measured run before that would charge it for the previous one.
        Returns the seconds waited.
        """
        if not self.server_pid:
            return 0.0
        start = time.perf_counter()
        while time.perf_counter() - start < limit:
            before = proc_cpu(self.server_pid)
            time.sleep(window)
            if proc_cpu(self.server_pid) - before < idle_fraction * window:
                break
        return time.perf_counter() - start

    def cli_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["STRATA_HOME"] = str(self.home)
        env["PREFECT_API_URL"] = self.api_url
        env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        return env

    def strata(self, *args: str, timeout: float = 900.0) -> tuple[subprocess.CompletedProcess[str], float]:
        """Run ``python -m strataflow ARGS`` against the bench's server; returns the result and wall seconds."""
        clock = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "strataflow", *args],
            cwd=ROOT,
            env=self.cli_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return result, time.perf_counter() - clock


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    info: dict[str, Any] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    with contextlib.suppress(OSError):
        info["loadavg_at_start"] = list(os.getloadavg())
    try:
        from importlib.metadata import version

        info["prefect"] = version("prefect")
    except Exception:  # noqa: BLE001
        pass
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        info["git"] = rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except OSError:
        pass
    return info
