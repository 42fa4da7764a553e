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
    # The patient's verdict is on the page, before the general answer (review round 2, a30).
    assert "LDN screening for this patient: <strong>" in html
    assert html.index("Patient context") < html.index("From the Guidelines")


def test_a_patient_cannot_ask_about_another_patients_record(world: World) -> None:
    login_page(world, "anna")
    r = world.client.get("/ask", params={"q": "Can I take LDN?", "patient": str(world.bert)})
    assert r.status_code == 404


def test_page_api_and_cli_json_give_the_same_overview_answer(world: World) -> None:
    import json

    from typer.testing import CliRunner

    from tests.ask.test_ask_cli import _app

    question = "Is naltrexone useful for pudendal neuralgia?"
    cli = CliRunner().invoke(_app(), ["ask", question, "--format", "json"])
    assert cli.exit_code == 0, cli.output
    from_cli = json.loads(cli.output)
    world.login("clin1")
    from_api = world.client.post("/api/ask", json={"question": question}).json()
    assert from_api == from_cli
    assert from_cli["sections"]["from_the_guidelines"][0]["text"].startswith("It depends")
    login_page(world, "clin1")
    html = world.client.get("/ask", params={"q": question}).text
    assert from_api["sections"]["from_the_guidelines"][0]["text"][:40] in html
    for part in ("key_considerations", "treatment_approach"):
        for sentence in from_api["sections"][part]:
            assert f"<code>{sentence['statement']}</code>" in html


def test_ask_page_labels_a_general_answer_for_a_condition_outside_the_base(world: World) -> None:
    login_page(world, "clin1")
    html = world.client.get(
        "/ask", params={"q": "What are the side effects of LDN for someone with CRPS?"}
    ).text
    assert "General answer:" in html
    assert "not covered by the ldncare evidence base" in html
    assert "pelvic floor" not in html.lower()


def test_ask_page_says_plainly_that_a_missed_dose_is_not_covered(world: World) -> None:
    login_page(world, "clin1")
    html = world.client.get("/ask", params={"q": "What if I miss a dose of LDN?"}).text
    assert "Not covered:" in html
    assert "no cited statement on what to do after a missed dose of LDN" in html
