"""Patients followed from an EHR (SMART launch) and where their record came from.

A follow belongs to a clinic: the link records the clinic, each clinic follows its own copy of
an EHR patient, and a clinic never learns that another one follows it (review #19/#21 M3)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ldncare.core.patient import Patient
from ldncare.errors import InvalidInput
from ldncare.store.external_id import MAX_EXTERNAL_ID, unusable
from ldncare.store.models import EhrLinkRow, PatientRow
from ldncare.store.repository import add_patient_in, record_audit


@dataclass(frozen=True)
class EhrSource:
    """The provenance of a record read from an EHR."""

    iss: str
    fhir_patient_id: str
    fhir_user: str | None
    retrieved_at: datetime


def _clinic_key(clinic_id: str | None) -> str:
    return clinic_id or ""


def linked_patient(
    engine: Engine, iss: str, fhir_patient_id: str, clinic_id: str | None
) -> int | None:
    """The clinic's patient record number for the EHR patient, if *that clinic* followed it
    before; another clinic's follow is neither found nor revealed."""
    with Session(engine) as s:
        return s.scalars(
            select(EhrLinkRow.patient_id).where(
                EhrLinkRow.iss == iss,
                EhrLinkRow.fhir_patient_id == fhir_patient_id,
                EhrLinkRow.clinic_id == _clinic_key(clinic_id),
            )
        ).first()


def clinic_copy_id(fhir_patient_id: str, clinic_id: str | None) -> str:
    """The external id of a clinic's own copy when another clinic's record already uses the
    EHR's id (external ids are unique across clinics): the id, a dot and a short digest of the
    clinic, within the 128 characters allowed."""
    digest = hashlib.sha256(_clinic_key(clinic_id).encode()).hexdigest()[:12]
    return f"{fhir_patient_id[: MAX_EXTERNAL_ID - 20]}.clinic-{digest}"


def follow_patient(
    engine: Engine,
    patient: Patient,
    source: EhrSource,
    *,
    plan_contract: Mapping[str, Any],
    clinic_id: str | None,
    actor: str,
) -> int:
    """Store the EHR patient for the clinic (first assessment and plan v1, as any new
    patient) and record where it came from, in one transaction; a patient the clinic already
    follows from that EHR is not stored twice, and a follow racing another one for the same
    clinic ends on the record the other stored (the unique key decides)."""
    key = _clinic_key(clinic_id)
    existing = linked_patient(engine, source.iss, source.fhir_patient_id, clinic_id)
    if existing is not None:
        return existing
    stored = patient
    with Session(engine) as s:
        other_clinic = s.scalars(
            select(PatientRow.id).where(
                PatientRow.external_id == patient.id,
                PatientRow.id.in_(
                    select(EhrLinkRow.patient_id).where(
                        EhrLinkRow.iss == source.iss,
                        EhrLinkRow.fhir_patient_id == source.fhir_patient_id,
                        EhrLinkRow.clinic_id != key,
                    )
                ),
            )
        ).first()
    if other_clinic is not None:
        stored = patient.model_copy(update={"id": clinic_copy_id(patient.id, clinic_id)})
    try:
        with Session(engine, expire_on_commit=False) as s, s.begin():
            row = add_patient_in(
                s, stored, plan_contract=plan_contract, clinic_id=clinic_id, actor=actor
            )
            s.add(
                EhrLinkRow(
                    patient_id=row.id,
                    iss=source.iss,
                    fhir_patient_id=source.fhir_patient_id,
                    clinic_id=key,
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
            s.flush()
            number = row.id
    except (IntegrityError, InvalidInput):
        # Another follow of the same patient for this clinic committed first: open its record.
        again = linked_patient(engine, source.iss, source.fhir_patient_id, clinic_id)
        if again is not None:
            return again
        raise unusable(stored.id) from None
    return number


def ehr_source(engine: Engine, patient_id: int) -> EhrSource | None:
    """Where the stored patient came from, if from an EHR."""
    with Session(engine) as s:
        link = s.scalars(select(EhrLinkRow).where(EhrLinkRow.patient_id == patient_id)).first()
        if link is None:
            return None
        return EhrSource(link.iss, link.fhir_patient_id, link.fhir_user, link.retrieved_at)


def now() -> datetime:
    return datetime.now(UTC)
