"""A patient id already taken, in this clinic or another: refused with the same answer as an id
that is malformed, so a clinician cannot tell that another clinic has a patient with that id
(issue #19 item 13), nor learn its internal id or clinic."""

from __future__ import annotations

import re

from httpx import Response

from tests.web.conftest import World, patient_file


def _api_message(world: World, pid: str) -> str:
    r = world.client.post("/api/patients", json={"patient": patient_file(pid)})
    assert r.status_code == 422, r.text
    (detail,) = r.json()["detail"]
    assert detail["loc"] == ["body", "id"]
    return str(detail["msg"])


def _form(world: World, external_id: str) -> Response:
    page = world.client.get("/patients/new").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    return world.client.post(
        "/patients/new",
        data={"csrf_token": token.group(1), "external_id": external_id, "name": "Someone"},
    )


def _error(html: str) -> str:
    match = re.search(r'class="banner error" role="alert">([^<]+)<', html)
    assert match is not None, html[:500]
    return match.group(1)


def test_clinician_probing_another_clinics_patient_id_gets_the_answer_for_her_own(
    world: World,
) -> None:
    world.login("clin1")
    other_clinic = _api_message(world, "carl")  # carl is a patient of clinic-2
    own_clinic = _api_message(world, "anna")  # anna is a patient of clinic-1
    assert other_clinic.replace("'carl'", "ID") == own_clinic.replace("'anna'", "ID")
    for leak in ("already exists", "across all clinics", "clinic-2", f" {world.carl}"):
        assert leak not in other_clinic, other_clinic


def test_on_the_form_a_taken_id_reads_exactly_like_a_malformed_one(world: World) -> None:
    world.login("clin1")
    taken = _form(world, "carl")
    malformed = _form(world, "car;l")
    assert taken.status_code == malformed.status_code == 422
    assert _error(taken.text).replace("carl", "ID") == _error(malformed.text).replace("car;l", "ID")
    assert f"(id {world.carl})" not in taken.text and "clinic-2" not in taken.text
