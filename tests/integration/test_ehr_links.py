"""Where a patient followed from an EHR came from (issue #21), on SQLite and PostgreSQL: the
EHR, the patient's FHIR id there, the EHR user, when the record was read; one record per EHR
patient, however often it is followed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ldncare.core.patient import Patient
from ldncare.store.db import make_engine
from ldncare.store.ehr_links import EhrSource, ehr_source, follow_patient, linked_patient
from ldncare.store.models import AuditRow, PatientRow
from ldncare.web.service import plan_contract
from tests.integration.followup_db import db_url  # noqa: F401

ISS = "https://ehr.example.org/fhir"
READ_AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:  # noqa: F811
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def _follow(engine: Engine, fhir_id: str = "ehr-77") -> int:
    patient = Patient(id=fhir_id, name="Followed Patient", birth_date=date(1975, 1, 2))
    contract = plan_contract(patient, start=None, today=date(2026, 3, 2), nantes=None)
    source = EhrSource(ISS, fhir_id, f"{ISS}/Practitioner/9", READ_AT)
    return follow_patient(
        engine, patient, source, plan_contract=contract, clinic_id="clinic-a", actor="web:clin"
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
    assert linked_patient(engine, ISS, "ehr-77") == first
    assert linked_patient(engine, "https://other.example/fhir", "ehr-77") is None
    with Session(engine) as s:
        assert len(list(s.scalars(select(PatientRow.id)))) == 1
