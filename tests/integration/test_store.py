"""Storage on SQLite and PostgreSQL: one transaction per write, audit in the same transaction,
nothing written on a failed validation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from ldncare.core.patient import Patient
from ldncare.errors import InvalidInput, NotFound
from ldncare.store import repository as repo
from ldncare.store.db import make_engine, migrate
from ldncare.store.models import AuditRow, DiaryRow, PatientRow, PlanRow
from tests.integration.followup_db import db_url  # noqa: F401
from tests.plan_parts import ldn_part

TODAY = date(2025, 3, 20)
ME = "test:clinician"


def contract(dose: float = 1.5) -> dict[str, Any]:
    """A hand-made stored plan: the schema id and an LDN part (one bedtime step at ``dose``)."""
    part = ldn_part([("2025-03-01", "2025-05-24", dose)], "2025-05-24")
    return {"schema": "ldncare.plan/1", "ldn": part.model_dump(mode="json")}


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:  # noqa: F811
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def patient_id(engine: Engine) -> int:
    row = repo.add_patient(
        engine,
        Patient(id="pn-001", name="A. Test", birth_date=date(1980, 5, 1)),
        plan_contract=contract(),
        clinic_id="clinic-a",
        actor=ME,
    )
    return row.id


def count(engine: Engine, model: Any) -> int:
    with Session(engine) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def audit(engine: Engine) -> list[tuple[str, str]]:
    return [(a.action, a.entity) for a in repo.audit_entries(engine)]


def test_patient_is_stored_with_snapshot_first_assessment_and_plan(
    engine: Engine, patient_id: int
) -> None:
    row = repo.get_patient(engine, patient_id, actor=ME)
    assert row.external_id == "pn-001"
    assert row.clinic_id == "clinic-a"
    assert row.snapshot["name"] == "A. Test"
    assert repo.get_patient(engine, "pn-001", actor=ME).id == patient_id
    plan = repo.latest_plan(engine, patient_id, actor=ME)
    assert plan is not None and plan.version == 1 and plan.created_by == ME
    assert audit(engine)[:3] == [("create", "patient"), ("create", "plan"), ("read", "patient")]


def test_duplicate_external_id_is_refused_and_writes_nothing(
    engine: Engine, patient_id: int
) -> None:
    before = count(engine, AuditRow)
    with pytest.raises(InvalidInput, match="cannot be used for a new patient"):
        repo.add_patient(engine, Patient(id="pn-001"), actor=ME)
    assert count(engine, PatientRow) == 1
    assert count(engine, AuditRow) == before


def test_unknown_patient_is_not_found(engine: Engine) -> None:
    with pytest.raises(NotFound, match="no patient"):
        repo.get_patient(engine, "nobody", actor=ME)


def test_listing_patients_is_audited_as_a_read(engine: Engine, patient_id: int) -> None:
    assert [p.id for p in repo.list_patients(engine, actor=ME)] == [patient_id]
    assert audit(engine)[-1] == ("read", "patient")


def test_plans_are_versioned_and_old_versions_kept(engine: Engine, patient_id: int) -> None:
    v2 = repo.save_plan(engine, patient_id, contract(3.0), reason="dose raised", actor=ME)
    assert v2.version == 2
    versions = repo.list_plans(engine, patient_id, actor=ME)
    assert [(p.version, p.contract["ldn"]["schedule"][0]["dose_mg"]) for p in versions] == [
        (1, 1.5),
        (2, 3.0),
    ]
    latest = repo.latest_plan(engine, patient_id, actor=ME)
    assert latest is not None and latest.version == 2 and latest.reason == "dose raised"


def test_plan_without_reason_is_refused(engine: Engine, patient_id: int) -> None:
    with pytest.raises(InvalidInput, match="reason"):
        repo.save_plan(engine, patient_id, contract(), reason=" ", actor=ME)
    assert count(engine, PlanRow) == 1


def test_second_entry_for_a_day_updates_instead_of_duplicating(
    engine: Engine, patient_id: int
) -> None:
    first = repo.add_or_update_diary_entry(
        engine, patient_id, {"day": "2025-03-10", "pain_avg": 6}, today=TODAY, actor=ME
    )
    second = repo.add_or_update_diary_entry(
        engine,
        patient_id,
        {"day": "2025-03-10", "pain_avg": 4, "notes": "better"},
        today=TODAY,
        actor=ME,
    )
    assert (first.created, second.created) == (True, False)
    assert count(engine, DiaryRow) == 1
    [entry] = repo.list_diary(engine, patient_id, actor=ME)
    assert (entry.pain_avg, entry.notes) == (4, "better")
    actions = [a for a in audit(engine) if a[1] == "diary_entry"]
    assert actions == [
        ("create", "diary_entry"),
        ("update", "diary_entry"),
        ("read", "diary_entry"),
    ]


def test_invalid_diary_entry_writes_nothing(engine: Engine, patient_id: int) -> None:
    before = count(engine, AuditRow)
    with pytest.raises(InvalidInput, match="out of range"):
        repo.add_or_update_diary_entry(
            engine, patient_id, {"day": "2025-03-10", "pain_avg": 12}, today=TODAY, actor=ME
        )
    with pytest.raises(InvalidInput, match="in the future"):
        repo.add_or_update_diary_entry(
            engine, patient_id, {"day": "2025-03-21", "pain_avg": 3}, today=TODAY, actor=ME
        )
    assert count(engine, DiaryRow) == 0
    assert count(engine, AuditRow) == before


def test_dose_off_schedule_is_stored_with_a_flag(engine: Engine, patient_id: int) -> None:
    result = repo.add_or_update_diary_entry(
        engine,
        patient_id,
        {"day": "2025-03-10", "pain_avg": 5, "dose_mg": "4.5 mg"},
        today=TODAY,
        actor=ME,
    )
    assert result.flags == ("2025-03-10: dose taken 4.5 mg differs from the scheduled 1.5 mg",)
    assert repo.diary_flags(engine, patient_id, actor=ME) == {date(2025, 3, 10): list(result.flags)}


def test_decimal_dose_round_trips_exactly(engine: Engine, patient_id: int) -> None:
    repo.add_or_update_diary_entry(
        engine, patient_id, {"day": "2025-03-10", "dose_mg": "1500 mcg"}, today=TODAY, actor=ME
    )
    [entry] = repo.list_diary(engine, patient_id, actor=ME)
    assert str(entry.dose_mg) == "1.500" or entry.dose_mg == 1.5


CSV = """day,pain_avg,pain_worst,side_effects,dose
2025-03-08,5,7,vivid_dreams:mild,1.5 mg
2025-03-09,4,6,,1.5 mg
"""


def test_csv_import_and_export_round_trip(engine: Engine, patient_id: int) -> None:
    results = repo.import_diary_csv(engine, patient_id, CSV, today=TODAY, actor=ME)
    assert [r.created for r in results] == [True, True]
    exported = repo.export_diary_csv(engine, patient_id, actor=ME)
    assert exported.splitlines()[1].startswith("2025-03-08,5,7,,,vivid_dreams:mild,,1.5 mg")
    again = repo.import_diary_csv(engine, patient_id, exported, today=TODAY, actor=ME)
    assert [r.created for r in again] == [False, False]
    assert count(engine, DiaryRow) == 2


def test_csv_with_one_bad_row_imports_nothing(engine: Engine, patient_id: int) -> None:
    bad = CSV + "2025-03-10,4,6,,1.5\n"
    with pytest.raises(InvalidInput) as info:
        repo.import_diary_csv(engine, patient_id, bad, today=TODAY, actor=ME)
    assert info.value.field == "row 4.dose_mg"
    assert count(engine, DiaryRow) == 0


def test_review_notes_are_kept_and_audited(engine: Engine, patient_id: int) -> None:
    note = repo.add_review_note(engine, patient_id, "Discussed vivid dreams.", actor=ME)
    assert [n.text for n in repo.list_review_notes(engine, patient_id, actor=ME)] == [note.text]
    assert ("create", "review_note") in audit(engine)
    with pytest.raises(InvalidInput):
        repo.add_review_note(engine, patient_id, "  ", actor=ME)


def test_audit_rows_name_who_and_when(engine: Engine, patient_id: int) -> None:
    rows = repo.audit_entries(engine)
    assert rows and all(r.who == ME and r.at is not None for r in rows)


def test_migrating_twice_is_harmless(db_url: str) -> None:  # noqa: F811
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from ldncare.store.db import _migrations_dir

    config = Config()
    config.set_main_option("script_location", _migrations_dir())
    head = ScriptDirectory.from_config(config).get_current_head()
    migrate(db_url)
    eng = make_engine(db_url)
    with eng.connect() as conn:
        assert conn.execute(text("select version_num from alembic_version")).scalar() == head
    eng.dispose()


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), Session(engine) as s, s.begin():
        s.add(
            DiaryRow(
                patient_id=999,
                day=date(2025, 1, 1),
                side_effects=[],
                flags=[],
                created_at=func.now(),
                updated_at=func.now(),
                updated_by=ME,
            )
        )
