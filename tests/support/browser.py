"""A real headless Chromium (Debian's `chromium` and `chromium-driver`) driven by Selenium, for UI tests.

The browser and its driver are the system's, never downloaded (no Selenium Manager): on a
machine without them the test fails saying how to install them (`.ci/run` installs them in CI).
The machine may have no internet, so Chromium starts with its background networking off. A
failed test leaves a screenshot, the page's HTML and the browser console under its tmp dir.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = "apt-get update && apt-get install -y chromium chromium-driver"
FLAGS = [
    # No internet here: background networking, QUIC, sync and component updates make connections hang.
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1600,1200",
    # No WebGL: the run page's live graph, drawn in software, keeps a core busy on a 2-core machine
    # (the page logs "Unable to auto-detect a suitable renderer" and shows the rest).
    "--disable-3d-apis",
]


def _require_system_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            f"this test drives a real headless Chromium: Debian's chromium and chromium-driver are needed "
            f"({', '.join(missing)} missing); install them with: {INSTALL}",
            pytrace=False,
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.fail("this test needs selenium: pip install -e '.[dev]'", pytrace=False)


class Console:
    """Every browser console entry seen so far (Chromium hands each one out once)."""

    def __init__(self, driver: WebDriver) -> None:
        self._driver = driver
        self.entries: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        self.entries.extend(self._driver.get_log("browser"))
        return self.entries


@pytest.fixture(scope="module")
def chromium() -> Iterator[tuple[WebDriver, Console]]:
    """One headless Chromium for the module's tests, with a fresh profile and its console captured."""
    _require_system_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = Path(tempfile.mkdtemp(prefix="strata-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver, Console(driver)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def console(chromium: tuple[WebDriver, Console]) -> Console:
    """The browser console of the module's Chromium (entries accumulate across its tests)."""
    return chromium[1]


@pytest.fixture
def browser(chromium: tuple[WebDriver, Console], request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WebDriver]:
    """The module's Chromium for one test; if the test fails, a screenshot, the page and the console are kept in its tmp dir."""
    driver, log = chromium
    failed_before = request.session.testsfailed
    yield driver
    if request.session.testsfailed > failed_before:  # the call's report is logged before teardown
        shot = tmp_path / "browser-failure.png"
        try:
            driver.save_screenshot(str(shot))
            (tmp_path / "browser-failure.html").write_text(driver.page_source)
            (tmp_path / "browser-console.json").write_text(json.dumps(log.read(), indent=1))
        except Exception as exc:  # a dead browser must not hide the test's own failure
            print(f"could not capture the browser after the failure: {exc}")
        else:
            print(f"browser at failure ({driver.current_url}): {shot}")


__all__ = ["CHROMEDRIVER", "CHROMIUM", "INSTALL", "Console", "browser", "chromium", "console"]
