"""What a patient and a clinician read: labels instead of identifiers, whole sentences."""

from __future__ import annotations

import html as html_lib
import re
from datetime import timedelta

import pytest

from ldncare.core.diary import SIDE_EFFECT_KINDS
from ldncare.errors import InvalidInput
from ldncare.patient_file import patient_from_data
from ldncare.store import repository
from ldncare.web.labels import SIDE_EFFECT_LABELS, diary_error_text
from ldncare.web.service import plan_contract
from tests.web.conftest import TODAY, World, patient_file
from tests.web.test_pages import login_page

IDENTIFIER = re.compile(r"\b[a-z]+_[a-z_]+\b")


def _text(html: str) -> str:
    return html_lib.unescape(re.sub(r"<[^>]+>", "", html))


def test_every_side_effect_kind_has_a_label_without_an_underscore() -> None:
    assert set(SIDE_EFFECT_LABELS) == set(SIDE_EFFECT_KINDS)
    assert not [label for label in SIDE_EFFECT_LABELS.values() if "_" in label]
    assert SIDE_EFFECT_LABELS["nausea_gi"] == "nausea or upset stomach"


def test_patient_diary_form_offers_side_effects_in_words_and_shows_them_so(world: World) -> None:
    token = login_page(world, "anna")
    form = world.client.get("/me/diary").text
    options = re.findall(r'<option value="(\w+)">([^<]+)</option>', form)
    offered = {value: label for value, label in options if value in SIDE_EFFECT_KINDS}
    assert offered == SIDE_EFFECT_LABELS
    assert "nausea gi" not in form
    saved = world.client.post(
        "/me/diary",
        data={
            "csrf_token": token,
            "day": "2026-03-01",
            "side_effect": "nausea_gi",
            "severity": "moderate",
        },
    )
    assert saved.status_code == 200
    assert "nausea or upset stomach (moderate)" in saved.text


@pytest.mark.parametrize(
    ("fields", "says", "hidden"),
    [
        ({"pain_avg": "12"}, "Average pain: 12 is out of range", "pain_avg"),
        ({"pain_avg": "7", "pain_worst": "3"}, "Worst pain 3 is below average pain 7", "pain_"),
        ({"sitting_minutes": "lots"}, "Sitting time: 'lots' is not a whole number", "sitting_"),
        ({"sleep_quality": "11"}, "Sleep: 11 is out of range", "sleep_quality"),
    ],
    ids=["average-pain-too-high", "worst-below-average", "sitting-not-a-number", "sleep-11"],
)
def test_a_patient_reads_diary_errors_in_the_forms_words(
    world: World, fields: dict[str, str], says: str, hidden: str
) -> None:
    token = login_page(world, "anna")
    bad = world.client.post("/me/diary", data={"csrf_token": token, "day": "2026-03-01", **fields})
    assert bad.status_code == 422
    error = re.search(r'class="[^"]*error[^"]*"[^>]*>(.*?)</', bad.text, flags=re.S)
    assert error is not None, bad.text
    shown = _text(error.group(1))
    assert says in shown
    assert hidden not in shown


def test_diary_error_text_names_a_side_effect_field_by_its_label() -> None:
    exc = InvalidInput("severity 'huge' is not accepted", field="side_effects.0.severity")
    assert diary_error_text(exc) == "How bad: severity 'huge' is not accepted"
    assert diary_error_text(InvalidInput("the plan has no LDN schedule")).startswith("The plan")


def test_patient_not_started_yet_reads_too_early_as_one_sentence(world: World) -> None:
    start = TODAY + timedelta(days=7)
    patient = patient_from_data(patient_file("dora"))
    contract = plan_contract(patient, start=start, today=TODAY, nantes=None)
    dora = repository.add_patient(
        world.engine, patient, plan_contract=contract, clinic_id="clinic-1", actor="test"
    ).id
    login_page(world, "clin1")
    page = world.client.get(f"/patients/{dora}").text
    card = re.search(r'<div class="card" id="response">(.*?)</div>', page, flags=re.S)
    assert card is not None
    text = " ".join(_text(card.group(1)).split())
    assert "too early." in text
    assert " ." not in text and ". ." not in text
    # The reason is its own sentence: capitalised, closed by a full stop.
    reason = re.search(r"too early\. (\S)(.*?\.)( |$)", text)
    assert reason is not None and reason.group(1).isupper(), text
    # Rule ids are shown on purpose, as tags of the advice; the sentences above name none.
    assert not IDENTIFIER.findall(text.split(" Advice ")[0]), text
