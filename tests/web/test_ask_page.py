"""The Ask search box: the same answer as ``ldncare ask`` and ``POST /api/ask``, as a page."""

from __future__ import annotations

from tests.web.conftest import World
from tests.web.test_pages import login_page


def test_ask_page_answers_in_the_reference_form_with_references(world: World) -> None:
    login_page(world, "clin1")
    html = world.client.get("/ask", params={"q": "Can a patient on tramadol take LDN?"}).text
    for heading in ("From the Guidelines", "Key Considerations", "References"):
        assert heading in html
    assert 'href="#ref-1"' in html and 'id="ref-1"' in html


def test_ask_page_refuses_questions_outside_the_evidence_base(world: World) -> None:
    login_page(world, "clin1")
    html = world.client.get("/ask", params={"q": "What is the dose of metformin?"}).text
    assert "not covered by the ldncare evidence base" in html
    assert "From the Guidelines" not in html


def test_ask_page_with_a_patient_adds_that_patients_findings(world: World) -> None:
    login_page(world, "clin1")
    html = world.client.get(
        "/ask", params={"q": "Can this patient take LDN?", "patient": str(world.anna)}
    ).text
    assert "Patient context" in html


def test_a_patient_cannot_ask_about_another_patients_record(world: World) -> None:
    login_page(world, "anna")
    r = world.client.get("/ask", params={"q": "Can I take LDN?", "patient": str(world.bert)})
    assert r.status_code == 404
