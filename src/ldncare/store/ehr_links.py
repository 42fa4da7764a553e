"""Patients followed from an EHR (SMART launch) and where their record came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ldncare.core.patient import Patient
from ldncare.store.models import EhrLinkRow
from ldncare.store.repository import add_patient, record_audit


@dataclass(frozen=True)
class EhrSource:
    """The provenance of a record read from an EHR."""

    iss: str
    fhir_patient_id: str
    fhir_user: str | None
    retrieved_at: datetime


def linked_patient(engine: Engine, iss: str, fhir_patient_id: str) -> int | None:
    """ldncare's patient record number for the EHR patient, if it was followed before."""
    with Session(engine) as s:
        return s.scalars(
            select(EhrLinkRow.patient_id).where(
                EhrLinkRow.iss == iss, EhrLinkRow.fhir_patient_id == fhir_patient_id
            )
        ).first()


def follow_patient(
    engine: Engine,
    patient: Patient,
    source: EhrSource,
    *,
    plan_contract: Mapping[str, Any],
    clinic_id: str | None,
    actor: str,
) -> int:
    """Store the EHR patient (first assessment and plan v1, as any new patient) and record
    where it came from; a patient already followed from that EHR is not stored twice."""
    existing = linked_patient(engine, source.iss, source.fhir_patient_id)
    if existing is not None:
        return existing
    row = add_patient(
        engine, patient, plan_contract=plan_contract, clinic_id=clinic_id, actor=actor
    )
    with Session(engine) as s, s.begin():
        s.add(
            EhrLinkRow(
                patient_id=row.id,
                iss=source.iss,
                fhir_patient_id=source.fhir_patient_id,
                fhir_user=source.fhir_user,
                retrieved_at=source.retrieved_at,
                created_by=actor,
            )
        )
        record_audit(
            s,
            actor,
            "create",
            "ehr_link",
            row.id,
            {
                "iss": source.iss,
                "fhir_patient_id": source.fhir_patient_id,
                "retrieved_at": source.retrieved_at.astimezone(UTC).isoformat(),
            },
        )
    return row.id


def ehr_source(engine: Engine, patient_id: int) -> EhrSource | None:
    """Where the stored patient came from, if from an EHR."""
    with Session(engine) as s:
        link = s.scalars(select(EhrLinkRow).where(EhrLinkRow.patient_id == patient_id)).first()
        if link is None:
            return None
        return EhrSource(link.iss, link.fhir_patient_id, link.fhir_user, link.retrieved_at)


def now() -> datetime:
    return datetime.now(UTC)
