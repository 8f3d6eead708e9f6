"""Approving a promotion through the Prefect UI, in a real headless Chromium (issue 15).

A promotion into an environment whose approvers carry SSH keys pauses; in the browser the
paused run shows the promotion report artifact and the form's description, the form says who
may approve, a decision without a valid signature is refused (the run stays paused, the
refusal is recorded), and a paste of `strata sign` output into the signature field approves it.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.browser import (  # noqa: F401 - the fixtures, used by name
    Console,
    browser,
    chromium,
    console,
)
from tests.support.promotions import ok, paused, run_state
from tests.support.releases import keyed_release_platform, status

WAIT = 60.0
"""Seconds the browser waits for the UI (a shared 2-core machine is slow)."""


def _page_text(driver: WebDriver) -> str:
    return str(driver.find_element(By.TAG_NAME, "body").text)


def _wait_for_text(driver: WebDriver, *texts: str, timeout: float = WAIT) -> str:
    """Wait until every one of ``texts`` is visible on the page; the page's visible text."""
    try:
        WebDriverWait(driver, timeout).until(lambda d: all(t in _page_text(d) for t in texts))
    except TimeoutException:
        missing = [t for t in texts if t not in _page_text(driver)]
        raise AssertionError(f"not shown after {timeout:g}s: {missing}") from None
    return _page_text(driver)


def _click(driver: WebDriver, xpath: str, timeout: float = WAIT) -> None:
    element = WebDriverWait(driver, timeout).until(ec.element_to_be_clickable((By.XPATH, xpath)))
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()


def _modal(driver: WebDriver) -> WebElement:
    return WebDriverWait(driver, WAIT).until(ec.visibility_of_element_located((By.XPATH, "//div[@role='dialog']")))


def _field(driver: WebDriver, label: str) -> WebElement:
    """The form field whose label starts with ``label`` (a Prefect schema-form property)."""
    xpath = (
        "//div[@role='dialog']//div[contains(concat(' ', @class, ' '), ' schema-form-property ')]"
        f"[.//span[contains(@class, 'schema-form-property__label')][starts-with(normalize-space(.), '{label}')]]"
    )
    return WebDriverWait(driver, WAIT).until(ec.visibility_of_element_located((By.XPATH, xpath)))


def _fill(driver: WebDriver, label: str, value: str) -> None:
    box = _field(driver, label).find_element(By.TAG_NAME, "textarea")
    box.clear()
    box.send_keys(value)
    assert box.get_attribute("value") == value, f"the {label} field holds {box.get_attribute('value')!r}"


def _stored_input(run_id: str, which: str) -> bool:
    """Whether the run is paused and its pause has stored its ``which`` input (``schema``: the form, or ``description``)."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(run_id))
        keyset = run.state.state_details.run_input_keyset if run.state and run.state.is_paused() else None
        if not keyset:
            return False
        try:
            client.read_flow_run_input(UUID(run_id), keyset[which])
        except ObjectNotFound:
            return False
    return True


def _open_resume_form(driver: WebDriver, log: Console, page: str, run_id: str) -> WebElement:
    """The paused run's page, its Resume button clicked, once the form is drawn; the UI fetched its description."""
    # Prefect stores a pause's form, then its description, just after the run enters PAUSED: wait for
    # the form, give the description a moment, then let the UI (and its console) say whether it found it.
    _wait_for("the paused run's form stored", lambda: _stored_input(run_id, "schema"))
    with contextlib.suppress(AssertionError):
        _wait_for("the paused run's description stored", lambda: _stored_input(run_id, "description"), timeout=10)
    driver.get(page)
    _click(driver, "//button[normalize-space(.)='Resume']")
    modal = _modal(driver)
    WebDriverWait(driver, WAIT).until(lambda d: "Signature" in modal.text, message="the resume form drew no fields")
    missing = _description_404s(log)
    assert not missing, f"the UI could not fetch the pause description: {missing}"
    assert "approval needed" in modal.text, f"the form shows no description: {modal.text}"
    return modal


def _submit(driver: WebDriver) -> None:
    _click(driver, "//div[@role='dialog']//button[normalize-space(.)='Submit']")
    WebDriverWait(driver, WAIT).until(
        ec.invisibility_of_element_located((By.XPATH, "//div[@role='dialog']")),
        message="the resume form stayed open after Submit (the server did not accept the input)",
    )


def _approvals(env: str, run_id: str) -> list[Any]:
    """The decisions recorded in ``env``'s history for the run (state.run_history), newest first."""
    from strataflow import state

    return [r for r in state.run_history(env, "aws", 50) if r.kind == "approval" and r.detail.get("promotion") == run_id]


def _refusals(env: str, run_id: str, count: int) -> list[Any]:
    """The refused decisions for the run, newest first, once there are ``count`` of them."""
    found = [r for r in _approvals(env, run_id) if r.status == "refused"]
    return found if len(found) >= count else []


def _wait_for(what: str, check: Any, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"not seen within {timeout:g}s: {what}")


def _description_404s(log: Console) -> list[str]:
    """Console lines saying the UI could not fetch a pause's input (its description or form)."""
    return [
        str(e["message"])
        for e in log.read()
        if ("/input/" in str(e["message"]) and "404" in str(e["message"]))
        or "input description not found" in str(e["message"])
    ]


class TestApprovalThroughTheUI:
    """The Prefect UI's resume form is a way to approve that is as strict as `strata approve`."""

    def test_the_form_refuses_an_unsigned_decision_and_takes_a_pasted_strata_sign(
        self,
        tmp_path: Path,
        prefect_api: str,
        browser: WebDriver,  # noqa: F811 - the imported fixture
        console: Console,  # noqa: F811 - the imported fixture
    ) -> None:
        """In Chromium: the report and description show, alice with a bad signature is refused, bob's pasted `strata sign` approves."""
        from strataflow import state

        keyed = keyed_release_platform(tmp_path)
        config, staging, prod = str(keyed["config"]), keyed["staging"], keyed["prod"]
        bob = keyed["keys"]["bob"]
        ui = prefect_api.removesuffix("/api").rstrip("/")
        with paused("promote", staging, prod, "--config", config) as (run_id, process):
            request, _ = state.read_request(run_id) or (None, None)
            assert request is not None and request.signed
            page = f"{ui}/runs/flow-run/{run_id}"

            # The paused run shows the promotion report: gates, changes, digest, who may decide.
            browser.get(page)
            _wait_for_text(browser, f"promote {staging} to {prod}", "Paused")
            _click(browser, "//li[normalize-space(.)='Artifacts']")
            key = f"strata-promotion-{staging}-{prod}".lower()
            _wait_for_text(browser, key)
            _click(browser, f"//a[contains(@href, '/artifacts/artifact/')][.//*[normalize-space(.)='{key}']]")
            report = _wait_for_text(browser, "awaiting approval", "Gates", "Changes", request.digest)
            assert "PASS" in report and "alice, bob" in report and "web" in report, report
            assert "```" not in report and "flowchart" not in report, "no raw markdown or mermaid source"

            # The form: the description, who may approve, the digest pre-filled.
            modal = _open_resume_form(browser, console, page, run_id)
            assert f"Promote {staging} → {prod}" in modal.text and request.digest in modal.text, modal.text
            approver_help = _field(browser, "Approver").text
            assert "one of alice, bob" in approver_help and "not the requester rita" in approver_help, approver_help
            assert "strata sign" in _field(browser, "Signature").text
            digest_box = _field(browser, "Digest").find_element(By.TAG_NAME, "textarea")
            assert digest_box.get_attribute("value") == request.digest

            # alice without a signature, then with bob's block: each refused and recorded; the run pauses again.
            block = ok("sign", run_id, "--as", "bob", "--key", str(bob.private)).stdout
            assert block.startswith("-----BEGIN SSH SIGNATURE-----"), block
            for count, (signature, why) in enumerate([("", "carries no signature"), (block, "not alice's")], start=1):
                if count > 1:
                    _open_resume_form(browser, console, page, run_id)
                _fill(browser, "Approver", "alice")
                _fill(browser, "Signature", signature)
                _submit(browser)
                refused = _wait_for(f"refusal {count} of alice's decision recorded",
                                    lambda n=count: _refusals(prod, run_id, n))
                assert refused[0].actor == "alice" and why in str(refused[0].detail.get("reason")), refused[0].detail
                _wait_for("the run paused again after the refusal", lambda: run_state(run_id) == "PAUSED")
                assert process.poll() is None, "the promotion must still be waiting"

            # bob pastes the output of `strata sign` into the signature field: approved.
            _open_resume_form(browser, console, page, run_id)
            _fill(browser, "Approver", "bob")
            _fill(browser, "Signature", block)
            _submit(browser)
            out, err = process.communicate(timeout=180)
            assert process.returncode == 0, err
            assert json.loads(out)["status"] == "succeeded" and "approved by bob (verified)" in err, err
        assert status(keyed, prod)["components"]["web"]["approved_by"] == "bob (verified)"
        decisions = sorted(_approvals(prod, run_id), key=lambda r: r.started_at)
        assert [(r.actor, r.status, r.detail.get("verified")) for r in decisions] == [
            ("alice", "refused", False),
            ("alice", "refused", False),
            ("bob", "accepted", True),
        ]
        missing = _description_404s(console)
        assert not missing, f"the UI could not fetch the pause description: {missing}"
