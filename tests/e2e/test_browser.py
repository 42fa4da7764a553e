"""End to end in a real browser: Playwright for Python driving Debian's chromium.

The app and the browser come from conftest.py (uvicorn on a fresh SQLite file with the demo
data). Screenshots of the main pages are written to docs/screenshots/.
Never `playwright install`: the browser is /usr/bin/chromium (scripts/ci-system-deps.sh).
"""

from __future__ import annotations

import os
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from tests.e2e.conftest import login

# Screenshots go to a temporary folder, so a test run never rewrites tracked files;
# `make screenshots` sets LDNCARE_SCREENSHOTS=docs/screenshots to refresh the README's pictures.
SHOTS = Path(os.environ.get("LDNCARE_SCREENSHOTS") or tempfile.mkdtemp(prefix="ldncare-shots-"))


def test_clinician_creates_patient_assesses_sees_plan_and_gets_pdf(
    server: str, browser: object
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(f"{server}/login")
    page.screenshot(path=str(SHOTS / "login.png"))
    login(page, server, "clinician")
    assert page.locator("h1").inner_text().startswith("Patients")
    assert page.locator("#patients").get_by_text("safety alert").count() >= 1
    page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True)

    page.click("text=New patient")
    page.fill("#external_id", "e2e-1")
    page.fill("#name", "Erika Browser")
    page.fill("#birth_date", "1982-04-03")
    page.select_option("#sex", "female")
    page.fill("#conditions", "Pudendal neuralgia")
    page.fill("#medications", "Paracetamol | 1 g")
    page.fill("#egfr", "90")
    page.screenshot(path=str(SHOTS / "new-patient.png"), full_page=True)
    page.click("#patient-form button[type=submit]")
    page.wait_for_load_state()
    assert "Patient stored with plan version 1" in page.content()

    # Run an assessment with the Nantes checklist: a new plan version with the Nantes section.
    page.click("text=Run assessment")
    for item in ("pudendal_territory", "worse_sitting", "not_woken_at_night", "no_sensory_loss",
                 "block_relieves"):  # fmt: skip
        page.select_option(f"#nantes_{item}", "yes")
    for item in ("only_coccygeal_gluteal_hypogastric", "pruritus", "only_paroxysmal",
                 "imaging_explains"):  # fmt: skip
        page.select_option(f"#nantes_{item}", "no")
    page.fill("#reason", "first visit with Nantes checklist")
    page.click("#patient-form button[type=submit]")
    page.wait_for_load_state()
    html = page.content()
    assert "Assessment recorded" in html
    assert "Plan v2" in html
    for section in ("From the Guidelines", "Key Considerations", "Treatment Approach",
                    "Patient-specific findings", "Pudendal neuralgia diagnosis"):  # fmt: skip
        assert section in html
    assert page.locator(".cal table").count() >= 2
    assert page.locator(".chart svg").count() == 1

    href = page.get_attribute("#handout-link", "href")
    assert href and href.endswith("handout.pdf")
    pdf = context.request.get(f"{server}{href}")
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF")
    context.close()

    # The richest demo record for the screenshot: the responder, with a full diary.
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    login(page, server, "clinician")
    page.click("text=David Muster")
    page.wait_for_load_state()
    assert "responder substantial" in page.content()
    page.screenshot(path=str(SHOTS / "patient.png"), full_page=True)
    context.close()


def test_patient_logs_three_days_and_sees_the_chart(server: str, browser: object) -> None:
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    page = context.new_page()
    login(page, server, "titrating")
    assert "Tonight" in page.content()
    page.screenshot(path=str(SHOTS / "patient-home-phone.png"), full_page=True)
    page.click("text=Fill in today's diary")
    today = date.today()
    for back, (avg, worst, sit) in enumerate(((5, 7, 35), (4, 6, 45), (4, 5, 50))):
        page.fill("#day", (today - timedelta(days=2 - back)).isoformat())
        page.fill("#pain_avg", str(avg))
        page.fill("#pain_worst", str(worst))
        page.fill("#sitting_minutes", str(sit))
        page.click("#diary-form button[type=submit]")
        page.wait_for_load_state()
        assert "Saved" in page.content()
    rows = page.locator("#diary-days tbody tr")
    assert rows.count() >= 3
    assert "45 min" in page.locator("#diary-days").inner_text()
    assert page.locator("#chart svg").count() == 1
    page.screenshot(path=str(SHOTS / "patient-diary-phone.png"), full_page=True)
    context.close()


def test_patient_cannot_open_another_patients_page(server: str, browser: object) -> None:
    context = browser.new_context()  # type: ignore[attr-defined]
    page = context.new_page()
    login(page, server, "titrating")
    me = context.request.get(f"{server}/api/session").json()
    other = me["patient_id"] + 1
    response = page.goto(f"{server}/patients/{other}")
    assert response is not None and response.status in (403, 404)
    api = context.request.get(f"{server}/api/patients/{other}")
    assert api.status == 404
    own = context.request.get(f"{server}/api/patients/{me['patient_id']}")
    assert own.status == 200
    context.close()


def test_api_docs_render_with_no_request_leaving_the_server(server: str, browser: object) -> None:
    """A clinic network is often closed: Swagger UI must render from ldncare's own assets."""
    context = browser.new_context()  # type: ignore[attr-defined]
    elsewhere: list[str] = []

    def only_local(route: Any) -> None:
        url = route.request.url
        if url.startswith((server + "/", "data:")):
            route.continue_()
        else:  # what a closed network does: nothing outside answers
            elsewhere.append(url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    response = page.goto(f"{server}/docs")
    assert response is not None and response.status == 200
    page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
    assert page.locator(".swagger-ui .info .title").inner_text().startswith("ldncare")
    page.wait_for_selector(".opblock", timeout=15_000)  # operations read from /openapi.json
    assert page.locator(".opblock").count() > 10
    assert elsewhere == []
    assert not [e for e in errors if "Content Security Policy" in e], errors
    page.screenshot(path=str(SHOTS / "api-docs.png"))
    context.close()
