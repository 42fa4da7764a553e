"""Where a patient followed from an EHR came from (issue #21), on SQLite and PostgreSQL: the
EHR, the patient's FHIR id there, the EHR user, when the record was read; one record per EHR
patient, however often it is followed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from ldncare.core.patient import Patient
from ldncare.store import ehr_links
from ldncare.store.db import make_engine, migrate, open_engine
from ldncare.store.ehr_links import (
    EhrSource,
    clinic_copy_id,
    ehr_source,
    follow_patient,
    linked_patient,
)
from ldncare.store.external_id import is_valid
from ldncare.store.models import AuditRow, EhrLinkRow, PatientRow
from ldncare.web.service import plan_contract
from tests.integration.followup_db import db_url  # noqa: F401

ISS = "https://ehr.example.org/fhir"
READ_AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:  # noqa: F811
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def _follow(engine: Engine, fhir_id: str = "ehr-77", clinic: str | None = "clinic-a") -> int:
    patient = Patient(id=fhir_id, name="Followed Patient", birth_date=date(1975, 1, 2))
    contract = plan_contract(patient, start=None, today=date(2026, 3, 2), nantes=None)
    source = EhrSource(ISS, fhir_id, f"{ISS}/Practitioner/9", READ_AT)
    return follow_patient(
        engine, patient, source, plan_contract=contract, clinic_id=clinic, actor="web:clin"
    )


def test_a_patient_followed_from_the_ehr_keeps_where_it_came_from(engine: Engine) -> None:
    number = _follow(engine)
    source = ehr_source(engine, number)
    assert source is not None
    assert (source.iss, source.fhir_patient_id, source.fhir_user) == (
        ISS,
        "ehr-77",
        f"{ISS}/Practitioner/9",
    )
    assert source.retrieved_at.replace(tzinfo=UTC) == READ_AT
    with Session(engine) as s:
        row = s.get(PatientRow, number)
        assert row is not None and row.clinic_id == "clinic-a"
        audit = s.scalars(select(AuditRow).where(AuditRow.entity == "ehr_link")).one()
        assert audit.detail is not None and audit.detail["iss"] == ISS


def test_following_the_same_ehr_patient_twice_keeps_one_record(engine: Engine) -> None:
    first = _follow(engine)
    assert _follow(engine) == first
    assert linked_patient(engine, ISS, "ehr-77", "clinic-a") == first
    assert linked_patient(engine, "https://other.example/fhir", "ehr-77", "clinic-a") is None
    with Session(engine) as s:
        assert len(list(s.scalars(select(PatientRow.id)))) == 1


def test_a_second_clinic_follows_its_own_copy_of_a_patient_the_first_clinic_follows(
    engine: Engine,
) -> None:
    first = _follow(engine, clinic="clinic-a")
    assert linked_patient(engine, ISS, "ehr-77", "clinic-b") is None  # nothing revealed
    second = _follow(engine, clinic="clinic-b")
    assert second != first
    assert linked_patient(engine, ISS, "ehr-77", "clinic-b") == second
    assert linked_patient(engine, ISS, "ehr-77", "clinic-a") == first
    with Session(engine) as s:
        rows = {r.id: r for r in s.scalars(select(PatientRow))}
        assert rows[first].clinic_id == "clinic-a" and rows[first].external_id == "ehr-77"
        assert rows[second].clinic_id == "clinic-b"
        assert rows[second].external_id == clinic_copy_id("ehr-77", "clinic-b")
        links = {(link.clinic_id, link.patient_id) for link in s.scalars(select(EhrLinkRow))}
        assert links == {("clinic-a", first), ("clinic-b", second)}
    assert _follow(engine, clinic="clinic-b") == second  # and only one copy per clinic


def test_a_follow_racing_another_for_the_same_clinic_ends_on_one_record_with_its_link(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both requests checked "not followed yet" before either stored: the second one's
    patient and link are rolled back together and it opens the first one's record."""
    first = _follow(engine)
    calls: list[int | None] = []
    real = ehr_links.linked_patient

    def checked_before_the_other_committed(*args: object) -> int | None:
        found = real(*args)  # type: ignore[arg-type]
        calls.append(found)
        return None if len(calls) == 1 else found

    monkeypatch.setattr(ehr_links, "linked_patient", checked_before_the_other_committed)
    assert _follow(engine) == first
    with Session(engine) as s:
        assert list(s.scalars(select(PatientRow.id))) == [first]
        assert len(list(s.scalars(select(EhrLinkRow)))) == 1


def test_a_patient_and_its_link_are_stored_together_or_not_at_all(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the audit could not be written")

    monkeypatch.setattr(ehr_links, "record_audit", refused)
    with pytest.raises(RuntimeError):
        _follow(engine)
    with Session(engine) as s:
        assert list(s.scalars(select(PatientRow.id))) == []
        assert list(s.scalars(select(EhrLinkRow.id))) == []


@settings(max_examples=50, deadline=None)
@given(fhir_id=st.from_regex(r"[A-Za-z0-9.\-]{1,64}", fullmatch=True), clinic=st.text(max_size=64))
def test_a_clinic_copy_id_is_always_a_valid_external_id(fhir_id: str, clinic: str) -> None:
    copy = clinic_copy_id(fhir_id, clinic)
    assert is_valid(copy) and copy != fhir_id


def test_links_stored_before_migration_0010_take_their_patients_clinic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = make_engine(url)
    migrate(old, "0009")
    with old.begin() as conn:
        for pid, clinic in ((1, "'clinic-a'"), (2, "NULL")):
            conn.execute(
                text(
                    "insert into patients (id, clinic_id, external_id, snapshot, created_at, "
                    f"created_by) values ({pid}, {clinic}, 'p{pid}', '{{}}', "
                    "'2026-06-01 00:00:00', 't')"
                )
            )
            conn.execute(
                text(
                    "insert into ehr_links (patient_id, iss, fhir_patient_id, retrieved_at, "
                    f"created_by) values ({pid}, '{ISS}', 'f{pid}', '2026-06-01 00:00:00', 't')"
                )
            )
    old.dispose()
    engine = open_engine(url)
    assert linked_patient(engine, ISS, "f1", "clinic-a") == 1
    assert linked_patient(engine, ISS, "f1", "clinic-b") is None
    assert linked_patient(engine, ISS, "f2", None) == 2
