"""Run `strata` in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AS_USER = {"PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL"}
"""What `strata` sets when the user has not (the test session asks Prefect for WARNING lines)."""


def strata(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`strata ARGS` in a subprocess; its result, whatever it is."""
    return subprocess.run(
        [sys.executable, "-m", "strataflow", *args],
        cwd=cwd or ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`strata ARGS` with the console a user gets; fails the test on a traceback."""
    result = strata(*args, env={**AS_USER, **(env or {})}, timeout=timeout)
    assert "Traceback" not in result.stderr, result.stderr
    return result
