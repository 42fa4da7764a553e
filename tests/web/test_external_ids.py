"""Issue #19 item 7: one external-id rule for the web form, the API and the CLI (the API's
pattern, ``store.external_id``), records stored earlier with other ids still readable, and a
download's ``Content-Disposition`` safe for any id (RFC 6266 ``filename*``): no 500, no dropped
connection, no header injection."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from ldncare.cli.followup_commands import register
from ldncare.store.external_id import content_disposition, is_valid
from ldncare.store.models import PatientRow
from tests.web.conftest import World, patient_file

#: The integrator's ids (extid.py, extid2.py) and a few more outside the rule.
BAD_IDS = [
    "Łódź-12",
    'q"uote;x=1',
    "crlf\r\nSet-Cookie: pwn=1",
    "uni-\u00e9\u2028x",
    "../../etc",
    "two words",
    "x" * 129,
]


def _patients(world: World) -> int:
    with Session(world.engine) as s:
        return int(s.scalar(select(func.count()).select_from(PatientRow)) or 0)


def _new_patient_form(world: World, external_id: str) -> tuple[int, str]:
    page = world.client.get("/patients/new").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    r = world.client.post(
        "/patients/new",
        data={
            "csrf_token": token.group(1),
            "external_id": external_id,
            "birth_date": "1980-01-01",
            "sex": "female",
            "conditions": "pudendal neuralgia",
        },
        follow_redirects=False,
    )
    return r.status_code, r.text


@pytest.mark.parametrize("external_id", BAD_IDS)
def test_new_patient_form_refuses_an_id_outside_the_rule_and_stores_nothing(
    world: World, external_id: str
) -> None:
    world.login("clin1")
    before = _patients(world)
    status, html = _new_patient_form(world, external_id)
    assert status == 422
    # An id over 128 characters is stopped by the form's length limit first.
    assert "cannot be used for a new patient" in html or "128" in html
    assert _patients(world) == before


@pytest.mark.parametrize("external_id", BAD_IDS)
def test_api_refuses_the_same_ids_naming_the_field(world: World, external_id: str) -> None:
    world.login("clin1")
    r = world.client.post("/api/patients", json={"patient": patient_file(external_id)})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == "id"


def test_new_patient_form_still_takes_a_hospital_number_with_dots_and_dashes(
    world: World,
) -> None:
    world.login("clin1")
    status, _ = _new_patient_form(world, "MRN-2026.0042_a")
    assert status == 303


def test_cli_patient_add_refuses_an_id_outside_the_rule_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LDNCARE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    file = tmp_path / "p.json"
    file.write_text(json.dumps(patient_file("Łódź-12")), encoding="utf-8")
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    result = CliRunner().invoke(app, ["patient", "add", str(file)])
    assert result.exit_code == 2, result.output
    assert "cannot be used for a new patient" in result.output


@pytest.mark.parametrize("legacy", BAD_IDS)
def test_a_record_stored_earlier_with_any_id_still_downloads_its_diary(
    world: World, legacy: str
) -> None:
    """An id an earlier release let through the form: the record opens and the diary CSV
    downloads with a header that carries the exact name only percent-encoded."""
    with Session(world.engine) as s, s.begin():
        s.execute(update(PatientRow).where(PatientRow.id == world.anna).values(external_id=legacy))
    world.login("clin1")
    assert world.client.get(f"/api/patients/{world.anna}").status_code == 200
    r = world.client.get(f"/api/patients/{world.anna}/diary.csv")
    assert r.status_code == 200
    header = r.headers["content-disposition"]
    assert "\r" not in header and "\n" not in header
    ascii_name = re.fullmatch(r'attachment; filename="([A-Za-z0-9._-]+)"; filename\*=(.+)', header)
    assert ascii_name is not None, header
    assert unquote(ascii_name.group(2).removeprefix("UTF-8''")) == f"diary-{legacy}.csv"


@given(st.text(min_size=1, max_size=200))
def test_any_id_gives_a_header_of_one_safe_filename_and_its_exact_utf8_name(stem: str) -> None:
    header = content_disposition("attachment", stem, ".csv")
    header.encode("latin-1")  # what an HTTP header can carry
    match = re.fullmatch(
        r"attachment; filename=\"([A-Za-z0-9._-]+)\"; filename\*=UTF-8''(\S+)", header
    )
    assert match is not None, header
    assert unquote(match.group(2), errors="strict") == stem + ".csv"


@given(st.text(max_size=140))
def test_the_rule_is_the_apis_pattern(text: str) -> None:
    expected = 1 <= len(text) <= 128 and re.fullmatch(r"[A-Za-z0-9._\-]+", text) is not None
    assert is_valid(text) == expected
