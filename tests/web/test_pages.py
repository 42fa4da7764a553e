"""Server-rendered pages: login with CSRF, dashboard, patient page, forms, the patient's pages."""

from __future__ import annotations

import re

from ldncare.store import repository
from tests.web.conftest import PASSWORD, World


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def login_page(world: World, username: str) -> str:
    """Log in through the form; returns the session's CSRF token."""
    world.client.cookies.clear()
    token = _csrf(world.client.get("/login").text)
    r = world.client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return _csrf(world.client.get(r.headers["location"]).text)


def test_pages_need_login(world: World) -> None:
    r = world.client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"


def test_login_form_without_csrf_is_refused(world: World) -> None:
    world.client.get("/login")
    r = world.client.post("/login", data={"username": "clin1", "password": PASSWORD})
    assert r.status_code == 403
    assert "expired" in r.text


def test_login_form_wrong_password_and_rate_limit(world: World) -> None:
    token = _csrf(world.client.get("/login").text)
    for _ in range(3):
        r = world.client.post(
            "/login", data={"username": "clin1", "password": "wrong-one", "csrf_token": token}
        )
        assert r.status_code == 401
    r = world.client.post(
        "/login", data={"username": "clin1", "password": PASSWORD, "csrf_token": token}
    )
    assert r.status_code == 429
    assert "Too many failed logins" in r.text


def test_dashboard_lists_clinic_patients_with_status(world: World) -> None:
    login_page(world, "clin1")
    html = world.client.get("/").text
    assert "Patient anna" in html and "Patient bert" in html
    assert "Patient carl" not in html
    assert "titrating" in html


def test_patient_page_shows_plan_sections_calendar_chart_and_references(world: World) -> None:
    login_page(world, "clin1")
    html = world.client.get(f"/patients/{world.anna}").text
    for text in (
        "From the Guidelines",
        "Key Considerations",
        "Treatment Approach",
        "Patient-specific findings",
        "Alternatives and add-ons",
        "Calendar",
        "<svg",
        "References",
        'href="/sources/',
        "rule <code>ldn.",
        "Response to LDN",
    ):
        assert text in html, text


def test_clinician_of_other_clinic_gets_404_page(world: World) -> None:
    login_page(world, "clin2")
    r = world.client.get(f"/patients/{world.anna}")
    assert r.status_code == 404
    assert "Not found" in r.text


def test_create_patient_form_with_nantes(world: World) -> None:
    token = login_page(world, "clin1")
    form = {
        "csrf_token": token,
        "external_id": "dora",
        "name": "Dora Demo",
        "sex": "female",
        "birth_date": "1985-01-01",
        "conditions": "Pudendal neuralgia",
        "medications": "Paracetamol | 1 g",
        "egfr": "88",
        "start": "2026-03-02",
        "nantes_pudendal_territory": "yes",
        "nantes_worse_sitting": "yes",
        "nantes_not_woken_at_night": "yes",
        "nantes_no_sensory_loss": "yes",
        "nantes_block_relieves": "yes",
        "nantes_only_coccygeal_gluteal_hypogastric": "no",
        "nantes_pruritus": "no",
        "nantes_only_paroxysmal": "no",
        "nantes_imaging_explains": "no",
    }
    r = world.client.post("/patients/new", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = world.client.get(r.headers["location"]).text
    assert "Patient stored with plan version 1" in page
    assert "Nantes criteria" in page and "Criteria met" in page


def test_create_patient_form_errors_are_shown(world: World) -> None:
    token = login_page(world, "clin1")
    r = world.client.post(
        "/patients/new", data={"csrf_token": token, "external_id": "eve", "egfr": "lots"}
    )
    assert r.status_code == 422
    assert "egfr" in r.text and "not a number" in r.text
    assert 'value="eve"' in r.text


def test_form_post_without_csrf_is_refused(world: World) -> None:
    login_page(world, "clin1")
    r = world.client.post(f"/patients/{world.anna}/review", data={"text": "hi"})
    assert r.status_code == 403
    assert repository.list_review_notes(world.engine, world.anna, actor="t") == []


def test_assessment_adjust_review_and_diary_forms(world: World) -> None:
    token = login_page(world, "clin1")
    r = world.client.post(
        f"/patients/{world.anna}/diary",
        data={"csrf_token": token, "day": "2026-03-01", "pain_avg": "5", "dose_taken": "no"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    form = world.client.get(f"/patients/{world.anna}/assess").text
    assert "Pudendal neuralgia" in form  # prefilled from the stored snapshot
    r = world.client.post(
        f"/patients/{world.anna}/assess",
        data={
            "csrf_token": token,
            "conditions": "Pudendal neuralgia",
            "medications": "Tramadol | 50 mg",
            "reason": "new medicine",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    r = world.client.post(
        f"/patients/{world.anna}/adjust",
        data={"csrf_token": token, "reason": "slower", "slow": "yes"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    r = world.client.post(
        f"/patients/{world.anna}/adjust", data={"csrf_token": token, "reason": ""}
    )
    assert r.status_code == 422
    r = world.client.post(
        f"/patients/{world.anna}/review",
        data={"csrf_token": token, "text": "Discussed the opioid."},
        follow_redirects=False,
    )
    assert r.status_code == 303
    plans = repository.list_plans(world.engine, world.anna, actor="t")
    assert [p.reason for p in plans] == ["initial plan", "new medicine", "slower"]
    html = world.client.get(f"/patients/{world.anna}").text
    assert "Discussed the opioid." in html
    assert "safety alert" in html


def test_patient_pages_show_tonight_schedule_chart_and_help(world: World) -> None:
    token = login_page(world, "anna")
    html = world.client.get("/me").text
    assert "3.5 mg" in html and "Tonight" in html and "<svg" in html
    r = world.client.post(
        "/me/diary",
        data={
            "csrf_token": token,
            "day": "2026-03-01",
            "pain_avg": "4",
            "pain_worst": "6",
            "sitting_minutes": "45",
            "side_effect": "vivid_dreams",
            "severity": "mild",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    diary = world.client.get(r.headers["location"]).text
    assert "Saved" in diary and "vivid dreams (mild)" in diary
    bad = world.client.post("/me/diary", data={"csrf_token": token, "day": "2026-03-01",
                                                "pain_avg": "12"})  # fmt: skip
    assert bad.status_code == 422 and "out of range" in bad.text
    help_page = world.client.get("/me/help").text
    assert "When to call" in help_page and "opioid" in help_page


def test_patient_cannot_open_clinician_pages(world: World) -> None:
    login_page(world, "anna")
    assert world.client.get(f"/patients/{world.bert}").status_code == 403
    assert world.client.get(f"/patients/{world.anna}").status_code == 403
    assert world.client.get("/", follow_redirects=False).headers["location"] == "/me"


def test_sources_pages(world: World) -> None:
    login_page(world, "clin1")
    assert "labat2008" in world.client.get("/sources").text
    page = world.client.get("/sources/labat2008").text
    assert "Statements that cite it" in page
    assert world.client.get("/sources/nope").status_code == 404


def test_logout(world: World) -> None:
    token = login_page(world, "clin1")
    r = world.client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert world.client.get("/", follow_redirects=False).headers["location"] == "/login"


def test_security_headers(world: World) -> None:
    r = world.client.get("/login")
    assert r.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
