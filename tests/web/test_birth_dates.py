"""Issue #19 (Medium): a birth date before 1900 or after today is a typing error and is refused
on the new-patient form, in the API and in a patient file (YAML or FHIR Bundle)."""

from __future__ import annotations

import html
import json
import re
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ldncare.errors import InvalidInput
from ldncare.patient_file import EARLIEST_BIRTH, parse_patient_file, patient_from_data
from tests.web.conftest import TODAY, World, patient_file


def _new_patient_form(world: World, **fields: str) -> tuple[int, str]:
    page = world.client.get("/patients/new").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    r = world.client.post(
        "/patients/new",
        data={"csrf_token": token.group(1), "external_id": "dora", "name": "Dora", **fields},
        follow_redirects=False,
    )
    return r.status_code, html.unescape(r.text)


@pytest.mark.parametrize("typo", ["0001-01-01", "9999-12-31", "1899-12-31"])
def test_new_patient_form_refuses_an_impossible_birth_date(world: World, typo: str) -> None:
    world.login("clin1")
    status, page = _new_patient_form(world, birth_date=typo)
    assert status == 422
    assert f"{typo} is not a possible birth date" in page
    ids = {p["external_id"] for p in world.client.get("/api/patients").json()}
    assert "dora" not in ids


def test_new_patient_form_accepts_a_baby_born_today(world: World) -> None:
    world.login("clin1")
    status, _ = _new_patient_form(world, birth_date=TODAY.isoformat())
    assert status == 303


def test_api_refuses_a_birth_date_after_the_clinic_s_today(world: World) -> None:
    world.login("clin1")
    tomorrow = date(TODAY.year, TODAY.month, TODAY.day + 1).isoformat()
    r = world.client.post(
        "/api/patients", json={"patient": patient_file("dora", birth_date=tomorrow)}
    )
    assert r.status_code == 422, r.text
    (detail,) = r.json()["detail"]
    assert detail["loc"][-1] == "birth_date"
    assert "from 1900-01-01 to today (2026-03-02)" in detail["msg"]


def test_patient_file_born_in_year_one_is_refused() -> None:
    text = "id: pn-1\nbirth_date: 0001-01-01\nconditions: [{name: Pudendal neuralgia}]\n"
    with pytest.raises(InvalidInput, match="not a possible birth date") as info:
        parse_patient_file(text)
    assert info.value.field == "birth_date"


def test_fhir_bundle_patient_born_in_9999_is_refused() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "p1",
                    "birthDate": "9999-12-31",
                    "gender": "female",
                }
            }
        ],
    }
    with pytest.raises(InvalidInput, match="not a possible birth date") as info:
        parse_patient_file(json.dumps(bundle))
    assert info.value.field == "Patient.birthDate"


@settings(max_examples=200, deadline=None)
@given(born=st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)))
def test_any_accepted_birth_date_gives_an_age_from_0_to_126(born: date) -> None:
    data = {"id": "pn-1", "birth_date": born.isoformat()}
    try:
        patient = patient_from_data(data, today=TODAY)
    except InvalidInput as exc:
        assert "not a possible birth date" in exc.message
        assert not EARLIEST_BIRTH <= born <= TODAY
        return
    age = patient.age_on(TODAY)
    assert age is not None and 0 <= age <= TODAY.year - EARLIEST_BIRTH.year
