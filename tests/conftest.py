"""Session fixtures: one real local Prefect server for every test that runs or reads flows."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_HOME = Path(tempfile.mkdtemp(prefix="strata-test-home-"))
os.environ["STRATA_HOME"] = str(_HOME)
os.environ.pop("PREFECT_API_URL", None)
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
os.environ["STRATA_ACTOR"] = "tester"

from tests.support.processes import Processes  # noqa: E402 - after the environment above is set


def pytest_unconfigure(config: pytest.Config) -> None:
    """The session's STRATA_HOME goes with it (the server in it, if one was started, is stopped by then)."""
    del config
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def strata_home() -> Path:
    return _HOME


@pytest.fixture(scope="session")
def prefect_api(strata_home: Path) -> Iterator[str]:
    """A real `prefect server start` on 127.0.0.1, started the way `strata` starts it."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from strataflow import server

    url = server.ensure_api(announce=False)
    try:
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield url
    finally:
        from prefect.logging.handlers import APILogHandler

        APILogHandler().flush()
        server.stop()
        shutil.rmtree(strata_home, ignore_errors=True)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    """Background `strata` processes, ended (by process group) when the test is over."""
    processes = Processes(tmp_path)
    try:
        yield processes
    finally:
        processes.end_all()
