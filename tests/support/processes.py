"""Background `strata` processes and local Prefect servers of their own.

Every process started here is tracked by ``Processes`` and ended by its id (its own process
group), never by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.cli import AS_USER, ROOT


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@dataclass
class Background:
    """A `strata` command running in the background, its output in files."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    rusage: Any = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait(self, timeout: float) -> int:
        """Wait for the command (reaping it with wait4, so its peak RSS is known); its exit code."""
        deadline = time.monotonic() + timeout
        while self.process.returncode is None:
            pid, status, rusage = os.wait4(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.rusage = rusage
                self.process.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"strata (pid {self.pid}) still running after {timeout:g}s; stderr:\n{self.err()}")
            time.sleep(0.1)
        return self.process.returncode

    def out(self) -> str:
        return self.stdout.read_text(errors="replace")

    def err(self) -> str:
        return self.stderr.read_text(errors="replace")


@dataclass
class Processes:
    """Starts `strata` commands in the background and ends, by process group, those still running."""

    directory: Path
    started: list[Background] = field(default_factory=list)

    def strata(self, *args: str, env: dict[str, str] | None = None) -> Background:
        index = len(self.started)
        stdout, stderr = self.directory / f"strata-{index}.out", self.directory / f"strata-{index}.err"
        with open(stdout, "wb") as out, open(stderr, "wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "strataflow", *args],
                cwd=ROOT,
                env={**os.environ, **AS_USER, **(env or {})},
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        job = Background(process, stdout, stderr)
        self.started.append(job)
        return job

    def end_all(self) -> None:
        for job in self.started:
            if job.process.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(job.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError, AssertionError):
                    job.wait(10)


# --- a separate Prefect server ----------------------------------------------------------------


def start_server(home: Path, port: int | None = None) -> dict[str, Any]:
    """A local Prefect server of its own under ``home`` (as `strata` starts one), in a subprocess."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["STRATA_HOME"] = str(home)
    if port:
        env["STRATA_SERVER_PORT"] = str(port)
    code = "from strataflow import server; server.ensure_api(announce=False)"
    subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True, timeout=120, capture_output=True)
    info = json.loads((home / "server.json").read_text())
    assert info.get("port") == port or port is None, info
    return dict(info)


def stop_server(home: Path) -> None:
    """Stop the server (and sandboxes) under ``home``: their pids are in its state files."""
    env = {**os.environ, "STRATA_HOME": str(home)}
    code = "from strataflow import server; server.stop()"
    subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True, timeout=60, capture_output=True)
