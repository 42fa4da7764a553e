"""Issue 22 on the web pages: every plan, answer and handout names the evidence base it came from
and the day its evidence was reviewed up to; a patient's plan page shows what changed since the
base its stored plan was made with (the comparison ``ldncare patient changes`` prints); and
wherever a source is shown, its population, design, size and year are beside it."""

from __future__ import annotations

import copy
import html
from datetime import date
from typing import Any

from ldncare.evidence.loader import load_evidence
from ldncare.patient_file import patient_from_data
from ldncare.store import repository
from ldncare.web.handout import handout_html
from ldncare.web.service import plan_contract
from tests.web.conftest import World, patient_file
from tests.web.test_pages import login_page

RELEASE = load_evidence().release
BASE_LINE = f"{RELEASE.version}, evidence reviewed up to {RELEASE.reviewed_up_to.isoformat()}"


def _page(world: World, url: str, **params: str) -> str:
    response = world.client.get(url, params=params)
    assert response.status_code == 200, response.text
    return html.unescape(response.text)


def _stored(world: World, patient: int) -> dict[str, Any]:
    plan = repository.latest_plan(world.engine, patient, actor="test")
    assert plan is not None
    return copy.deepcopy(plan.contract)


def _first_statement(contract: dict[str, Any]) -> dict[str, Any]:
    for key in ("from_the_guidelines", "key_considerations", "treatment_approach"):
        if contract["guidance"][key]:
            return dict(contract["guidance"][key][0])
    raise AssertionError("the plan has no statements")


def test_answer_page_names_its_evidence_base_and_the_fit_of_each_reference(world: World) -> None:
    login_page(world, "clin1")
    text = _page(world, "/ask", q="Does LDN work for fibromyalgia?")
    assert f"Answered from evidence base {BASE_LINE}." in text
    # The 2025 meta-analysis is shown as mixed chronic pain, 7 RCTs, 2025: indirect for PN.
    assert "[population: mixed chronic pain; systematic review, 7 RCTs; 2025]" in text


def test_drug_safety_answer_shows_label_and_lactmed_fit(world: World) -> None:
    login_page(world, "clin1")
    text = _page(world, "/ask", q="Is gabapentin safe when breastfeeding?")
    assert "[population: general; narrative review, case reports and small series; 2024]" in text
    assert "[population: general; product label; 2025]" in text


def test_plan_made_with_the_current_base_says_so_and_has_nothing_to_compare(
    world: World,
) -> None:
    login_page(world, "clin1")
    text = _page(world, f"/patients/{world.anna}")
    assert f"Made with evidence base {BASE_LINE}." in text
    assert "nothing to compare" in text
    # Every reference of the plan carries its population, design and year.
    assert "[population: pudendal neuralgia; consensus; 2008]" in text  # labat2008, Nantes


def test_plan_stored_under_an_older_base_shows_what_changed_for_the_patient(world: World) -> None:
    older = _stored(world, world.anna)
    older["evidence"] = {"version": "2026.11.1", "reviewed_up_to": "2026-11-20"}
    first = _first_statement(older)
    for key in ("from_the_guidelines", "key_considerations", "treatment_approach"):
        for s in older["guidance"][key]:
            if s["statement"] == first["statement"]:
                s["text"] = "An earlier wording of this statement."
    repository.save_plan(world.engine, world.anna, older, reason="older base", actor="test")
    login_page(world, "clin1")
    text = _page(world, f"/patients/{world.anna}")
    assert "Made with evidence base 2026.11.1, evidence reviewed up to 2026-11-20." in text
    assert "Earlier plan: evidence base 2026.11.1 (reviewed up to 2026-11-20)" in text
    assert f"later plan: evidence base {RELEASE.version}" in text
    assert f"Statements reworded: {first['statement']}" in text
    assert "nothing to compare" not in text


def test_plan_stored_before_versioning_reads_as_not_recorded(world: World) -> None:
    older = _stored(world, world.bert)
    del older["evidence"]
    repository.save_plan(world.engine, world.bert, older, reason="before issue 22", actor="test")
    login_page(world, "clin1")
    text = _page(world, f"/patients/{world.bert}")
    assert "Made with evidence base: not recorded" in text
    assert "an evidence base not recorded (plan made before versioning)" in text


def test_the_patients_own_page_names_the_base_of_the_plan(world: World) -> None:
    login_page(world, "anna")
    text = _page(world, "/me")
    assert f"Plan made with evidence base {BASE_LINE}." in text


def test_sources_list_shows_population_design_size_and_year(world: World) -> None:
    login_page(world, "clin1")
    text = _page(world, "/sources")
    for heading in ("Population", "Design", "Size", "Year"):
        assert f"<th>{heading}</th>" in text
    assert (
        "<td>mixed chronic pain</td><td>systematic review</td><td>7 RCTs</td><td>2025</td>" in text
    )
    detail = _page(world, "/sources/younger2013")
    assert "population: fibromyalgia; randomised trial, 31 women; 2013" in detail


def test_handout_names_the_base_and_the_fit_of_its_references() -> None:
    patient = patient_from_data(patient_file("hana", name="Hana Handout"))
    contract = plan_contract(patient, start=date(2026, 3, 2), today=date(2026, 3, 2), nantes=None)
    text = html.unescape(handout_html(contract, version=1))
    assert f"evidence base {RELEASE.version}, reviewed up to" in text
    assert "[population: " in text
    refs = text.split('<ol class="refs">', 1)[1].split("</ol>", 1)[0]
    items = refs.split("<li")[1:]
    assert items and all("[population: " in li for li in items)
