"""A patient id already taken in another clinic: refused without revealing that patient."""

from __future__ import annotations

import re

from tests.web.conftest import World, patient_file


def test_duplicate_of_another_clinics_patient_names_neither_its_id_nor_its_clinic(
    world: World,
) -> None:
    world.login("clin1")
    r = world.client.post("/api/patients", json={"patient": patient_file("carl")})
    assert r.status_code == 422
    (detail,) = r.json()["detail"]
    assert detail["loc"] == ["body", "id"]
    message = detail["msg"]
    assert "'carl' already exists" in message and "give an id not yet used" in message
    assert not re.search(r"\d", message), message  # no internal id (carl is row 3)
    assert "clinic-2" not in message


def test_duplicate_on_the_new_patient_form(world: World) -> None:
    world.login("clin1")
    page = world.client.get("/patients/new").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    r = world.client.post(
        "/patients/new",
        data={"csrf_token": token.group(1), "external_id": "carl", "name": "Someone"},
    )
    assert r.status_code == 422
    assert "already exists" in r.text
    assert f"(id {world.carl})" not in r.text and "clinic-2" not in r.text
