"""SMART on FHIR in a real browser (issue #21): Chromium follows an EHR launch and a standalone
launch from the test EHR (tests/support/smart_ehr.py) to the patient's plan, then follows the
patient into ldncare. The app runs under uvicorn with SMART configured, the EHR on its own
port; every redirect is the browser's own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import _free_port, login, serve_in_thread
from tests.shared_data import SYNTHEA
from tests.support.smart_ehr import CLIENT_ID, SmartEhr, load_patients

DIRK = "948e608d-e408-4788-8cf2-8157c49c2940"
DIRK_FILE = SYNTHEA / "Dirk_Kuhlman_1e503533-b8c2-42cb-a6d5-bbd7d70d07ad.json"
BUSTER_FILE = SYNTHEA / "Buster_Hoeger_ad2e3fc5-2b5d-4cb9-8d03-9ea0f4ac8423.json"
BUSTER = json.loads(BUSTER_FILE.read_text())["entry"][0]["resource"]["id"]


@dataclass(frozen=True)
class Site:
    ldncare: str
    ehr: SmartEhr


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from ldncare.web.app import create_app
    from ldncare.web.demo import load_demo
    from ldncare.web.settings import WebSettings
    from ldncare.web.smart.settings import SmartSettings

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    records = load_patients([DIRK_FILE, BUSTER_FILE])
    with SmartEhr(records, redirect_uri=f"{base}/smart/callback") as ehr:
        db: Path = tmp_path_factory.mktemp("smart-e2e") / "e2e.db"
        settings = WebSettings(database_url=f"sqlite:///{db}", demo=True, cookie_secure=False)
        smart = SmartSettings(
            client_id=CLIENT_ID,
            redirect_uri=f"{base}/smart/callback",
            allowed_issuers=ehr.fhir_base,
        )
        app = create_app(settings, smart=smart)
        app.state.demo_logins = load_demo(app.state.engine)
        with serve_in_thread(app, port):
            yield Site(base, ehr)


def test_an_ehr_launch_in_the_browser_opens_the_patients_plan_and_follows_him(
    site: Site, browser: Any
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    launch = site.ehr.new_launch(DIRK)
    page.goto(f"{site.ldncare}/smart/launch?iss={site.ehr.fhir_base}&launch={launch}")
    page.wait_for_url(f"{site.ldncare}/smart/patient")
    assert "Dirk" in page.locator("h1").inner_text()
    assert page.locator("#ehr-medications").get_by_text("Meperidine").count() >= 1
    assert page.locator("#eligibility").is_visible()
    # No token is readable by the page's script context: the one cookie is HttpOnly.
    assert page.evaluate("document.cookie") == ""
    # Following needs an ldncare clinician: log in in another tab, then follow from the plan.
    other = context.new_page()
    login(other, site.ldncare, "clinician")
    other.close()
    page.reload()
    page.click("#follow")
    page.wait_for_load_state()
    assert "/patients/" in page.url
    assert page.get_by_text("Meperidine").count() >= 1
    context.close()


def test_a_standalone_launch_in_the_browser_opens_the_patient_picked_at_the_ehr(
    site: Site, browser: Any
) -> None:
    site.ehr.picked_patient = BUSTER
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{site.ldncare}/smart/launch")
    page.wait_for_url(f"{site.ldncare}/smart/patient")
    assert "Buster" in page.locator("h1").inner_text()
    context.close()


def test_consent_refused_at_the_ehr_shows_a_clear_page_in_the_browser(
    site: Site, browser: Any
) -> None:
    site.ehr.deny = True
    try:
        context = browser.new_context()
        page = context.new_page()
        launch = site.ehr.new_launch(DIRK)
        page.goto(f"{site.ldncare}/smart/launch?iss={site.ehr.fhir_base}&launch={launch}")
        page.wait_for_load_state()
        assert page.locator("h1").inner_text() == "Access was not granted"
        assert page.locator("#smart-problem").get_attribute("data-kind") == "ConsentDenied"
        context.close()
    finally:
        site.ehr.deny = False
