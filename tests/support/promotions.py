"""Running promotions from tests: `strata` that must succeed, and a promotion held at its approval."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.cli import ROOT, strata


def ok(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`strata ARGS`, which must exit 0 (the failure shows its stderr)."""
    result = strata(*args, env=env, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result


@contextmanager
def paused(*args: str, actor: str = "rita", env: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Start `strata ARGS --as actor --json` (a promotion, rollback or break-glass apply); yield its flow
    run id once it waits for approval, and the process (ended when the block is left)."""
    import os

    process = subprocess.Popen(
        [sys.executable, "-m", "strataflow", *args, "--as", actor, "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stderr is not None
    seen = []
    deadline = time.monotonic() + 180
    flow_run_id = None
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        match = re.search(r"strata approve ([0-9a-f-]{36})", line)
        if match:
            flow_run_id = match.group(1)
            break
    assert flow_run_id, "".join(seen)
    while run_state(flow_run_id) != "PAUSED":  # the line is printed just before the run pauses
        assert time.monotonic() < deadline and process.poll() is None, "".join(seen)
        time.sleep(0.2)
    try:
        yield flow_run_id, process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def run_state(flow_run_id: str) -> str:
    """The flow run's state type (PAUSED, RUNNING, COMPLETED, ...), read through the API."""
    from strataflow import state

    found = state.paused(flow_run_id)
    assert found is not None
    return str(found["type"])



__all__ = ["ok", "paused", "run_state"]
