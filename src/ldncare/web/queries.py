"""Reads the web app needs beyond ``ldncare.store.repository``: clinic-scoped lists, access checks
and audit rows for events the repository does not see (logins, refusals, handout downloads).

Every function that returns patient data writes its own audit row, as the repository does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ldncare.errors import NotFound
from ldncare.store.models import AuditRow, DiaryRow, PatientRow, PlanRow, ReviewNoteRow

PatientRef = int | str


def record_audit(
    session: Session,
    who: str,
    action: str,
    entity: str,
    entity_id: object | None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    session.add(
        AuditRow(
            at=datetime.now(UTC),
            who=who,
            action=action,
            entity=entity,
            entity_id=None if entity_id is None else str(entity_id),
            detail=dict(detail) if detail is not None else None,
        )
    )


def audit(
    engine: Engine,
    who: str,
    action: str,
    entity: str,
    entity_id: object | None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """One audit row in its own transaction."""
    with Session(engine) as s, s.begin():
        record_audit(s, who, action, entity, entity_id, detail)


def resolve_patient(session: Session, ref: PatientRef) -> PatientRow:
    """A patient by database id or external id, without an audit row (for access checks)."""
    text = str(ref).strip()
    row: PatientRow | None = None
    if text.isdigit():
        row = session.get(PatientRow, int(text))
    if row is None:
        row = session.scalars(select(PatientRow).where(PatientRow.external_id == text)).first()
    if row is None:
        raise NotFound(f"no patient with id or external id {text!r}")
    return row


@dataclass(frozen=True)
class PatientSummary:
    """What the dashboard lists: the patient, the latest plan and the diary, read in one go."""

    patient: PatientRow
    plan: PlanRow | None
    diary: list[DiaryRow]
    last_review: ReviewNoteRow | None


def patient_summaries(
    engine: Engine, *, clinic_id: str | None, actor: str, all_clinics: bool = False
) -> list[PatientSummary]:
    """Patients of ``clinic_id`` (or every patient for an administrator), audited as one read."""
    with Session(engine, expire_on_commit=False) as s, s.begin():
        query = select(PatientRow).order_by(PatientRow.id)
        if not all_clinics:
            query = query.where(PatientRow.clinic_id == clinic_id)
        patients = list(s.scalars(query))
        ids = [p.id for p in patients]
        plans: dict[int, PlanRow] = {}
        diaries: dict[int, list[DiaryRow]] = {i: [] for i in ids}
        reviews: dict[int, ReviewNoteRow] = {}
        if ids:
            for plan in s.scalars(
                select(PlanRow).where(PlanRow.patient_id.in_(ids)).order_by(PlanRow.version)
            ):
                plans[plan.patient_id] = plan
            for entry in s.scalars(
                select(DiaryRow).where(DiaryRow.patient_id.in_(ids)).order_by(DiaryRow.day)
            ):
                diaries[entry.patient_id].append(entry)
            for note in s.scalars(
                select(ReviewNoteRow)
                .where(ReviewNoteRow.patient_id.in_(ids))
                .order_by(ReviewNoteRow.id)
            ):
                reviews[note.patient_id] = note
        record_audit(
            s, actor, "read", "patient", None, {"list": len(patients), "clinic": clinic_id}
        )
        return [
            PatientSummary(p, plans.get(p.id), diaries[p.id], reviews.get(p.id)) for p in patients
        ]


def audit_for_patient(engine: Engine, patient_id: int, *, limit: int = 200) -> list[AuditRow]:
    """Audit rows about one patient (entity id or detail.patient_id), newest first."""
    with Session(engine, expire_on_commit=False) as s:
        rows = list(s.scalars(select(AuditRow).order_by(AuditRow.id.desc()).limit(5000)))
    key = str(patient_id)
    out = [
        r
        for r in rows
        if (r.entity in ("patient", "plan", "handout", "calendar") and r.entity_id == key)
        or (isinstance(r.detail, dict) and str(r.detail.get("patient_id")) == key)
    ]
    return out[:limit]
