"""WCAG 2.1 AA in a real browser: axe-core on every page a clinician, patient or admin can reach.

axe-core's JS comes inside the PyPI package axe-playwright-python (pinned in requirements/dev.lock),
so no page or test loads anything from a CDN. Every page is checked at desktop and phone size
with the WCAG 2 A/AA, 2.1 A/AA and best-practice rules; a single violation fails the test, and the
failure lists each rule with the CSS target of every offending element.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import DESKTOP, PHONE, Live, login

if os.environ.get("CI") == "true":  # in CI the dev lock installs it: missing is a failure
    import axe_playwright_python.sync_playwright as axe_sync
else:
    axe_sync = pytest.importorskip(
        "axe_playwright_python.sync_playwright",
        reason="axe-playwright-python missing: run scripts/bootstrap.sh dev",
    )

RULE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
OPTIONS = {"runOnly": {"type": "tag", "values": RULE_TAGS}, "resultTypes": ["violations"]}
SIZES = {"desktop": DESKTOP, "phone": PHONE}
AXE = axe_sync.Axe()


def violations(page: Any, label: str) -> list[str]:
    """axe-core's violations on the page as it is now, one line per rule with its targets."""
    result = AXE.run(page, options=OPTIONS)
    lines = []
    for v in result.response["violations"]:
        targets = ["/".join(map(str, n["target"])) for n in v["nodes"]]
        more = f" (+{len(targets) - 8} more)" if len(targets) > 8 else ""
        shown = ", ".join(targets[:8]) + more
        lines.append(f"{label}: {v['id']} ({v['impact']}, {len(targets)}x) {v['help']}: {shown}")
    return lines


class Audit:
    """Visits pages in one browser context and collects every page's violations."""

    def __init__(self, page: Any, base: str, size: str) -> None:
        self.page, self.base, self.size = page, base, size
        self.found: list[str] = []
        self.visited: list[str] = []

    def visit(self, path: str, status: int = 200) -> None:
        response = self.page.goto(f"{self.base}{path}")
        assert response is not None and response.status == status, (path, response)
        self.check(path)

    def check(self, label: str) -> None:
        self.visited.append(label)
        self.found += violations(self.page, f"[{self.size}] {label}")

    def assert_clean(self) -> None:
        if self.found:
            pytest.fail("axe-core violations:\n" + "\n".join(self.found), pytrace=False)


@pytest.fixture(params=sorted(SIZES))
def size(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def audit(live: Live, browser: Any, size: str) -> Iterator[Audit]:
    context = browser.new_context(**SIZES[size])
    try:
        yield Audit(context.new_page(), live.url, size)
    finally:
        context.close()


def _patient_ids(live: Live) -> list[int]:
    from ldncare.store import repository

    return [row.id for row in repository.list_patients(live.engine, actor="test:a11y")]


def test_the_axe_check_finds_a_real_violation(audit: Audit) -> None:
    """The check itself can fail: an image without alt text and a low-contrast line are caught."""
    audit.page.set_content(
        '<!doctype html><html lang="en"><head><title>t</title></head><body><main><h1>t</h1>'
        '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
        '<p style="color:#bbb;background:#fff">faint</p></main></body></html>'
    )
    rules = {line.split(": ")[1].split(" ")[0] for line in violations(audit.page, "probe")}
    assert {"image-alt", "color-contrast"} <= rules


def test_someone_not_logged_in_sees_accessible_login_and_error_pages(audit: Audit) -> None:
    audit.visit("/login")
    audit.page.fill("#username", "clinician")
    audit.page.fill("#password", "wrong-password")
    audit.page.click("button[type=submit]")
    audit.page.wait_for_load_state()
    assert audit.page.locator(".banner.error").count() == 1
    audit.check("/login after a wrong password")
    audit.assert_clean()


def test_a_clinician_reaches_only_accessible_pages(audit: Audit, live: Live) -> None:
    login(audit.page, audit.base, "clinician")
    audit.check("/ (dashboard)")
    audit.visit("/patients/new")
    ids = _patient_ids(live)
    for pid in ids:  # every demo record: responder, safety alert, titrating, no plan yet, ...
        audit.visit(f"/patients/{pid}")
        # Folded by default: the diary form with the CSV import, and the chart's data table.
        audit.page.click("#diary-add summary")
        if audit.page.locator("details.chart-data").count():
            audit.page.click("details.chart-data summary")
        audit.check(f"/patients/{pid} with the diary form and chart table open")
    first = ids[0]
    audit.visit(f"/patients/{first}/assess")
    audit.visit(f"/patients/{first}/adjust")
    # A review note saved: the page comes back with its confirmation banner.
    audit.visit(f"/patients/{first}")
    audit.page.fill("#note", "Reviewed with the patient, no change.")
    audit.page.click("form[action$='/review'] button[type=submit]")
    audit.page.wait_for_load_state()
    assert audit.page.locator(".banner.ok").count() == 1
    audit.check(f"/patients/{first} after a review note")
    # A diary day added by the clinician.
    audit.page.click("#diary-add summary")
    audit.page.fill("#pain_avg", "4")
    audit.page.click("#diary-form button[type=submit]")
    audit.page.wait_for_load_state()
    audit.check(f"/patients/{first} after a diary day")
    audit.visit("/ask")
    audit.visit("/ask?q=Can+a+patient+on+tramadol+take+LDN%3F")
    audit.visit("/ask?q=what+is+the+capital+of+France")
    audit.visit(f"/ask?q=starting+dose&patient={first}")
    audit.visit("/sources")
    href = audit.page.locator("table a").first.get_attribute("href")
    assert href
    audit.visit(href)
    audit.visit("/no-such-page", status=404)
    audit.visit("/patients/999999", status=404)
    audit.visit("/sources/no-such-source", status=404)
    audit.assert_clean()


def test_the_handout_preview_is_accessible(audit: Audit, live: Live) -> None:
    """The handout's HTML (what the PDF is printed from), with its diary chart."""
    from ldncare.store import repository
    from ldncare.web.handout import handout_html

    checked = 0
    for pid in _patient_ids(live):
        plan = repository.latest_plan(live.engine, pid, actor="test:a11y")
        if plan is None:
            continue
        diary = repository.list_diary(live.engine, pid, actor="test:a11y")
        audit.page.set_content(handout_html(plan.contract, version=plan.version, diary=diary))
        audit.check(f"handout of patient {pid}")
        checked += 1
    assert checked >= 3
    audit.assert_clean()


def test_a_patient_on_a_phone_or_desktop_reaches_only_accessible_pages(audit: Audit) -> None:
    login(audit.page, audit.base, "titrating")
    audit.check("/me (home)")
    audit.page.click("details.chart-data summary")
    audit.check("/me (home) with the chart's table open")
    audit.visit("/me/diary")
    audit.page.fill("#pain_avg", "5")
    audit.page.fill("#pain_worst", "7")
    audit.page.select_option("#side_effect", index=1)
    audit.page.click("#diary-form button[type=submit]")
    audit.page.wait_for_load_state()
    assert "Saved" in audit.page.content()
    audit.check("/me/diary after saving a day")
    audit.visit("/me/help")
    audit.visit("/sources")
    audit.visit("/no-such-page", status=404)
    audit.assert_clean()


def test_an_admin_reaches_only_accessible_pages(audit: Audit) -> None:
    login(audit.page, audit.base, "admin")
    audit.check("/ (dashboard, all clinics)")
    audit.visit("/patients/new")
    audit.assert_clean()
